from . import mpesa_export
