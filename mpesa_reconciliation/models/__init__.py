from . import account_bank_statement_line
from . import mpesa_branch
from . import mpesa_exception
from . import mpesa_match_suggestion
from . import mpesa_receipt
from . import payment_transaction
from . import res_users
from . import res_config_settings
