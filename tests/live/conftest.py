"""Fixtures of the live tests: a real ``odoo-bin --workers 4`` on a copy of the test
database, the Daraja emulator in this process, and the M-PESA set-up done over XML-RPC."""

import contextlib
import os
import shutil

import pytest
from daraja_emulator import DarajaEmulator

from .harness import (
    ADMIN_LOGIN,
    ADMIN_PASSWORD,
    OdooServer,
    Rpc,
    Sql,
    create_database,
    drop_database,
    drop_orphans,
    only_the_inbox_job,
)
from .mpesa_live import LiveMpesa

# Shown at the end of the run: where the database came from, where the server logged.
SUMMARY = {}


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.write_line(
            f"live Odoo: database {SUMMARY['origin']}; server log {SUMMARY['log']}"
        )


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """The live server, configured; torn down (server, database) whatever happens."""
    base = tmp_path_factory.mktemp("live")
    data_dir = base / "data"
    data_dir.mkdir()
    drop_orphans("mpesa_live_")
    db = f"mpesa_live_{os.getpid()}"
    template = (
        os.environ.get("MPESA_LIVE_TEMPLATE_DB")
        or os.environ.get("MPESA_TEST_DB")  # the test command's database, if renamed
        or "mpesa_test"
    )
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        stack.callback(drop_database, db)
        origin = create_database(
            db,
            template,
            data_dir,
            base / "install.log",
            allow_stale=os.environ.get("MPESA_LIVE_ALLOW_STALE") == "1",
        )

        only_the_inbox_job(db)
        # The server first: forking it before the emulator's threads exist.
        server = OdooServer(db, data_dir, base / "odoo.log").start()
        stack.callback(server.stop)

        # Callbacks can queue behind many concurrent ones: give them time.
        emulator = DarajaEmulator(host="127.0.0.1", port=0, callback_timeout=90)
        emulator.start()
        stack.callback(emulator.stop)

        sql = Sql(db)
        stack.callback(sql.close)
        rpc = Rpc(server.url, db, ADMIN_LOGIN, ADMIN_PASSWORD)
        mpesa = LiveMpesa(server, rpc, sql, emulator).configure()
        SUMMARY.update(origin=origin, log=server.logfile)
        yield mpesa


@pytest.fixture
def mpesa(live):
    """The live set-up with an emulator forgetting the previous test (scenarios,
    prompts, deliveries, C2B URLs: registered again)."""
    live.emulator.reset()
    live.register_c2b_urls()
    yield live
