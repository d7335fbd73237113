from . import mpesa_exception_allocate
from . import mpesa_statement_import
