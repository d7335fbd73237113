from . import account_move
from . import mpesa_api_request
from . import mpesa_callback
from . import mpesa_receipt
from . import payment_provider
from . import payment_transaction
from . import res_partner
from . import sale_subscription
