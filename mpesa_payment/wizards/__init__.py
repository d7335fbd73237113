from . import mpesa_receipt_lookup
