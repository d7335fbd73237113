from . import test_receipt_report
from . import test_exports
from . import test_dashboard
from . import test_portal
from . import test_tours
from . import test_access_matrix
from . import test_journal_balance
from . import test_shortcodes
