from . import mpesa_exception_allocate
from . import mpesa_exception_return
from . import mpesa_statement_import
