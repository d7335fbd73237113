from . import test_bank_feed
from . import test_matching
from . import test_statement
from . import test_suggestions
