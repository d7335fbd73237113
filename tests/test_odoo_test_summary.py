"""setup/odoo_test_summary.py on real odoo-bin logs: a test skipped on purpose counts
as skipped, a browser test skipped for want of Chromium counts as failed.

The logs come from a throw-away module (tests/odoo_addons/mpesa_skip_probe) installed
in a copy of the database the test command's Odoo tests leave behind."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from live.harness import (
    E2E_ADDONS,
    ODOO_BIN,
    ODOO_CONF,
    REPO,
    database_exists,
    drop_database,
    odoo_conf,
    pg_env,
)

TEMPLATE = os.environ.get("MPESA_LIVE_TEMPLATE_DB", "mpesa_test")
SUMMARY = REPO / "setup" / "odoo_test_summary.py"


@pytest.fixture(scope="module")
def probe_db():
    if not (ODOO_CONF.exists() and database_exists(TEMPLATE)):
        pytest.fail(f"needs the test command's database {TEMPLATE} (run setup/test.sh)")
    name = f"mpesa_probe_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["createdb", "-T", TEMPLATE, name], env=pg_env(), check=True, timeout=300
    )
    # Its attachments too (the browser asks for the favicon): a copy without them
    # logs errors that are the copy's, not the tests'.
    filestore = Path(odoo_conf().get("data_dir", "")) / "filestore"
    if (filestore / TEMPLATE).is_dir():
        shutil.copytree(filestore / TEMPLATE, filestore / name)
    yield name
    drop_database(name)
    shutil.rmtree(filestore / name, ignore_errors=True)


def run_probe(db, tmp_path, path_env, install):
    log = tmp_path / f"odoo-{'install' if install else 'rerun'}.log"
    addons = odoo_conf().get("addons_path")
    env = pg_env()
    if path_env is not None:
        env["PATH"] = path_env  # no chromium on it
    result = subprocess.run(
        [
            str(ODOO_BIN),
            "-c",
            str(ODOO_CONF),
            "-d",
            db,
            f"--addons-path={addons},{E2E_ADDONS}",
            *(["-i", "mpesa_skip_probe"] if install else []),
            "--test-tags",
            "/mpesa_skip_probe",
            "--stop-after-init",
            "--http-port",
            "8479",
            "--log-level=test",
            "--logfile",
            str(log),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = subprocess.run(
        [sys.executable, str(SUMMARY), str(log), str(result.returncode)],
        capture_output=True,
        text=True,
        check=True,
    )
    passed, failed, skipped = map(int, summary.stdout.split())
    return passed, failed, skipped, summary.stderr


def test_a_skipped_test_counts_as_skipped(probe_db, tmp_path):
    passed, failed, skipped, _why = run_probe(probe_db, tmp_path, None, install=True)
    assert (passed, failed, skipped) == (1, 0, 1)


def test_a_browser_test_without_chromium_counts_as_failed(probe_db, tmp_path):
    passed, failed, skipped, why = run_probe(
        probe_db, tmp_path, "/nonexistent", install=False
    )
    assert (passed, failed, skipped) == (0, 1, 1), why
    assert "tour skipped (counts as failed)" in why
