"""Sixty days of a small Kenyan business's M-PESA money, for the demo (./setup/run.sh).

    python setup/demo_history.py --odoo http://localhost:8069 --db mpesa_demo --port 8070

Run once by run.sh while it creates the demo database, against a running Odoo (HTTP, no
cron worker) and with the Daraja emulator in this process (it plays Safaricom and the
customers' phones). Every shilling goes the way real money goes: customers pay invoices,
orders and subscriptions by STK push through the portal's payment form and Odoo's
routes, or by paybill and till through the emulator's C2B confirmations; finance imports a
statement, looks up a code a customer quotes and resolves exceptions with the buttons and
wizards of the exception queue, all over JSON-RPC as the web client does. Nothing writes
ledger rows directly.

Back-dating: M-PESA's clock (the emulator's, set_clock) is moved to each payment's day, so
receipts, statement lines and analysis carry the day the money came in, and invoices are
dated that day. Odoo's own clock is not moved: payments and reconciliations are booked
today, as they would be when a backlog is entered, and exceptions are a few minutes old.

Seeded: the same plan (customers, amounts, days, references) every time. Ends with a
balance query on each shortcode (as an admin would from the provider form), the
books check (which compares those balances with the journals) and a check that the dashboard, analysis, exception queue and reconciliation
screen have figures (demo_check); a non-zero exit if either fails.
"""

import argparse
import os
import random
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "setup"))

from daraja_emulator import DEFAULT_INITIATOR_PASSWORD, DarajaEmulator, KeyPair
from daraja_emulator.helpers import KENYA
from demo_check import check_demo
from demo_common import (
    FIRST_NAMES,
    PAYBILL,
    PHONES,
    TILL,
    TILL_PASSKEY,
    TILL_STORE,
    DemoError,
    log,
    wait_until,
)
from demo_story import tell

SEED = 16
SCENARIO_DELAY = 0.5  # seconds before the customer's phone answers (see main)
PRODUCTS = [
    "maize_flour",
    "cooking_oil",
    "solar_lantern",
    "jiko",
    "phone_repair",
]


class Odoo:
    """JSON-RPC as a logged-in user, the way the web client calls models."""

    def __init__(self, url, db, login="admin", password="admin"):
        self.url, self.db = url, db
        self.session = requests.Session()
        self.uid = self.jsonrpc(
            "/web/session/authenticate",
            {"db": db, "login": login, "password": password},
        )["uid"]

    def jsonrpc(self, path, params, session=None):
        response = (session or self.session).post(
            self.url + path,
            json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params},
            timeout=120,
        )
        response.raise_for_status()
        data = response.json()
        if "error" in data:
            error = data["error"]
            raise DemoError(f"{path}: {error.get('data', {}).get('message', error)}")
        return data.get("result")  # absent when the method returns None

    def __call__(self, model, method, *args, **kwargs):
        return self.jsonrpc(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        rows = self(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        if not rows:
            raise DemoError(f"no record {xmlid}")
        return rows[0]["res_id"]

    def run_cron(self, xmlid):
        """As the scheduled action's Run Manually button (no cron worker runs here)."""
        self("ir.cron", "method_direct_trigger", [self.ref(xmlid)])

    def read_one(self, model, record_id, fields):
        return self(model, "read", [record_id], fields)[0]


class History:
    def __init__(self, odoo, emulator, today):
        self.odoo, self.emu, self.today = odoo, emulator, today
        self.rng = random.Random(SEED)
        self.stats = {}

    # === SET-UP (what an admin does on the provider form) === #

    def configure(self):
        odoo = self.odoo
        odoo("ir.config_parameter", "set_param", "web.base.url", odoo.url)
        odoo("ir.config_parameter", "set_param", "web.base.url.freeze", "True")
        self.provider = odoo.ref("mpesa_payment.payment_provider_mpesa")
        self.method = odoo.ref("payment.payment_method_mpesa")
        self.customers = {
            name: odoo.ref(f"mpesa_demo.customer_{name}") for name in PHONES
        }
        self.products = {}
        for name in PRODUCTS + ["hosting"]:
            template = odoo.read_one(
                "product.template",
                odoo.ref(f"mpesa_demo.product_{name}"),
                ["product_variant_id", "list_price"],
            )
            self.products[name] = (
                template["product_variant_id"][0],
                template["list_price"],
            )
        provider = odoo.read_one(
            "payment.provider",
            self.provider,
            [
                "mpesa_push_limit_document",
                "mpesa_push_limit_phone",
                "mpesa_push_limit_address",
            ],
        )
        # Sixty days of prompts come from this one address within minutes: the
        # per-address and per-phone limits are lifted while the history is replayed.
        self.push_limits = {k: v for k, v in provider.items() if k != "id"}
        odoo(
            "payment.provider",
            "write",
            [self.provider],
            {key: 0 for key in self.push_limits},
        )
        odoo("payment.provider", "action_mpesa_register_c2b_urls", [self.provider])
        self.till_provider = self._till_provider()
        odoo("payment.provider", "action_mpesa_register_c2b_urls", [self.till_provider])

    def _till_provider(self):
        """A Buy Goods till for walk-in customers, with its own journal; not offered
        at checkout (the paybill is)."""
        odoo = self.odoo
        found = odoo(
            "payment.provider",
            "search",
            [("code", "=", "mpesa"), ("mpesa_shortcode", "=", TILL_STORE)],
        )
        if found:
            return found[0]
        journal_id = odoo(
            "account.journal",
            "create",
            {"name": "M-PESA Till", "code": "MPTL", "type": "bank"},
        )
        [till] = odoo("payment.provider", "copy", [self.provider])
        odoo(
            "payment.provider",
            "write",
            [till],
            {
                "name": "M-PESA Till",
                "mpesa_shortcode": TILL_STORE,
                "mpesa_shortcode_type": "till",
                "mpesa_till_number": TILL,
                "mpesa_passkey": TILL_PASSKEY,
                "journal_id": journal_id,
                "is_published": False,
            },
        )
        # As on the form: the state first (switching it clears the credential), then
        # the initiator password, encrypted with the emulator's certificate.
        odoo("payment.provider", "write", [till], {"state": "test"})
        odoo(
            "payment.provider",
            "write",
            [till],
            {"mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD},
        )
        return till

    def restore_limits(self):
        self.odoo("payment.provider", "write", [self.provider], self.push_limits)

    # === M-PESA'S CLOCK === #

    def at(self, days_ago, hour=None):
        """Move M-PESA's clock to a business hour ``days_ago`` days before today."""
        day = self.today - timedelta(days=days_ago)
        hour = hour if hour is not None else self.rng.randint(8, 18)
        moment = datetime(
            day.year, day.month, day.day, hour, self.rng.randint(0, 59), tzinfo=KENYA
        )
        now = datetime.now(KENYA)
        self.emu.set_clock(min(moment, now))
        return day

    @contextmanager
    def scenario(self, phone, **fields):
        self.emu.set_scenario(phone, **{"delay": SCENARIO_DELAY, **fields})
        try:
            yield
        finally:
            with self.emu.state.lock:
                self.emu.state.scenarios.pop(phone, None)

    def count(self, what):
        self.stats[what] = self.stats.get(what, 0) + 1

    # === DOCUMENTS (staff, in the backend) === #

    def lines(self, count=None):
        count = count or self.rng.randint(1, 3)
        names = self.rng.sample(PRODUCTS, count)
        return [(name, self.rng.randint(1, 4)) for name in names]

    def invoice(self, customer, day, lines):
        odoo = self.odoo
        invoice_id = odoo(
            "account.move",
            "create",
            {
                "move_type": "out_invoice",
                "partner_id": self.customers[customer],
                "invoice_date": day.isoformat(),
                "invoice_line_ids": [
                    (0, 0, {"product_id": self.products[name][0], "quantity": qty})
                    for name, qty in lines
                ],
            },
        )
        odoo("account.move", "action_post", [invoice_id])
        return self.read_invoice(invoice_id)

    def read_invoice(self, invoice_id):
        return self.odoo.read_one(
            "account.move",
            invoice_id,
            ["name", "amount_total", "amount_residual", "payment_state"],
        )

    # === CUSTOMERS (the portal's payment form, their phone) === #

    def portal_payment(self, portal_url, phone, amount=None, callbacks=1):
        """Open a portal page or payment link, pay by M-PESA on the phone, land on
        the status page (its poll books the payment). Returns the transaction."""
        odoo = self.odoo
        browser = requests.Session()
        page = browser.get(odoo.url + portal_url, timeout=60)
        page.raise_for_status()
        form = payment_form(page.text)
        params = {
            "provider_id": self.provider,
            "payment_method_id": self.method,
            "token_id": None,
            "amount": amount if amount is not None else float(form["amount"]),
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": form["landing_route"],
            "is_validation": False,
            "access_token": form["access_token"],
        }
        if form["transaction_route"] == "/payment/transaction":
            params.update(
                currency_id=int(form["currency_id"]),
                partner_id=int(form["partner_id"]),
                reference_prefix=form.get("reference_prefix") or None,
            )
        processing = odoo.jsonrpc(form["transaction_route"], params, browser)
        before = len(self.emu.deliveries)
        odoo.jsonrpc(
            "/payment/mpesa/stk_push",
            {
                "reference": processing["reference"],
                "access_token": processing["mpesa_access_token"],
                "phone": phone,
            },
            browser,
        )
        # A delivery is logged once Odoo has answered it: the callback is stored, and
        # the status page's poll below applies it.
        wait_until(
            lambda: (
                len(
                    [
                        d
                        for d in self.emu.deliveries[before:]
                        if d.kind == "stk_callback"
                    ]
                )
                >= callbacks
            ),
            "the STK callback",
        )
        odoo.jsonrpc("/payment/status/poll", {}, browser)
        return self.odoo(
            "payment.transaction",
            "search_read",
            [("reference", "=", processing["reference"])],
            fields=["state", "mpesa_receipt_code", "amount", "is_post_processed"],
        )[0]

    def portal_url(self, model, record_id):
        return self.odoo(model, "get_portal_url", [record_id])

    def pay_invoice_stk(self, customer, invoice, phone=None, callbacks=1):
        tx = self.portal_payment(
            self.portal_url("account.move", invoice["id"]),
            phone or PHONES[customer],
            callbacks=callbacks,
        )
        self.count("stk")
        return tx

    def c2b(self, customer, amount, reference, style=None, till=False, phone=None):
        """The customer pays by paybill (or at the till); waits until Odoo has the
        receipt and M-PESA's confirmation of it."""
        phone = phone or PHONES[customer]
        style = style or self.rng.choice(["plain", "masked", "masked", "hashed"])
        before = len(self.emu.deliveries)
        code = self.emu.c2b_pay(
            TILL if till else PAYBILL,
            phone,
            int(amount),
            reference,
            msisdn_style=style,
            first_name=FIRST_NAMES.get(customer, "JOHN"),
        )
        wait_until(
            lambda: any(
                d.kind == "c2b_confirmation" for d in self.emu.deliveries[before:]
            ),
            "the C2B confirmation",
        )
        # Applied by the inbox job (no cron worker here): the confirmation, then
        # M-PESA's Transaction Status result that verifies it.
        wait_until(
            lambda: self.apply_inbox() or self.confirmed(code),
            f"receipt {code} confirmed",
        )
        self.count("till" if till else "paybill")
        return code

    def confirmed(self, code):
        rows = self.odoo(
            "mpesa.receipt",
            "search_read",
            [("name", "=", code)],
            fields=["verification", "state"],
        )
        return rows and rows[0]["verification"] not in ("pending",) and rows[0]

    def exception(self, code):
        rows = self.odoo(
            "mpesa.exception",
            "search_read",
            [("receipt_code", "=", code), ("state", "=", "open")],
            fields=["kind", "partner_id", "suggested_partner_id"],
        )
        if not rows:
            raise DemoError(f"receipt {code} has no open exception")
        return rows[0]

    def apply_inbox(self):
        """The callback inbox job, which a stored callback wakes on a server with cron
        workers: it applies what M-PESA sent. Returns nothing."""
        self.odoo.run_cron("mpesa_payment.cron_apply_inbox")

    def post_process(self):
        """The jobs a cron worker would have run by now: the callback inbox, payment
        post-processing, and the ranking of suggestions for the M-PESA bank lines
        still waiting (which also reconciles the certain ones)."""
        self.apply_inbox()
        self.odoo.run_cron("payment.cron_post_process_payment_tx")
        self.odoo.run_cron("mpesa_reconciliation.cron_mpesa_suggestions")

    def query_balance(self, provider):
        """As an admin on the provider form (Check Balance): M-PESA answers with a
        Result on our ResultURL, which records the balance on the provider (the
        dashboard's M-PESA balance, and the books check compares it to the journal)."""
        before = len(self.emu.deliveries)
        self.odoo("payment.provider", "action_mpesa_check_balance", [provider])
        wait_until(
            lambda: any(d.kind == "result" for d in self.emu.deliveries[before:]),
            "the balance result",
        )
        self.apply_inbox()
        row = self.odoo.read_one(
            "payment.provider", provider, ["mpesa_balance_date", "mpesa_shortcode"]
        )
        if not row["mpesa_balance_date"]:
            raise DemoError(f"no balance recorded for {row['mpesa_shortcode']}")
        self.count("balance query")


def payment_form(html):
    """The data-* attributes of Odoo's payment form (#o_payment_form)."""
    from lxml import etree

    tree = etree.fromstring(html, etree.HTMLParser())
    forms = tree.xpath('//form[@id="o_payment_form"]')
    if not forms:
        raise DemoError("the page has no payment form")
    return {
        key[5:].replace("-", "_"): value
        for key, value in forms[0].items()
        if key.startswith("data-")
    }


def check_books(odoo, providers):
    """The daily books check, run now (its Run Manually button); its findings."""
    odoo.run_cron("mpesa_reconciliation.cron_mpesa_check_books")
    rows = odoo(
        "payment.provider",
        "read",
        providers,
        ["mpesa_books_checked_on", "mpesa_books_differences"],
    )
    if not all(row["mpesa_books_checked_on"] for row in rows):
        raise DemoError("the books check did not run")
    return [
        row["mpesa_books_differences"] for row in rows if row["mpesa_books_differences"]
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--odoo", required=True, help="Odoo's URL")
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=8070, help="emulator port")
    args = parser.parse_args()
    random.seed(SEED)  # the emulator's receipt codes
    key_file = os.environ.get("MPESA_DEMO_EMULATOR_KEY")
    emulator = DarajaEmulator(
        port=args.port,
        key_pair=KeyPair.from_file(key_file) if key_file else None,
    )
    emulator.add_shortcode(TILL_STORE, TILL_PASSKEY, kind="till", till=TILL)
    # Daraja answers in seconds, not the emulator's default 50 ms: an answer that came
    # before Odoo committed the request it answers would be refused as unknown (Odoo
    # asks again only 10 minutes later), and on a busy machine 50 ms is too short.
    emulator.result_delay = 1.0
    emulator.set_default_scenario(delay=SCENARIO_DELAY)
    started = time.monotonic()
    with emulator:
        odoo = Odoo(args.odoo, args.db)
        today = datetime.now(KENYA).date()
        history = History(odoo, emulator, today)
        history.configure()
        try:
            tell(history)
        finally:
            emulator.set_clock(None)
            history.restore_limits()
        history.post_process()
        for provider in (history.provider, history.till_provider):
            history.query_balance(provider)
        differences = check_books(odoo, [history.provider, history.till_provider])
    log(f"payments: {history.stats}; {time.monotonic() - started:.0f} s")
    problems = check_demo(odoo)
    if differences:
        problems.append(f"the books check found differences: {differences}")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    if problems:
        return 1
    log("books check clean; dashboard, analysis, exceptions and reconciliation filled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
