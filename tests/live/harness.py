"""A real multi-worker Odoo server for the live tests, and the clients that drive it.

Odoo's HttpCase serves requests inside the test's own transaction, so it cannot show what
only happens when separate worker processes commit separate transactions. Here each
request is served by a prefork worker of a real ``odoo-bin`` on a throw-away database,
exactly as in production; the tests talk to it over HTTP (XML-RPC, JSON-RPC, the Daraja
callback routes) and read the database with their own connection.
"""

import atexit
import configparser
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import xmlrpc.client
from pathlib import Path

import psycopg2
import requests

REPO = Path(__file__).resolve().parents[2]
ODOO_BIN = REPO / ".venv" / "bin" / "odoo"
ODOO_CONF = REPO / ".local" / "odoo.conf"
# The test command installs the end-to-end test addon in the template database too.
E2E_ADDONS = REPO / "tests" / "odoo_addons"
MODULES = "mpesa_payment,mpesa_reconciliation,mpesa_reports"
ADMIN_LOGIN = ADMIN_PASSWORD = "admin"  # what ``odoo-bin -i`` gives a new database

SERVER_START_TIMEOUT = 180  # registry preload, then the first /web/login render
INSTALL_TIMEOUT = 900


class LiveError(RuntimeError):
    """The live environment could not be set up."""


# === PLUMBING === #


def http():
    """An HTTP session for loopback only: never through a proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, message, interval=0.1):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def log_tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def odoo_conf():
    if not ODOO_CONF.exists():
        raise LiveError(f"{ODOO_CONF} is missing: run ./setup/install.sh first")
    parser = configparser.ConfigParser()
    parser.read(ODOO_CONF)
    return parser["options"]


def pg_params():
    """How to reach PostgreSQL: the Odoo config first, then setup/lib.sh's defaults."""
    conf = odoo_conf()

    def pick(key, env, default):
        value = conf.get(key)
        if value and value != "False":
            return value
        return os.environ.get(env, default)

    return {
        "host": pick("db_host", "PGHOST", "localhost"),
        "port": pick("db_port", "PGPORT", "5432"),
        "user": pick("db_user", "PGUSER", "odoo"),
        "password": pick("db_password", "PGPASSWORD", "odoo"),
    }


def pg_env():
    params = pg_params()
    return {
        **os.environ,
        "PGHOST": params["host"],
        "PGPORT": str(params["port"]),
        "PGUSER": params["user"],
        "PGPASSWORD": params["password"],
    }


def pg_connect(dbname, autocommit=True):
    conn = psycopg2.connect(dbname=dbname, **pg_params())
    conn.autocommit = autocommit  # by default every query sees what workers committed
    return conn


def only_the_inbox_job(db):
    """The server's cron workers run the callback inbox, woken by each stored body,
    as in production. Every other job is switched off and pending triggers are
    deleted: a test runs a scheduled job itself (Run Manually) when it means to, and
    no PDF mailing or status query of an earlier test is left running. (Core switches
    payment post-processing on again whenever a provider is saved: the cron workers
    then run it too, as in production, and Run Manually waits for them.)"""
    conn = pg_connect(db)
    try:
        with conn.cursor() as cr:
            cr.execute("DELETE FROM ir_cron_trigger")
            cr.execute(
                """UPDATE ir_cron SET active = id IN (
                       SELECT res_id FROM ir_model_data
                        WHERE module = 'mpesa_payment' AND name = 'cron_apply_inbox')"""
            )
    finally:
        conn.close()


def database_exists(name):
    conn = pg_connect("postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return bool(cr.fetchone())
    finally:
        conn.close()


def drop_database(name):
    subprocess.run(
        ["dropdb", "--if-exists", "--force", name],
        env=pg_env(),
        check=False,
        capture_output=True,
        timeout=120,
    )


# === DATABASE === #


def drop_orphans(prefix):
    """Drop ``<prefix><pid>`` databases left by test runs killed on this machine (their
    process is gone). Only for a local PostgreSQL, where those pids are ours to judge."""
    if pg_params()["host"] not in ("localhost", "127.0.0.1", "::1", ""):
        return
    conn = pg_connect("postgres")
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [prefix.replace("_", r"\_") + "%"],
            )
            names = [name for (name,) in cr.fetchall()]
    finally:
        conn.close()
    for name in names:
        suffix = name[len(prefix) :]
        if not suffix.isdigit():
            continue
        try:
            os.kill(int(suffix), 0)
        except ProcessLookupError:
            drop_database(name)
        except PermissionError:
            pass  # alive, someone else's


def source_mtime(modules):
    """Newest modification time of the sources of those of ``modules`` in this repo."""
    newest = 0.0
    for module in modules:
        for root in (REPO, E2E_ADDONS):
            path = root / module
            if (path / "__manifest__.py").exists():
                for file in path.rglob("*"):
                    if file.suffix in (".py", ".xml", ".csv") and file.is_file():
                        newest = max(newest, file.stat().st_mtime)
    return newest


def stale_modules(name):
    """Our modules whose sources changed since they were installed in database ``name``
    (its tables may then lack the new columns). Reads the copy, never the template."""
    conn = pg_connect(name)
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT name, EXTRACT(EPOCH FROM write_date) FROM ir_module_module"
                " WHERE state = 'installed'"
            )
            installed = cr.fetchall()
    finally:
        conn.close()
    return sorted(
        module
        for module, installed_at in installed
        if source_mtime([module]) > float(installed_at or 0)
    )


def create_database(name, template, data_dir, logfile, allow_stale=False):
    """A database with our addons: a copy of ``template`` (what the test command's Odoo
    tests leave behind) if it can be had and is not older than our sources, else a fresh
    install. Returns how it was made."""
    drop_database(name)
    reason = f"no database {template}"
    if template and database_exists(template):
        reason = f"{template} stayed busy"
        for attempt in range(5):
            result = subprocess.run(
                ["createdb", "-T", template, name],
                check=False,
                env=pg_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode == 0:
                stale = [] if allow_stale else stale_modules(name)
                if not stale:
                    source = (
                        Path(odoo_conf().get("data_dir", "")) / "filestore" / template
                    )
                    if source.is_dir():
                        shutil.copytree(source, Path(data_dir) / "filestore" / name)
                    return f"copy of {template}"
                reason = f"{template} predates the sources of {', '.join(stale)}"
                break
            # "source database ... is being accessed by other users": wait, then retry.
            if "being accessed" not in result.stderr:
                reason = f"createdb -T {template} failed: {result.stderr.strip()}"
                break
            time.sleep(1 + attempt)
        drop_database(name)
    cmd = [
        str(ODOO_BIN),
        "-c",
        str(ODOO_CONF),
        "-d",
        name,
        "-i",
        MODULES,
        "--stop-after-init",
        "--without-demo=all",
        "--no-http",
        "--data-dir",
        str(data_dir),
        "--logfile",
        str(logfile),
    ]
    try:
        result = subprocess.run(
            cmd, cwd=REPO, env=pg_env(), timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise LiveError(
            f"installing {MODULES} timed out:\n{log_tail(logfile)}"
        ) from error
    if result.returncode != 0 or not database_exists(name):
        raise LiveError(f"installing {MODULES} failed:\n{log_tail(logfile)}")
    return f"fresh install of {MODULES} ({reason})"


# === SERVER === #


def _die_with_parent():
    """In the forked child, before exec: SIGTERM when the test process dies, even by
    SIGKILL (Linux prctl PR_SET_PDEATHSIG); Odoo then stops its workers itself."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class OdooServer:
    """``odoo-bin --workers 4`` in its own process group, stopped without leftovers."""

    def __init__(self, db, data_dir, logfile, workers=4):
        self.db, self.data_dir, self.logfile = db, data_dir, logfile
        self.workers = workers
        self.port = None
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def addons_path(self):
        paths = [p.strip() for p in odoo_conf().get("addons_path", "").split(",")]
        return ",".join([p for p in paths if p] + [str(E2E_ADDONS)])

    def start(self):
        self.port = free_port()
        cmd = [
            str(ODOO_BIN),
            "-c",
            str(ODOO_CONF),
            "-d",
            self.db,
            "--db-filter",
            f"^{self.db}$",
            "--addons-path",
            self.addons_path(),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
            # Two, as Odoo's default and as production needs (readme/CONFIGURE.md):
            # the inbox job must not wait behind payment post-processing.
            "--max-cron-threads",
            "2",
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            # the websocket (gevent) process the prefork server spawns: its own port too
            "--gevent-port",
            str(free_port()),
            "--limit-time-real",
            "120",
            "--log-level",
            "info",
            "--logfile",
            str(self.logfile),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=pg_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # one process group: master, workers, gevent
            # only a prctl() call; the fixture forks before starting any thread
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        atexit.register(self.stop)  # even if pytest dies before its teardown
        try:
            wait_until(self._ready, SERVER_START_TIMEOUT, f"Odoo at {self.url}", 0.5)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise LiveError(
                f"odoo-bin exited with {self.proc.returncode}:\n{log_tail(self.logfile)}"
            )
        try:
            response = http().get(f"{self.url}/web/login", timeout=30)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def stop(self):
        """SIGTERM (graceful: Odoo stops its workers), then SIGKILL the whole group."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # workers or gevent left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        # The workers were our children's children: wait until the group is gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)


# === CLIENTS === #


NONE = "cannot marshal None"
# Core's buttons the live tests click whose answer holds None.
CORE_ANSWERS_NONE = {
    ("payment.refund.wizard", "action_refund"),  # account_payment: returns nothing
    ("sale.advance.payment.inv", "create_invoices"),  # an action with a None value
    ("account.move", "button_draft"),  # Reset to Draft: returns nothing
    ("account.move", "button_cancel"),  # Cancel: returns nothing
    ("account.move", "js_assign_outstanding_line"),  # widget's Add: a dict with None
}


# Core's refusal to touch a scheduled action a cron worker is running (ir.cron
# _try_lock), and how long a call waits for the job to finish.
CRON_BUSY = "currently being executed"
CRON_BUSY_TIMEOUT = 300


class Rpc:
    """XML-RPC as one user: ``rpc(model, method, *args, **kwargs)``."""

    def __init__(self, url, db, login, password):
        self.url, self.db, self.password = url, db, password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(db, login, password, {})
        if not self.uid:
            raise LiveError(f"XML-RPC login {login!r} refused on {db}")

    def __call__(self, model, method, *args, **kwargs):
        """Core refuses to change or run a scheduled action while a cron worker runs
        it, and rolls the call back ("This cron task is currently being executed"):
        saving a payment provider rewrites the post-processing job's Active, so a
        save can meet the job the tests' payments woke. The user tries again; so does
        this client, until the job is done."""
        deadline = time.monotonic() + CRON_BUSY_TIMEOUT
        while True:
            try:
                return self._execute(model, method, args, kwargs)
            except xmlrpc.client.Fault as fault:
                if CRON_BUSY not in fault.faultString or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def _execute(self, model, method, args, kwargs):
        proxy = xmlrpc.client.ServerProxy(
            f"{self.url}/xmlrpc/2/object", allow_none=True
        )
        try:
            return proxy.execute_kw(
                self.db, self.uid, self.password, model, method, list(args), kwargs
            )
        except xmlrpc.client.Fault as fault:
            # The method ran and committed, but its answer holds None, which Odoo
            # does not send over XML-RPC: tolerated for core's buttons only. Ours
            # answer True or an action without None.
            if (model, method) in CORE_ANSWERS_NONE and NONE in fault.faultString:
                return None
            raise

    def xmlid(self, xmlid):
        module, name = xmlid.split(".")
        rows = self(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        if not rows:
            raise LiveError(f"no record {xmlid}")
        return rows[0]["res_id"]

    def run_cron(self, xmlid):
        """Run a scheduled action now, as its Run Manually button does. The cron
        worker may be running it already (woken by a trigger, e.g. core's payment
        post-processing): the call waits for it to finish, then runs it again."""
        return self("ir.cron", "method_direct_trigger", [self.xmlid(xmlid)])


class JsonRpcError(Exception):
    def __init__(self, error):
        super().__init__(error.get("data", {}).get("message") or error.get("message"))
        self.error = error


class WebClient:
    """A browser without JavaScript: its own cookies, JSON-RPC like the payment form."""

    def __init__(self, url):
        self.url = url
        self.session = http()

    def jsonrpc(self, path, params, timeout=60):
        response = self.session.post(
            self.url + path,
            json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params},
            timeout=timeout,
        )
        response.raise_for_status()
        data = response.json()
        if "error" in data:
            raise JsonRpcError(data["error"])
        return data["result"]

    def post(self, path, body, content_type="application/json", timeout=60):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        headers = {"Content-Type": content_type} if content_type else {}
        return self.session.post(
            self.url + path, data=body, headers=headers, timeout=timeout
        )


class Sql:
    """The test's own look at the live database (reads; ``execute`` for fakes)."""

    def __init__(self, db):
        self.db = db
        self.conn = pg_connect(db)

    def all(self, query, params=None):
        with self.conn.cursor() as cr:
            cr.execute(query, params or [])
            return cr.fetchall()

    def dicts(self, query, params=None):
        with self.conn.cursor() as cr:
            cr.execute(query, params or [])
            names = [col.name for col in cr.description]
            return [dict(zip(names, row, strict=True)) for row in cr.fetchall()]

    def one(self, query, params=None):
        rows = self.dicts(query, params)
        assert len(rows) == 1, f"expected one row, got {rows}"
        return rows[0]

    def scalar(self, query, params=None):
        rows = self.all(query, params)
        return rows[0][0] if rows else None

    def execute(self, query, params=None):
        """Only for what a test must fake, e.g. that a minute has passed."""
        with self.conn.cursor() as cr:
            cr.execute(query, params or [])

    def reconnect(self):
        """A new connection, e.g. after PostgreSQL was restarted under the test."""
        with contextlib.suppress(psycopg2.Error):
            self.conn.close()
        self.conn = pg_connect(self.db)

    def close(self):
        self.conn.close()
