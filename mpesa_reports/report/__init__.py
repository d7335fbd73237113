from . import mpesa_receipt_report
from . import mpesa_daily_summary
