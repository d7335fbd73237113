from . import cli
from . import models
from . import wizards
