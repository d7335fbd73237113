from . import test_bank_feed
from . import test_matching
from . import test_statement
from . import test_suggestions
from . import test_exceptions
from . import test_statement_import
from . import test_roles
from . import test_tour
