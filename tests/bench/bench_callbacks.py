"""Callbacks on a real 4-worker Odoo, against Odoo's own ``payment_demo`` and
``/web/health`` in the same run (the tests/live harness: real server, the Daraja
emulator in this process, set-up over XML-RPC).

    python tests/bench/bench_callbacks.py TEMPLATE_DB OUT.json

Environment: BENCH_SENDERS (10,50,100), BENCH_CALLBACKS (payments per level, 200),
BENCH_BOOKS (receipts bulk-inserted for the "with books" run, 100000),
BENCH_PORT (8306). See tests/bench/README.md.

What is measured for each sender count, for M-PESA and for the anchor:
- answer: the time from sending a callback to its HTTP answer (what Safaricom waits
  for; its deadline is 8 s for a validation);
- paid: the time from sending it until its invoice is paid (payment_state 'paid' or
  'in_payment'), polled in the database whatever does the work (the request, or a
  job triggered after it: the server runs Odoo's default two cron workers, as
  production does: the inbox job and payment post-processing);
- throughput: payments per second from the first send to the last invoice paid.
"""

import os
import re
import signal
import statistics
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "emulator"))  # this tree's emulator first

import subprocess

from bench_reports import insert_ledger_sql
from benchlib import (
    REPO,
    addons_path,
    copy_database,
    drop_database,
    env_int,
    write_json,
)
from daraja_emulator import DarajaEmulator
from live.harness import (
    ADMIN_LOGIN,
    ADMIN_PASSWORD,
    ODOO_BIN,
    ODOO_CONF,
    OdooServer,
    Rpc,
    Sql,
    free_port,
    http,
    pg_env,
    wait_until,
)
from live.mpesa_live import LiveMpesa

SUCCESS_PHONE = "254711000900"
C2B_PHONE = "254711000950"
PAID_STATES = ("paid", "in_payment")
PAID_TIMEOUT = 600
# Odoo's access log: "POST /path HTTP/1.1" 200 - <queries> <query time> <other time>
ACCESS_RE = re.compile(
    r'"(?:POST|GET) (\S+) HTTP/1\.\d" (\d+) - (\d+) ([\d.]+) ([\d.]+)'
)


class BenchServer(OdooServer):
    """The live harness's server, on a given port, with two cron workers: work that
    a callback triggers (the inbox job applying the money, post-processing) runs as
    in production, and the benchmark polls for its outcome."""

    def __init__(self, db, data_dir, logfile, port, workers=4, cron_threads=2):
        super().__init__(db, data_dir, logfile, workers)
        self.fixed_port, self.cron_threads = port, cron_threads

    def addons_path(self):
        return addons_path()  # BENCH_ADDONS_ROOT's addons, if set

    def start(self):
        self.port = self.fixed_port
        cmd = [
            str(ODOO_BIN),
            "-c",
            str(ODOO_CONF),
            "-d",
            self.db,
            "--db-filter",
            f"^{self.db}$",
            f"--addons-path={self.addons_path()}",
            f"--data-dir={self.data_dir}",
            f"--workers={self.workers}",
            f"--max-cron-threads={self.cron_threads}",
            "--http-interface=127.0.0.1",
            f"--http-port={self.port}",
            f"--gevent-port={free_port()}",
            "--limit-time-real=300",
            "--log-level=info",
            f"--logfile={self.logfile}",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=pg_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ready, 300, f"Odoo at {self.url}", 0.5)
        return self


# === FIGURES === #


def pct(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(sent):
    """sent: [(start, end, status)] of one run."""
    answers = [end - start for start, end, _status in sent]
    statuses = {}
    for _s, _e, status in sent:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    first = min(s for s, _e, _st in sent)
    last = max(e for _s, e, _st in sent)
    return {
        "requests": len(sent),
        "statuses": statuses,
        "answer_p50_s": round(pct(answers, 50), 3),
        "answer_p99_s": round(pct(answers, 99), 3),
        "answers_per_s": round(len(sent) / (last - first), 1),
    }


def server_costs(logfile, path_part, since_line):
    """Median queries and server seconds per request, from Odoo's access log."""
    lines = Path(logfile).read_text(errors="replace").splitlines()[since_line:]
    rows = [
        (int(m[3]), float(m[4]) + float(m[5]))
        for m in (ACCESS_RE.search(line) for line in lines)
        if m and path_part in m[1]
    ]
    if not rows:
        return {}
    return {
        "server_queries_median": statistics.median(q for q, _t in rows),
        "server_s_median": round(statistics.median(t for _q, t in rows), 3),
    }


def log_length(logfile):
    try:
        return len(Path(logfile).read_text(errors="replace").splitlines())
    except OSError:
        return 0


# === SENDING === #


def post_all(url, messages, senders, json_rpc=False):
    """POST every (path, body) from ``senders`` threads at once, a new connection
    each (as Safaricom does). Returns [(start, end, status or None)]."""

    def post(message):
        path, body = message
        start = time.monotonic()
        try:
            if json_rpc:
                response = http().post(url + path, json=body, timeout=300)
            else:
                response = http().post(
                    url + path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=300,
                )
            status = response.status_code
            if json_rpc and "error" in response.json():
                status = f"{status} rpc error"
        except Exception as error:  # noqa: BLE001  (a lost request is a figure)
            status = type(error).__name__
        return start, time.monotonic(), status

    with ThreadPoolExecutor(max_workers=senders) as pool:
        return list(pool.map(post, messages))


def get_all(url, path, count, senders):
    def get(_index):
        start = time.monotonic()
        try:
            status = http().get(url + path, timeout=60).status_code
        except Exception as error:  # noqa: BLE001
            status = type(error).__name__
        return start, time.monotonic(), status

    with ThreadPoolExecutor(max_workers=senders) as pool:
        return list(pool.map(get, range(count)))


def wait_paid(sql, invoice_by_start, timeout=PAID_TIMEOUT):
    """Poll until every invoice is paid: {invoice id: seconds after its send}."""
    paid_at = {}
    deadline = time.monotonic() + timeout
    pending = list(invoice_by_start)
    while pending and time.monotonic() < deadline:
        rows = sql.all(
            "SELECT id FROM account_move WHERE id = ANY(%s) AND payment_state = ANY(%s)",
            [pending, list(PAID_STATES)],
        )
        now = time.monotonic()
        for (invoice_id,) in rows:
            paid_at[invoice_id] = now - invoice_by_start[invoice_id]
        pending = [i for i in pending if i not in paid_at]
        time.sleep(0.1)
    return paid_at


# === DOCUMENTS === #


def create_invoices(mpesa, count, amount=1000):
    """Posted KES invoices for the live customer, in batches over XML-RPC."""
    ids = []
    for start in range(0, count, 100):
        batch = mpesa.rpc(
            "account.move",
            "create",
            [
                {
                    "move_type": "out_invoice",
                    "partner_id": mpesa.partner_id,
                    "currency_id": mpesa.kes_id,
                    "invoice_line_ids": [
                        (
                            0,
                            0,
                            {
                                "name": "Bench",
                                "quantity": 1,
                                "price_unit": amount + start + i,
                                "tax_ids": [(6, 0, [])],
                            },
                        )
                    ],
                }
                for i in range(min(100, count - start))
            ],
        )
        mpesa.rpc("account.move", "action_post", batch)
        ids += batch
    return ids


def create_transactions(mpesa, invoice_ids, provider_id, method_id, prefix):
    """A draft transaction per invoice, for its residual, in batches over XML-RPC."""
    invoices = mpesa.rpc(
        "account.move", "read", invoice_ids, ["amount_residual", "name"]
    )
    ids = []
    for start in range(0, len(invoices), 100):
        ids += mpesa.rpc(
            "payment.transaction",
            "create",
            [
                {
                    "provider_id": provider_id,
                    "payment_method_id": method_id,
                    "partner_id": mpesa.partner_id,
                    "currency_id": mpesa.kes_id,
                    "amount": inv["amount_residual"],
                    "reference": f"{prefix}-{start + i}",
                    "operation": "online_direct",
                    "invoice_ids": [(6, 0, [inv["id"]])],
                }
                for i, inv in enumerate(invoices[start : start + 100])
            ],
        )
    return ids


# === RUNS === #


def run_health(mpesa, senders, count):
    return summary(get_all(mpesa.url, "/web/health", count, senders))


def run_demo(mpesa, demo, senders, count, tag):
    invoice_ids = create_invoices(mpesa, count)
    tx_ids = create_transactions(
        mpesa, invoice_ids, demo["provider_id"], demo["method_id"], f"DEMO{tag}"
    )
    refs = mpesa.rpc("payment.transaction", "read", tx_ids, ["reference"])
    messages = [
        (
            "/payment/demo/simulate_payment",
            {
                "jsonrpc": "2.0",
                "method": "call",
                "id": 1,
                "params": {
                    "reference": tx["reference"],
                    "payment_details": "4242",
                    "simulated_state": "done",
                },
            },
        )
        for tx in refs
    ]
    since = log_length(mpesa.server.logfile)
    sent = post_all(mpesa.url, messages, senders, json_rpc=True)
    # payment_demo leaves post-processing (payment posted, invoice paid) to the
    # customer's status page or the 10-minute job: run the job at once, as the
    # status page would for each customer.
    mpesa.rpc.run_cron("payment.cron_post_process_payment_tx")
    starts = {inv: s for inv, (s, _e, _st) in zip(invoice_ids, sent, strict=True)}
    paid = wait_paid(mpesa.sql, starts)
    out = summary(sent)
    out.update(paid_summary(paid, starts, count))
    out.update(server_costs(mpesa.server.logfile, "/payment/demo/", since))
    return out


def paid_summary(paid, starts, count):
    out = {"invoices": count, "paid": len(paid), "not_paid": count - len(paid)}
    if paid:
        first = min(starts.values())
        last = max(starts[inv] + delay for inv, delay in paid.items())
        delays = list(paid.values())
        out.update(
            paid_p50_s=round(pct(delays, 50), 3),
            paid_p99_s=round(pct(delays, 99), 3),
            paid_per_s=round(len(paid) / max(1e-9, last - first), 2),
        )
    return out


def run_stk(mpesa, senders, count, tag):
    """Distinct STK success callbacks, one per invoice, the emulator's exact bytes."""
    invoice_ids = create_invoices(mpesa, count)
    tx_ids = create_transactions(
        mpesa, invoice_ids, mpesa.provider_id, mpesa.method_id, f"STK{tag}"
    )
    mpesa.emulator.set_scenario(SUCCESS_PHONE, no_callback=True)
    mpesa.push_many(tx_ids, SUCCESS_PHONE)
    messages = [mpesa.stk_callback(mpesa.tx(tx_id=tx_id)) for tx_id in tx_ids]
    since = log_length(mpesa.server.logfile)
    sent = post_all(mpesa.url, messages, senders)
    starts = {inv: s for inv, (s, _e, _st) in zip(invoice_ids, sent, strict=True)}
    paid = wait_paid(mpesa.sql, starts)
    out = summary(sent)
    out.update(paid_summary(paid, starts, count))
    out.update(server_costs(mpesa.server.logfile, "/payment/daraja/stk/", since))
    stored = mpesa.sql.scalar(
        "SELECT count(*) FROM mpesa_callback WHERE transaction_id = ANY(%s)", [tx_ids]
    )
    out["callbacks_stored"] = stored
    return out


def run_c2b(mpesa, senders, count, tag):
    """A burst of distinct paybill confirmations quoting invoice numbers, while one
    more sender posts a validation every 100 ms: how long validations wait."""
    invoice_ids = create_invoices(mpesa, count)
    names = mpesa.rpc("account.move", "read", invoice_ids, ["name", "amount_residual"])
    mpesa.emulator.set_scenario(C2B_PHONE, no_callback=True)
    bodies = []
    for inv in names:
        trans_id = mpesa.emulator.c2b_pay(
            "174379", C2B_PHONE, inv["amount_residual"], inv["name"]
        )
        bodies.append(
            mpesa.c2b_notification(
                trans_id, C2B_PHONE, inv["amount_residual"], inv["name"]
            )
        )
    validation_path = mpesa.c2b_url("validation")
    confirmation_path = mpesa.c2b_url("confirmation")
    probe = mpesa.c2b_notification(f"V{tag}PROBE01", C2B_PHONE, 10, "NOTHING")
    validations, stop = [], threading.Event()

    def validate():
        while not stop.is_set():
            validations.extend(post_all(mpesa.url, [(validation_path, probe)], 1))
            time.sleep(0.1)

    prober = threading.Thread(target=validate, daemon=True)
    prober.start()
    sent = post_all(mpesa.url, [(confirmation_path, b) for b in bodies], senders)
    stop.set()
    prober.join(60)
    starts = {inv: s for inv, (s, _e, _st) in zip(invoice_ids, sent, strict=True)}
    paid = wait_paid(mpesa.sql, starts)
    out = {"confirmations": summary(sent), "validations": summary(validations)}
    out["confirmations"].update(paid_summary(paid, starts, count))
    return out


# === SET-UP === #


def configure_demo(mpesa):
    """Odoo's demo provider, enabled in test mode, with its payment method."""
    provider_id = mpesa.rpc.xmlid("payment.payment_provider_demo")
    method_id = mpesa.rpc.xmlid("payment_demo.payment_method_demo")
    mpesa.rpc(
        "payment.provider",
        "write",
        [provider_id],
        {"state": "test", "is_published": True},
    )
    mpesa.rpc("payment.method", "write", [method_id], {"active": True})
    return {"provider_id": provider_id, "method_id": method_id}


def warm_up(mpesa, demo):
    """Every worker loads the registry and renders once before anything is timed."""
    get_all(mpesa.url, "/web/health", 40, 8)
    run_demo(mpesa, demo, 4, 8, "WARM")
    run_stk(mpesa, 4, 8, "WARM")


def add_books(mpesa, size):
    """``size`` receipts with their reconciled bank lines, bulk-inserted in SQL."""
    [journal] = mpesa.rpc(
        "account.journal",
        "read",
        [mpesa.journal_id],
        ["default_account_id", "suspense_account_id", "company_id"],
    )
    started = time.monotonic()
    with mpesa.sql.conn.cursor() as cr:
        insert_ledger_sql(
            cr,
            {
                "provider": mpesa.provider_id,
                "company": journal["company_id"][0],
                "currency": mpesa.kes_id,
                "shortcode": "174379",
                "journal": mpesa.journal_id,
                "bank_account": journal["default_account_id"][0],
                "suspense": journal["suspense_account_id"][0],
                "partners": [mpesa.partner_id],
            },
            1,
            size,
        )
    return round(time.monotonic() - started, 1)


def level(mpesa, demo, senders, count, tag):
    return {
        "health": run_health(mpesa, senders, count),
        "demo": run_demo(mpesa, demo, senders, count, tag),
        "mpesa": run_stk(mpesa, senders, count, tag),
    }


def stage(results, out_path, name, func):
    """One part of the run; a failure is recorded with the figures, not fatal."""
    try:
        results[name] = func()
    except Exception:  # noqa: BLE001
        results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]
    write_json(out_path, results)


def main():
    template, out_path = sys.argv[1:3]
    senders_list = os.environ.get("BENCH_SENDERS", "10,50,100")
    levels = [int(s) for s in senders_list.split(",") if s]
    count = env_int("BENCH_CALLBACKS", 200)
    books = env_int("BENCH_BOOKS", 100_000)
    db = "mpesa_bench_cb"
    base = Path(os.environ.get("BENCH_TMP", "/tmp")) / "mpesa_bench_cb"
    (base / "data").mkdir(parents=True, exist_ok=True)
    # SIGTERM runs the clean-up below (server stopped, database dropped).
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    copy_database(template, db)
    server = BenchServer(
        db, base / "data", base / "odoo.log", port=env_int("BENCH_PORT", 8306)
    )
    emulator = DarajaEmulator(host="127.0.0.1", port=0, callback_timeout=120)
    results = {"callbacks_per_level": count, "log": str(base / "odoo.log")}
    try:
        server.start()
        emulator.start()
        sql = Sql(db)
        rpc = Rpc(server.url, db, ADMIN_LOGIN, ADMIN_PASSWORD)
        mpesa = LiveMpesa(server, rpc, sql, emulator).configure()
        demo = configure_demo(mpesa)
        warm_up(mpesa, demo)
        results["levels"] = {}
        for senders in levels:
            stage(
                results["levels"],
                out_path,
                str(senders),
                lambda n=senders: level(mpesa, demo, n, count, n),
            )
            write_json(out_path, results)
        stage(results, out_path, "c2b", lambda: run_c2b(mpesa, 50, count, "C2B"))
        if books:
            results["books_size"] = books
            stage(results, out_path, "books_insert_s", lambda: add_books(mpesa, books))
            stage(
                results,
                out_path,
                "with_books",
                lambda: {
                    **level(mpesa, demo, 50, count, "BOOKS"),
                    "c2b": run_c2b(mpesa, 50, count, "C2BB"),
                },
            )
        stage(results, out_path, "check_books", lambda: len(mpesa.check_books()))
    finally:
        emulator.stop()
        server.stop()
        drop_database(db)


if __name__ == "__main__":
    main()
