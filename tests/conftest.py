"""Fixtures for the Daraja emulator tests (tests/test_emulator_*.py)."""

import sys
from pathlib import Path

import pytest

try:
    import daraja_emulator  # noqa: F401 - installed (editable) in the venv
except ImportError:  # plain system python: use the source tree
    sys.path.insert(0, str(Path(__file__).parent / "emulator"))

from daraja_emulator import DarajaEmulator
from daraja_emulator.testing import CallbackReceiver, DarajaClient

# Odoo addons used by Odoo's own test runner (odoo-bin --test-tags), not by pytest.
collect_ignore = ["odoo_addons"]


@pytest.fixture(scope="session", autouse=True)
def load_registry():
    """Overrides pytest-odoo's autouse registry loading (venv): the pytest tests
    collected here need no Odoo database."""
    yield


@pytest.fixture
def emu():
    # A short validation timeout keeps the C2B timeout tests fast.
    with DarajaEmulator(validation_timeout=0.5) as emulator:
        yield emulator


@pytest.fixture
def receiver():
    server = CallbackReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def client(emu):
    return DarajaClient(emu.base_url)
