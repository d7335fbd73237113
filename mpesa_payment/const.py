"""Facts about Daraja that the rest of the addon relies on, in one place."""

from odoo.tools import LazyTranslate

_lt = LazyTranslate(__name__)

SUPPORTED_CURRENCIES = ["KES"]
DEFAULT_PAYMENT_METHOD_CODES = {"mpesa"}

API_URLS = {
    "test": "https://sandbox.safaricom.co.ke",
    "enabled": "https://api.safaricom.co.ke",
}

# Daraja request limits (STK push).
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13
AMOUNT_MIN = 1
AMOUNT_MAX = 250_000

# A callback URL token stays valid this long: longer than any recovery window, so a
# genuinely late success is still accepted.
CALLBACK_TOKEN_DAYS = 14

# Daraja error codes we act upon.
ERROR_INVALID_TOKEN = "404.001.03"
ERROR_STILL_PROCESSING = "500.001.1001"
ERROR_URLS_REGISTERED = "500.003.1001"

# Where Safaricom posts callbacks from. Not on Safaricom's own pages: the list client
# libraries circulate, and the one a widely used Python SDK checks (citing Daraja's
# Getting Started page). The default allow-list of a provider in production; editable.
SAFARICOM_CALLBACK_IPS = (
    "196.201.214.200, 196.201.214.206, 196.201.213.114, 196.201.214.207, "
    "196.201.214.208, 196.201.213.44, 196.201.212.127, 196.201.212.138, "
    "196.201.212.129, 196.201.212.136, 196.201.212.74, 196.201.212.69"
)

# Words Safaricom refuses in production C2B URLs.
C2B_FORBIDDEN_URL_WORDS = (
    "m-pesa",
    "mpesa",
    "safaricom",
    "exe",
    "exec",
    "cmd",
    "sql",
    "query",
)

# C2B validation answers.
C2B_ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
C2B_INVALID_ACCOUNT = {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
C2B_INVALID_AMOUNT = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}

# STK query answers meaning "the customer has not answered yet".
QUERY_PENDING_RESULT_CODES = {"4999"}

# STK ResultCode -> (transaction state, customer-facing message). Lazy: translated in the
# customer's language where they are set (payment_transaction._mpesa_result_message).
RESULT_CODES = {
    0: ("done", _lt("Payment received.")),
    1: ("error", _lt("The M-PESA balance is insufficient for this payment.")),
    2: ("error", _lt("The amount is below the M-PESA minimum.")),
    3: ("error", _lt("The amount is above the M-PESA maximum for one payment.")),
    4: ("error", _lt("This payment would exceed your daily M-PESA limit.")),
    8: (
        "error",
        _lt("This payment would exceed your M-PESA account's maximum balance."),
    ),
    17: (
        "error",
        _lt(
            "A payment of the same amount was just made. Wait two minutes and try again."
        ),
    ),
    26: ("error", _lt("M-PESA is busy right now. Please try again in a few minutes.")),
    1001: ("error", _lt("Another M-PESA transaction is in progress on this phone.")),
    1019: ("cancel", _lt("The payment request expired before it was confirmed.")),
    1025: ("error", _lt("The payment request could not be sent to your phone.")),
    1032: ("cancel", _lt("You cancelled the payment request on your phone.")),
    1037: (
        "cancel",
        _lt(
            "Your phone could not be reached. Check that it is on and has network, "
            "then try again."
        ),
    ),
    2001: ("error", _lt("The M-PESA PIN entered was wrong.")),
    2028: ("error", _lt("This payment is not allowed for this business number.")),
    8006: ("error", _lt("Your M-PESA PIN is locked. Contact Safaricom to unlock it.")),
    9999: ("error", _lt("M-PESA could not process the payment request.")),
}
UNKNOWN_RESULT = ("error", _lt("M-PESA could not complete the payment (code %s)."))

# Result codes after which a success can still follow (checked by STK query).
RECOVERABLE_RESULT_CODES = {1037}

# Initiator API results that say our configuration is wrong (the initiator or its
# security credential), not that a transaction is unknown: 2001 "The initiator
# information is invalid.", 8006 "The security credential is locked".
INITIATOR_CONFIGURATION_ERRORS = frozenset({"2001", "8006"})
