from . import mpesa_receipt_lookup
from . import payment_refund_wizard
