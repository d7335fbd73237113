from . import check_books
