from . import test_e2e_flows
from . import test_e2e_tours
from . import test_declined_prompt
from . import test_secrets
from . import test_swahili
from . import test_status_page
