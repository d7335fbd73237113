"""A local emulator of Safaricom's Daraja (M-PESA) API for tests and demos."""

from .callbacks import Delivery
from .credentials import KeyPair
from .emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_INITIATOR,
    DEFAULT_INITIATOR_PASSWORD,
    DEFAULT_PASSKEY,
    DEFAULT_SECURITY_CREDENTIAL,
    DEFAULT_SHORTCODE,
    DarajaEmulator,
)
from .scenario import MAGIC_PHONES, RESULT_DESCS, Scenario
from .state import Prompt

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_CONSUMER_SECRET",
    "DEFAULT_INITIATOR",
    "DEFAULT_INITIATOR_PASSWORD",
    "DEFAULT_PASSKEY",
    "DEFAULT_SECURITY_CREDENTIAL",
    "DEFAULT_SHORTCODE",
    "MAGIC_PHONES",
    "RESULT_DESCS",
    "DarajaEmulator",
    "Delivery",
    "KeyPair",
    "Prompt",
    "Scenario",
]
