from . import main
from . import jsonrpc
