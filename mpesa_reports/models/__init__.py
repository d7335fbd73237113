from . import mpesa_dashboard
from . import mpesa_receipt
