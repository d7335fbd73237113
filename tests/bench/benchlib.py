"""Shared plumbing of the benchmarks run by ``setup/bench.sh``: an Odoo environment in
this process on a benchmark database, database copies, timers and result files.

Nothing here is collected by pytest or Odoo (the benchmarks are run on demand)."""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # tests.live and the emulator package

from live.harness import (
    E2E_ADDONS,
    ODOO_CONF,
    drop_database,
    odoo_conf,
    pg_connect,
    pg_env,
)


def addons_root():
    """Where our addons are read from: this tree, or BENCH_ADDONS_ROOT (e.g. an
    export of one commit, so that edits made during a long run change nothing)."""
    return Path(os.environ.get("BENCH_ADDONS_ROOT") or REPO).resolve()


def addons_path():
    paths = [p.strip() for p in odoo_conf().get("addons_path", "").split(",")]
    paths = [p for p in paths if p and Path(p).resolve() != REPO]
    root = addons_root()
    return ",".join([*paths, str(root), str(root / E2E_ADDONS.relative_to(REPO))])


def copy_database(template, name):
    """``createdb -T``: each benchmark works on its own copy of the built database."""
    drop_database(name)
    for attempt in range(10):
        result = subprocess.run(
            ["createdb", "-T", template, name],
            env=pg_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode == 0:
            return name
        if "being accessed" not in result.stderr:
            raise RuntimeError(result.stderr)
        time.sleep(1 + attempt)
    raise RuntimeError(f"{template} stayed busy")


@contextlib.contextmanager
def odoo_env(db):
    """An Odoo environment as superuser on ``db``, in this process; committed at the
    end (the benchmark databases are throw-away copies)."""
    import odoo
    from odoo.modules.registry import Registry
    from odoo.tools import config

    config.parse_config(
        [
            "-c",
            str(ODOO_CONF),
            "-d",
            db,
            f"--addons-path={addons_path()}",
            "--log-level=warn",
            "--no-http",
        ]
    )
    registry = Registry(db)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {"tz": "Africa/Nairobi"})
        yield env
        cr.commit()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = None
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def sql_count(env):
    """Queries run by the cursor so far (Odoo counts them per cursor)."""
    return env.cr.sql_log_count


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=1, default=str))


def read_json(path):
    return json.loads(Path(path).read_text())


def env_int(name, default):
    return int(os.environ.get(name) or default)


def sql_scalar(db, query, params=None):
    conn = pg_connect(db)
    try:
        with conn.cursor() as cr:
            cr.execute(query, params or [])
            return cr.fetchone()[0]
    finally:
        conn.close()
