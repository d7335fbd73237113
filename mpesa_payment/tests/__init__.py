from . import test_payloads
from . import test_payment_provider
from . import test_payment_transaction
from . import test_processing_flows
from . import test_c2b
from . import test_initiator_apis
from . import test_subscription
from . import test_portal_balance
