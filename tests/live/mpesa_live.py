"""The M-PESA set-up of the live database and what customers and Safaricom do to it."""

import base64
import configparser
import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import requests
from daraja_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_INITIATOR,
    DEFAULT_INITIATOR_PASSWORD,
    DEFAULT_PASSKEY,
    DEFAULT_SHORTCODE,
)
from daraja_emulator import c2b as emulator_c2b
from daraja_emulator import helpers as emulator_helpers
from daraja_emulator import stk as emulator_stk

from .harness import (
    E2E_ADDONS,
    ODOO_BIN,
    ODOO_CONF,
    REPO,
    Rpc,
    WebClient,
    http,
    pg_env,
    wait_until,
)

# A customer's number as typed in the payment form, and as Daraja sees it.
PHONE_LOCAL = "0708374149"
PHONE = "254708374149"
# The org portal's statement export (as mpesa_reconciliation/tests/test_statement_import.py).
STATEMENT_HEADER = (
    "Jua Kali Traders Ltd\nShortcode 174379\n\n"
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,"
    "Linked Transaction ID,A/C No.\n"
)
KES_PER_USD = 129.0


def mistyped(number):
    """``number`` with its last digit typed wrong, as a customer might."""
    return number[:-1] + ("1" if number[-1] != "1" else "2")


class LiveMpesa:
    """A KES invoice paid by M-PESA on a real server; emulator = Safaricom."""

    def __init__(self, server, rpc, sql, emulator):
        self.server, self.rpc, self.sql, self.emulator = server, rpc, sql, emulator
        self.url = server.url

    # === SET-UP (once per session, as an administrator would through the UI) === #

    def configure(self):
        rpc = self.rpc
        # Like Daraja, the emulator takes only a credential really encrypted with its
        # certificate (the provider encrypts the initiator password below).
        self.emulator.fixed_credentials = False
        rpc("ir.config_parameter", "set_param", "web.base.url", self.url)
        rpc("ir.config_parameter", "set_param", "web.base.url.freeze", "True")

        # The company keeps its currency (USD on the test database); invoices are in KES.
        [self.kes_id] = rpc(
            "res.currency",
            "search",
            [("name", "=", "KES"), ("active", "in", [True, False])],
        )
        rpc("res.currency", "write", [self.kes_id], {"active": True})
        rpc(
            "res.currency.rate",
            "create",
            {"currency_id": self.kes_id, "name": "2020-01-01", "rate": KES_PER_USD},
        )
        # M-PESA money lands in a KES bank journal of its own.
        self.journal_id = rpc(
            "account.journal",
            "create",
            {
                "name": "M-PESA Live",
                "code": "MPLV",
                "type": "bank",
                "currency_id": self.kes_id,
            },
        )
        self.provider_id = rpc.xmlid("mpesa_payment.payment_provider_mpesa")
        rpc(
            "payment.provider",
            "write",
            [self.provider_id],
            {
                "state": "test",
                "is_published": True,
                "mpesa_consumer_key": DEFAULT_CONSUMER_KEY,
                "mpesa_consumer_secret": DEFAULT_CONSUMER_SECRET,
                "mpesa_shortcode": DEFAULT_SHORTCODE,
                "mpesa_shortcode_type": "paybill",
                "mpesa_passkey": DEFAULT_PASSKEY,
                "mpesa_initiator_name": DEFAULT_INITIATOR,
                # Typed once by the admin, encrypted with the emulator's certificate
                # (it plays Safaricom's); only the encrypted credential is stored.
                "mpesa_certificate": self.emulator.certificate_pem,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
                "mpesa_api_url": self.emulator.base_url,
                "journal_id": self.journal_id,
                # Every live test pushes from 127.0.0.1, many to one phone: the
                # prompt limits are off but in test_live_prompt_limits.py.
                "mpesa_push_limit_document": 0,
                "mpesa_push_limit_phone": 0,
                "mpesa_push_limit_address": 0,
            },
        )
        # A payment method needs an enabled provider first ("a partner in crime").
        self.method_id = rpc.xmlid("payment.payment_method_mpesa")
        rpc("payment.method", "write", [self.method_id], {"active": True})
        self.partner_id = rpc(
            "res.partner",
            "create",
            {
                "name": "Wanjiku Kamau",
                "email": "wanjiku@example.com",
                "mobile": PHONE_LOCAL,
                "country_id": rpc.xmlid("base.ke"),
            },
        )
        self.register_c2b_urls()
        return self

    def register_c2b_urls(self):
        """Register the C2B URLs with the (emulated) Daraja; public provider button."""
        self.rpc(
            "payment.provider", "action_mpesa_register_c2b_urls", [self.provider_id]
        )

    def staff(self, login, *groups, company_ids=None):
        """XML-RPC as a user of the company (or of ``company_ids``, the first their
        main one) with ``groups`` (XML ids), created by the administrator the first
        time, as the Users screen does."""
        if not self.rpc("res.users", "search", [("login", "=", login)]):
            companies = {}
            if company_ids:
                companies = {
                    "company_id": company_ids[0],
                    "company_ids": [(6, 0, list(company_ids))],
                }
            self.rpc(
                "res.users",
                "create",
                {
                    "name": login.title(),
                    "login": login,
                    "password": f"{login}-live-password",
                    "email": f"{login}@example.com",
                    "groups_id": [(4, self.rpc.xmlid(group)) for group in groups],
                    **companies,
                },
            )
        return Rpc(self.url, self.server.db, login, f"{login}-live-password")

    def manager(self):
        return self.staff("mpesa_live_manager", "mpesa_payment.group_mpesa_manager")

    def accountant(self):
        """An accountant (Billing and Bookkeeper): registers payments, cancels,
        credits and resets invoices, uses a customer's credit on an invoice."""
        return self.staff(
            "mpesa_live_accountant",
            "account.group_account_invoice",
            "account.group_account_user",
        )

    def salesperson(self):
        return self.staff(
            "mpesa_live_salesperson",
            "sales_team.group_sale_salesman",
            "account.group_account_invoice",
            "mpesa_payment.group_mpesa_user",
        )

    def reconciler(self):
        return self.staff(
            "mpesa_live_reconciler", "mpesa_reconciliation.group_mpesa_reconciler"
        )

    def provider_secrets(self):
        [values] = self.rpc(
            "payment.provider",
            "read",
            [self.provider_id],
            ["mpesa_webhook_secret", "mpesa_c2b_secret"],
        )
        return values

    # === DOCUMENTS === #

    def phone_only_customer(self, phone):
        """A customer known by phone only (no email address), as many M-PESA
        customers are; returns the partner's id."""
        return self.rpc(
            "res.partner", "create", {"name": f"Customer {phone}", "mobile": phone}
        )

    def create_invoice(self, amount, move_type="out_invoice", **values):
        """A posted customer invoice in KES (or ``currency_id``; or, with
        ``move_type`` 'out_refund' and ``reversed_entry_id``, a credit note) for the
        customer (or ``partner_id``); returns (id, name)."""
        invoice_id = self.rpc(
            "account.move",
            "create",
            {
                "partner_id": self.partner_id,
                "currency_id": self.kes_id,
                **values,
                "move_type": move_type,
                "invoice_line_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Boda boda delivery",
                            "quantity": 1,
                            "price_unit": amount,
                            "tax_ids": [(6, 0, [])],
                        },
                    )
                ],
            },
        )
        self.rpc("account.move", "action_post", [invoice_id])
        [invoice] = self.rpc("account.move", "read", [invoice_id], ["name", "state"])
        assert invoice["state"] == "posted", invoice
        return invoice_id, invoice["name"]

    # === THE CUSTOMER (what the portal's payment form does) === #

    # The portal's payment form posts to the document's transaction route.
    TRANSACTION_ROUTES = {
        "account.move": "/invoice/transaction/{}",
        "sale.order": "/my/orders/{}/transaction",
    }

    def portal_transaction(
        self, doc_id, client=None, amount=None, model="account.move", provider_id=None
    ):
        """Open the document's portal link (an invoice's, or with ``model``
        'sale.order' an order's) and create the M-PESA transaction through its
        transaction route; returns (client, processing values). ``amount``: by
        default what the invoice still owes. ``provider_id``: by default the live
        company's provider."""
        client = client or WebClient(self.url)
        portal_url = self.rpc(model, "get_portal_url", [doc_id])
        access_token = parse_qs(urlsplit(portal_url).query)["access_token"][0]
        page = client.session.get(self.url + portal_url, timeout=60)
        assert page.status_code == 200, f"portal page {portal_url}: {page.status_code}"
        if amount is None:
            amount = self.sql.scalar(
                "SELECT amount_residual FROM account_move WHERE id = %s", [doc_id]
            )
        processing = client.jsonrpc(
            self.TRANSACTION_ROUTES[model].format(doc_id),
            {
                "access_token": access_token,
                "provider_id": provider_id or self.provider_id,
                "payment_method_id": self.method_id,
                "token_id": None,
                "amount": float(amount),
                "flow": "direct",
                "tokenization_requested": False,
                "landing_route": portal_url,
                "is_validation": False,
            },
        )
        assert processing["provider_code"] == "mpesa", processing
        assert processing["mpesa_access_token"], processing
        return client, processing

    def stk_push(self, client, processing, phone=PHONE_LOCAL):
        return client.jsonrpc(
            "/payment/mpesa/stk_push",
            {
                "reference": processing["reference"],
                "access_token": processing["mpesa_access_token"],
                "phone": phone,
            },
        )

    def pay_invoice_by_push(self, amount, phone):
        """Invoice, portal transaction, STK push: returns (invoice id, tx row)."""
        invoice_id, _name = self.create_invoice(amount)
        client, processing = self.portal_transaction(invoice_id)
        answer = self.stk_push(client, processing, phone)
        assert answer["state"] in ("pending", "done"), answer
        return invoice_id, self.tx(processing["reference"])

    # === SAFARICOM (the emulator) === #

    def deliveries(self, predicate, count, timeout):
        """Wait until the emulator logged ``count`` POSTs matching ``predicate``."""

        def matching():
            found = [d for d in self.emulator.deliveries if predicate(d)]
            return found if len(found) >= count else None

        return wait_until(matching, timeout, f"{count} deliveries", 0.05)

    def stk_deliveries(self, tx, count=1, timeout=30):
        marker = f"/payment/daraja/stk/{tx['id']}."
        return self.deliveries(
            lambda d: d.kind == "stk_callback" and marker in d.url, count, timeout
        )

    def stk_token(self, tx_id, expiry=None, scope="stk"):
        """A callback URL token signed like the provider signs them."""
        expiry = int(time.time()) + 86400 if expiry is None else int(expiry)
        secret = self.provider_secrets()["mpesa_webhook_secret"] or ""
        signature = hmac.new(
            secret.encode(), f"{scope}:{tx_id}:{expiry}".encode(), hashlib.sha256
        ).hexdigest()[:40]
        return f"{tx_id}.{expiry}.{signature}"

    def c2b_url(self, kind="confirmation"):
        registered = self.emulator.state.shortcodes[DEFAULT_SHORTCODE].c2b
        assert registered, "C2B URLs are registered with the emulator"
        url = registered[f"{kind}_url"]
        assert url.startswith(self.url), url
        return url[len(self.url) :]

    def stk_callback(self, tx):
        """(path, exact bytes) of the callback the emulator has for ``tx``'s prompt
        (settled already with ``no_callback``: it just was not sent)."""
        prompt = wait_until(
            lambda: (
                (p := self.emulator.prompts.get(tx["mpesa_checkout_request_id"]))
                and p.status != "open"
                and p
            ),
            10,
            "the emulated customer to answer the prompt",
        )
        return urlsplit(prompt.callback_url).path, emulator_stk.callback_body(prompt)

    def paybill_payment(self, phone, amount, account, shortcode=DEFAULT_SHORTCODE):
        """A payment on the paybill (by default the live company's) with ``account``
        typed as the account number, once M-PESA confirmed it and the inbox job
        applied it; returns its receipt code."""
        code = self.emulator.c2b_pay(
            shortcode, phone, amount, account, msisdn_style="plain"
        )
        assert self.wait_confirmed(code) == "verified"
        self.settle_inbox()
        return code

    def import_statement(self, *rows):
        """The reconciler imports M-PESA's statement with these CSV ``rows`` through
        the statement import wizard, as its form does."""
        reconciler = self.reconciler()
        data = (STATEMENT_HEADER + "".join(rows)).encode()
        wizard_id = reconciler(
            "mpesa.statement.import",
            "create",
            {
                "provider_choice": str(self.provider_id),
                "source": "file",
                "data_file": base64.b64encode(data).decode(),
                "filename": "statement.csv",
            },
        )
        reconciler("mpesa.statement.import", "action_import", [wizard_id])

    def import_reversal_row(self, reversal, code, amount):
        """The reconciler imports M-PESA's statement that lists the reversal
        ``reversal`` of payment ``code`` (money out, its Linked Transaction ID the
        payment) through the statement import wizard, as its form does."""
        when = emulator_helpers.kenya_now().strftime("%d-%m-%Y %H:%M:%S")
        self.import_statement(
            f"{reversal},{when},{when},Reversal,Completed,,-{amount:.2f},,,"
            f"Reversal,2547****149 - JOHN,{code},\n"
        )

    def best_suggestion(self, exception_id):
        """The reconciler's Find Matches on an open exception: the suggestion ranked
        first (id, res_model, res_id)."""
        reconciler = self.reconciler()
        reconciler("mpesa.exception", "action_find_matches", [exception_id])
        [exception] = reconciler(
            "mpesa.exception", "read", [exception_id], ["suggestion_ids"]
        )
        [best] = reconciler(
            "mpesa.match.suggestion",
            "read",
            exception["suggestion_ids"][:1],
            ["res_model", "res_id"],
        )
        return best

    def c2b_notification(self, trans_id, phone, amount, bill_ref):
        """A C2B validation/confirmation body exactly as the emulator builds it."""
        code = self.emulator.state.shortcodes[DEFAULT_SHORTCODE]
        payment = {
            "trans_id": trans_id,
            "msisdn": phone,
            "amount": float(amount),
            "bill_ref": bill_ref,
            "style": "masked",
            "first_name": "JOHN",
        }
        moment = emulator_helpers.kenya_now()
        balance = emulator_helpers.money(code.balance)
        body = emulator_c2b.notification(code, payment, moment, balance)
        return json.dumps(body).encode()

    def fire(self, path, body, copies):
        """POST ``body`` ``copies`` times at once, like M-PESA retrying in a burst.

        All threads start together, but at most ``8 x workers`` connections are opened
        at the same moment: that is the listen backlog of Odoo's prefork server, and a
        bare server (no reverse proxy in front, unlike production) gets SYN-cookie
        resets from the kernel beyond it. Only 4 requests run at a time anyway (one per
        worker), so the database sees the same race either way.
        Returns [(status or None, text or error)].
        """
        gate = threading.BoundedSemaphore(8 * self.server.workers)
        start = threading.Barrier(copies)
        results = []

        def post():
            start.wait()
            with gate:
                try:
                    response = http().post(
                        self.url + path,
                        data=body,
                        headers={"Content-Type": "application/json"},
                        timeout=120,
                    )
                    results.append((response.status_code, response.text))
                except requests.RequestException as error:
                    results.append((None, repr(error)))

        threads = [threading.Thread(target=post, daemon=True) for _ in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert len(results) == copies, f"{copies - len(results)} requests hung"
        return results

    def lock_waiters(self, pattern):
        """Server backends of this database waiting for a lock, running ``pattern``."""
        return self.sql.all(
            "SELECT pid, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND query ILIKE %s",
            [pattern],
        )

    # === WHAT THE DATABASE SAYS === #

    def tx(self, reference=None, tx_id=None):
        where, param = ("reference", reference) if reference else ("id", tx_id)
        return self.sql.one(
            "SELECT id, reference, state, amount, mpesa_receipt_code, mpesa_checkout_request_id,"
            " mpesa_needs_review, is_post_processed, payment_id, state_message"
            f" FROM payment_transaction WHERE {where} = %s",
            [param],
        )

    def wait_tx_state(self, tx_id, states, timeout):
        def reached():
            row = self.tx(tx_id=tx_id)
            return row if row["state"] in states else None

        return wait_until(reached, timeout, f"transaction {tx_id} to be {states}")

    def receipts(self, code):
        return self.sql.dicts(
            "SELECT id, name, state, amount, transaction_id, statement_line_id"
            " FROM mpesa_receipt WHERE name = %s",
            [code],
        )

    def payments_of(self, code):
        """The transactions that pay with receipt ``code``'s money and whose payment
        stands (not cancelled), oldest first."""
        return [
            tx_id
            for (tx_id,) in self.sql.all(
                "SELECT tx.id FROM payment_transaction tx"
                " JOIN mpesa_receipt r ON r.id = tx.mpesa_source_receipt_id"
                " JOIN account_payment p ON p.id = tx.payment_id"
                " WHERE r.name = %s AND p.state != 'canceled' ORDER BY tx.id",
                [code],
            )
        ]

    def wait_confirmed(self, code, timeout=30):
        """M-PESA's Transaction Status answer to a paybill notification reaches the
        server's result URL a moment later: wait until it is applied."""

        def confirmed():
            rows = self.sql.all(
                "SELECT verification FROM mpesa_receipt WHERE name = %s", [code]
            )
            return rows and rows[0][0] != "pending" and rows[0][0]

        return wait_until(confirmed, timeout, f"M-PESA to confirm {code}")

    def open_exception(self, where, params, timeout=60):
        """The receipt's open exception (id, kind, expected amount, receipt code and
        id) once it is there."""

        def opened():
            return self.sql.dicts(
                "SELECT e.id, e.kind, r.expected_amount, r.name AS code,"
                " r.id AS receipt_id"
                " FROM mpesa_exception e JOIN mpesa_receipt r ON r.id = e.receipt_id"
                f" WHERE e.state = 'open' AND {where}",
                params,
            )

        (exception,) = wait_until(opened, timeout, "an open exception")
        return exception

    def set_provider(self, values):
        self.rpc("payment.provider", "write", [self.provider_id], values)

    def statement_lines(self, code):
        """Bank statement lines of the M-PESA journal for a receipt code."""
        return self.sql.dicts(
            "SELECT l.id, l.amount, l.is_reconciled, l.mpesa_receipt_id, l.payment_ref"
            " FROM account_bank_statement_line l"
            " LEFT JOIN mpesa_receipt r ON r.id = l.mpesa_receipt_id"
            " WHERE r.name = %s OR l.payment_ref LIKE %s",
            [code, f"{code}%"],
        )

    def callback_states(self, where, params):
        rows = self.sql.all(f"SELECT state FROM mpesa_callback WHERE {where}", params)
        return Counter(state for (state,) in rows)

    def invoice(self, invoice_id):
        return self.sql.one(
            "SELECT id, name, state, payment_state, amount_residual, amount_total"
            " FROM account_move WHERE id = %s",
            [invoice_id],
        )

    def receivable_of(self, invoice_ids, tx_ids):
        """The receivable in KES left by these invoices (and credit notes), the
        payments of these transactions and their receipts' bank lines (the receipt
        a payment applies, and a refund's own): what the customer still owes for
        them (a bank line reconciled with the invoice beside the payment would
        credit it a second time)."""
        return self.sql.scalar(
            "SELECT coalesce(sum(aml.amount_currency), 0) FROM account_move_line aml"
            " JOIN account_account acc ON acc.id = aml.account_id"
            " WHERE acc.account_type = 'asset_receivable'"
            " AND aml.parent_state = 'posted' AND aml.move_id IN ("
            "   SELECT unnest(%s::int[])"
            "   UNION SELECT pay.move_id FROM payment_transaction tx"
            "     JOIN account_payment pay ON pay.id = tx.payment_id"
            "    WHERE tx.id = ANY(%s)"
            "   UNION SELECT l.move_id FROM payment_transaction tx"
            "     JOIN mpesa_receipt r ON r.id = tx.mpesa_source_receipt_id"
            "       OR r.transaction_id = tx.id"
            "     JOIN account_bank_statement_line l ON l.id = r.statement_line_id"
            "    WHERE tx.id = ANY(%s))",
            [list(invoice_ids), list(tx_ids), list(tx_ids)],
        )

    def books_of_payments(self, tx_ids):
        """Per transaction, what an accountant checks: the payment (state, type,
        journal, amount), whether its outstanding line is reconciled, its receipt's
        bank line (the receipt it applies, or a refund's own), whether that line is
        reconciled, and whether it touches a receivable itself."""
        return self.sql.dicts(
            "SELECT tx.reference, pay.state AS payment_state, pay.payment_type,"
            " pay.journal_id, pay.amount, r.name AS receipt,"
            " l.journal_id AS line_journal_id, l.amount AS line_amount,"
            " (SELECT bool_and(aml.reconciled) FROM account_move_line aml"
            "   WHERE aml.move_id = pay.move_id"
            "     AND aml.account_id = pay.outstanding_account_id) AS outstanding_cleared,"
            " l.is_reconciled AS line_reconciled,"
            " EXISTS (SELECT 1 FROM account_move_line aml"
            "   JOIN account_account acc ON acc.id = aml.account_id"
            "  WHERE aml.move_id = l.move_id"
            "    AND acc.account_type = 'asset_receivable') AS line_on_receivable"
            " FROM payment_transaction tx"
            " JOIN account_payment pay ON pay.id = tx.payment_id"
            " JOIN mpesa_receipt r ON r.id = tx.mpesa_source_receipt_id"
            "   OR (r.transaction_id = tx.id AND r.kind = 'refund')"
            " JOIN account_bank_statement_line l ON l.id = r.statement_line_id"
            " WHERE tx.id = ANY(%s) ORDER BY tx.id",
            [list(tx_ids)],
        )

    def assert_books(self, tx_ids, invoice_ids, credit=0, provider_ids=None):
        """The books of these payments of these invoices, as an accountant checks
        them: each payment matched with its bank line, the invoices paid in full,
        and ``credit`` (paid beyond them: the customer's credit) left over; the books
        check of the live company's provider (or of ``provider_ids``) clean."""
        rows = self.books_of_payments(tx_ids)
        assert len(rows) == len(tx_ids), rows
        cleared = {
            "payment_state": "paid",
            "outstanding_cleared": True,
            "line_reconciled": True,
            "line_on_receivable": False,
        }
        for row in rows:
            assert {key: row[key] for key in cleared} == cleared, row
        owed = self.receivable_of(invoice_ids, tx_ids)
        assert abs(owed + credit) < 0.005, f"the customer owes {owed}, not {-credit}"
        assert self.check_books(provider_ids) == []

    def recover_stuck_callbacks(self, where, params):
        """What the recovery job does a few minutes later, when the inbox job has
        taken every stored body (it skips one the job is applying): make the waiting
        callbacks old enough for it, then run it now. Returns the states before
        recovery. (After a PostgreSQL restart the new cron worker may first sleep
        its minute: hence the long wait.)"""
        self.settle_inbox(timeout=180)
        before = self.callback_states(where, params)
        waiting = {"received", "unmatched", "error"} & set(before)
        if waiting:
            self.sql.execute(
                "UPDATE mpesa_callback SET create_date = create_date - interval '5 minutes'"
                f" WHERE ({where}) AND state IN ('received', 'unmatched', 'error')",
                params,
            )
            self.rpc.run_cron("mpesa_payment.cron_process_stuck_callbacks")
        return before

    def post_process(self):
        """The payment post-processing job (scheduled jobs do not run by themselves on
        the live server)."""
        self.rpc.run_cron("payment.cron_post_process_payment_tx")

    def settle_inbox(self, timeout=60):
        """The routes store a callback and answer; the inbox job (the server's cron
        worker) applies it a moment later: wait until it has taken every stored body."""
        wait_until(
            lambda: (
                not self.sql.scalar(
                    "SELECT count(*) FROM mpesa_callback WHERE state = 'received'"
                    " AND kind IN ('stk', 'c2b_confirmation', 'result', 'timeout')"
                )
            ),
            timeout,
            "the inbox job to apply the stored callbacks",
        )

    def snapshot(self):
        """Everything money-related that hostile input must not change."""
        return {
            "receipts": self.sql.all(
                "SELECT id, name, state, amount, transaction_id FROM mpesa_receipt"
                " ORDER BY id"
            ),
            "transactions": self.sql.all(
                "SELECT id, state, mpesa_receipt_code, mpesa_needs_review, mpesa_paid_amount"
                " FROM payment_transaction ORDER BY id"
            ),
            "statement_lines": self.sql.all(
                "SELECT id, amount FROM account_bank_statement_line ORDER BY id"
            ),
            "payments": self.sql.all(
                "SELECT id, state FROM account_payment ORDER BY id"
            ),
        }

    # === BULK AND CHECKS (bursts, faults) === #

    def server_action(self, model, code, ids):
        """Run Python ``code`` on records ``ids`` as an administrator would with a
        server action (private methods included); returns its ``action`` value."""
        [model_id] = self.rpc("ir.model", "search", [("model", "=", model)])
        action_id = self.rpc(
            "ir.actions.server",
            "create",
            {
                "name": "live test",
                "model_id": model_id,
                "state": "code",
                "code": code,
            },
        )
        try:
            return self.rpc(
                "ir.actions.server",
                "run",
                [action_id],
                context={"active_model": model, "active_ids": list(ids)},
            )
        finally:
            self.rpc("ir.actions.server", "unlink", [action_id])

    def create_transactions(self, amounts, prefix):
        """Draft M-PESA transactions (no document), created in batches over
        XML-RPC; returns their ids in the order of ``amounts``."""
        ids = []
        for start in range(0, len(amounts), 100):
            ids += self.rpc(
                "payment.transaction",
                "create",
                [
                    {
                        "provider_id": self.provider_id,
                        "payment_method_id": self.method_id,
                        "partner_id": self.partner_id,
                        "currency_id": self.kes_id,
                        "amount": amount,
                        "reference": f"{prefix}-{start + i}",
                        "operation": "online_direct",
                    }
                    for i, amount in enumerate(amounts[start : start + 100])
                ],
            )
        return ids

    def push_many(self, tx_ids, phone, batch=50):
        """Send the real STK push (``_mpesa_send_stk_push``: signed callback URL, Daraja
        call, pending state) for each transaction, in server actions of ``batch``."""
        for start in range(0, len(tx_ids), batch):
            self.server_action(
                "payment.transaction",
                f"for tx in records:\n    tx._mpesa_send_stk_push({phone!r})",
                tx_ids[start : start + batch],
            )

    def check_books(self, provider_ids=None):
        """``payment.provider._mpesa_check_books()`` on the live database, through a
        server action, for the live company's provider (or ``provider_ids``): the
        list of differences."""
        result = self.server_action(
            "payment.provider",
            "action = {'differences': [list(d) for d in records._mpesa_check_books()]}",
            provider_ids or [self.provider_id],
        )
        return result["differences"]

    def check_books_cli(self, tmp_path):
        """``odoo-bin mpesa-check-books`` as a subprocess: (exit code, output). Its
        config is ``.local/odoo.conf`` plus the end-to-end addon (installed in the
        template copies) in the addons path."""
        parser = configparser.ConfigParser()
        parser.read(ODOO_CONF)
        paths = [p.strip() for p in parser["options"].get("addons_path", "").split(",")]
        addons_path = ",".join([p for p in paths if p] + [str(E2E_ADDONS)])
        parser["options"]["addons_path"] = addons_path
        conf = tmp_path / "check_books.conf"
        with open(conf, "w") as handle:
            parser.write(handle)
        result = subprocess.run(
            [
                str(ODOO_BIN),
                # Odoo finds an addon's command only with this first (odoo/cli/command.py)
                f"--addons-path={addons_path}",
                "mpesa-check-books",
                "-c",
                str(conf),
                "-d",
                self.server.db,
            ],
            cwd=REPO,
            env=pg_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return result.returncode, result.stdout + result.stderr
