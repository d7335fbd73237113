"""A KES shop, portal and accounting set-up paying by M-PESA against the Daraja emulator.

Everything goes through the real HTTP server of the test: the pages, the JSON routes the
payment form calls, and the STK callbacks the emulator POSTs to ``web.base.url``.
"""

import json
import threading
import time
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

from daraja_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_INITIATOR,
    DEFAULT_INITIATOR_PASSWORD,
    DEFAULT_PASSKEY,
    DEFAULT_SHORTCODE,
    DarajaEmulator,
)

import odoo
from odoo import SUPERUSER_ID, api
from odoo.fields import Command
from odoo.tests.common import TEST_CURSOR_COOKIE_NAME

from odoo.addons.account_payment.tests.common import AccountPaymentCommon
from odoo.addons.mpesa_payment.tests.common import build_static_folders
from odoo.addons.payment.tests.http_common import PaymentHttpCommon

# The number the customers type in the tours, and the MSISDN Daraja sees.
PHONE_LOCAL = "0708374149"
PHONE = "254708374149"
# Magic number of the emulator: the customer cancels the prompt (ResultCode 1032).
PHONE_CANCELS = "254700001032"
CANCEL_REASON = "You cancelled the payment request on your phone."
# Where Daraja posts STK results (mpesa_payment/controllers/main.py).
CALLBACK_PREFIX = "/payment/daraja/"


class MpesaE2ECommon(AccountPaymentCommon, PaymentHttpCommon):
    """A company selling in KES on its website, with M-PESA as its only published provider."""

    # A generic chart: the Kenyan one (l10n_ke) is not a dependency of this test addon.
    chart_template = "generic_coa"

    @classmethod
    def setup_independent_company(cls, **kwargs):
        kes = cls._enable_currency("KES")
        return super().setup_independent_company(
            currency_id=kes.id, country_id=cls.env.ref("base.ke").id, **kwargs
        )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        build_static_folders()  # before any browser: see there why
        cls.emulator = DarajaEmulator().start()
        cls.addClassCleanup(cls.emulator.stop)

        cls.currency_kes = cls._enable_currency("KES")
        cls.currency = cls.currency_kes
        cls.country_ke = cls.env.ref("base.ke")

        # Callbacks must reach this test server (HttpCase sets it; say it explicitly).
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", cls.base_url())
        cls.env["ir.config_parameter"].sudo().set_param(
            "account_payment.enable_portal_payment", True
        )

        # M-PESA only: the dummy provider of the payment tests would show up too.
        cls.dummy_provider.write({"is_published": False, "state": "disabled"})
        cls.mpesa = cls._prepare_provider(
            "mpesa",
            update_values={
                "mpesa_consumer_key": DEFAULT_CONSUMER_KEY,
                "mpesa_consumer_secret": DEFAULT_CONSUMER_SECRET,
                "mpesa_shortcode": DEFAULT_SHORTCODE,
                "mpesa_shortcode_type": "paybill",
                "mpesa_passkey": DEFAULT_PASSKEY,
                "mpesa_initiator_name": DEFAULT_INITIATOR,
                # As an admin would: the emulator's certificate plays Safaricom's,
                # the password is encrypted with it and only the result is kept.
                "mpesa_certificate": cls.emulator.certificate_pem,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
                "mpesa_api_url": cls.emulator.base_url,
                "journal_id": cls.company_data["default_journal_bank"].id,
                "is_published": True,
            },
        )
        cls.provider = cls.mpesa
        cls.payment_method = cls.env.ref("payment.payment_method_mpesa")
        cls.payment_method.active = True
        cls.payment_method_id = cls.payment_method.id

        # The website sells in KES for the test company.
        cls.website = cls.env.ref("website.default_website")
        cls.website.company_id = cls.company
        cls.pricelist.write(
            {
                "currency_id": cls.currency_kes.id,
                "website_id": cls.website.id,
                "company_id": cls.company.id,
            }
        )
        cls.product_wrap = cls.env["product.product"].create(
            {
                "name": "Kikoi Beach Wrap",
                "type": "service",
                "list_price": 1500.0,
                "taxes_id": [Command.clear()],
                "website_published": True,
                "invoice_policy": "order",
            }
        )
        cls.product_safari = cls.env["product.product"].create(
            {
                "name": "Maasai Mara Day Trip",
                "type": "service",
                "list_price": 10000.0,
                "taxes_id": [Command.clear()],
                "invoice_policy": "order",
            }
        )

        # A Kenyan portal customer with a complete address (the shop skips the address step).
        cls.portal_partner.write(
            {
                "name": "Wanjiku Kamau",
                "email": "wanjiku@example.com",
                "phone": "0711000000",
                "mobile": False,
                "street": "Moi Avenue 12",
                "city": "Nairobi",
                "zip": "00100",
                "country_id": cls.country_ke.id,
                "lang": "en_US",
            }
        )
        cls.partner = cls.portal_partner
        # Staff who send payment links: an accountant who also sells.
        cls.staff_user = cls.env.user
        cls.staff_user.groups_id += cls.env.ref(
            "sales_team.group_sale_salesman_all_leads"
        )

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.emulator.auto_complete = True
        self.addCleanup(self._quiet_emulator)

    def _quiet_emulator(self):
        """No prompt of this test may call back into the next one."""
        self.emulator.auto_complete = True
        self.emulator.reset()
        time.sleep(0.2)

    # === TEST SERVER === #

    def check_test_cursor(self, operation):
        """Let Daraja's callbacks in: Safaricom sends no cookie, and the test server refuses
        cookie-less requests once a browser ran. Only the callback routes, only for this
        test: anything else keeps the strict check."""
        request = odoo.http.request
        if (
            request
            and odoo.modules.module.current_test is self
            and self.http_request_key
            and request.httprequest.path.startswith(CALLBACK_PREFIX)
            and not request.httprequest.cookies.get(TEST_CURSOR_COOKIE_NAME)
        ):
            return
        super().check_test_cursor(operation)

    @contextmanager
    def _db_lock(self):
        """The test thread and the server's request threads share one connection: keep the
        callbacks out while this thread reads or writes."""
        with self.registry.test_lock:
            yield
            self.env.flush_all()
        self.env.invalidate_all()

    def authenticate(self, user, password, **kwargs):
        """Under the test lock: ``browser_js`` opens the browser's session here, reading
        the user and its languages on the test's own cursor, while the inbox job of
        ``_inbox_job_running`` may be using that same connection from its thread. Once
        the two interleaved, the languages read came back empty, that empty list was
        cached, and every page of the tour answered 500 (fresh clone, 2026-12-07)."""
        with self._db_lock():
            return super().authenticate(user, password, **kwargs)

    def _wait_callbacks(self, count=1, timeout=20):
        deliveries = self.emulator.wait_for_deliveries(
            count, timeout=timeout, kind="stk_callback"
        )
        for delivery in deliveries:
            self.assertEqual(
                delivery.status, 200, f"callback refused: {delivery.response_text}"
            )
        # The request thread answered; let it close its cursor before we use ours.
        self._wait_remaining_requests()
        self._apply_inbox()
        return deliveries

    def _apply_inbox(self):
        """The routes only store and answer; Odoo's cron worker, woken by each stored
        body, applies the money. No cron worker runs under test: run its job here."""
        with self._db_lock():
            self.env["mpesa.callback"]._cron_apply_inbox()

    @contextmanager
    def _inbox_job_running(self, every=0.2):
        """Stand in for the cron worker while a browser runs on its own: the inbox job
        applies what arrives shortly after, as in production. Its thread takes the
        test lock through its cursor; what this thread does on its own cursor meanwhile
        holds that lock too (``authenticate`` above)."""
        with self.registry.test_lock:
            self.env.flush_all()  # the job's cursor sees what the test wrote
        stop, errors, registry = threading.Event(), [], self.registry

        def run():
            while not stop.wait(every):
                try:
                    with registry.cursor() as cr:
                        env = api.Environment(cr, SUPERUSER_ID, {})
                        env["mpesa.callback"]._cron_apply_inbox()
                except Exception as error:  # noqa: BLE001 - reported by the test
                    errors.append(error)
                    return

        worker = threading.Thread(target=run, name="mpesa-inbox-job", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()
        self.assertFalse(errors, "the inbox job failed")

    def _wait_for(self, predicate, timeout=20, message="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._apply_inbox()
            with self._db_lock():
                if predicate():
                    return
            time.sleep(0.1)
        self.fail(f"Timed out waiting for {message}")

    # === CUSTOMER ACTIONS (what the payment form's JavaScript does) === #

    def _payment_context(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        return self._get_payment_context(response), response

    def _create_tx_through_route(self, context, amount=None):
        """Call the document's transaction route like the payment form does."""
        self.assertIn(self.payment_method_id, context["payment_method_ids"])
        params = {
            "provider_id": self.mpesa.id,
            "payment_method_id": self.payment_method_id,
            "token_id": None,
            "amount": amount if amount is not None else context["amount"],
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": context["landing_route"],
            "is_validation": False,
            "access_token": context["access_token"],
        }
        if context["transaction_route"] == "/payment/transaction":
            params.update(
                {
                    "currency_id": context["currency_id"],
                    "partner_id": context["partner_id"],
                    "reference_prefix": context.get("reference_prefix"),
                }
            )
        return self.make_jsonrpc_request(context["transaction_route"], params)

    def _stk_push(self, processing_values, phone=PHONE_LOCAL):
        return self.make_jsonrpc_request(
            "/payment/mpesa/stk_push",
            {
                "reference": processing_values["reference"],
                "access_token": processing_values["mpesa_access_token"],
                "phone": phone,
            },
        )

    def _json_error(self, route, params):
        """Call a JSON route that must fail; return the error message shown to the user."""
        response = self.url_open(
            route,
            data=json.dumps(
                {"jsonrpc": "2.0", "method": "call", "id": 0, "params": params}
            ),
            headers={"Content-Type": "application/json"},
        )
        error = response.json().get("error")
        self.assertTrue(error, f"{route} should have failed")
        return error["data"]["message"]

    def _staff_payment_link(self, record):
        """What a salesperson or accountant does in the backend: Generate a Payment Link."""
        self.authenticate(self.staff_user.login, self.staff_user.login)
        context = {
            "active_model": record._name,
            "active_id": record.id,
            "allowed_company_ids": [self.company.id],
        }

        # The dialog saves the wizard and displays its fields (one read/write request).
        [values] = self.make_jsonrpc_request(
            "/web/dataset/call_kw/payment.link.wizard/web_save",
            {
                "model": "payment.link.wizard",
                "method": "web_save",
                "args": [[], {}],
                "kwargs": {
                    "context": context,
                    "specification": {
                        "link": {},
                        "amount": {},
                        "amount_paid": {},
                        "warning_message": {},
                    },
                },
            },
        )
        self.assertFalse(values["warning_message"])
        link = urlsplit(values["link"])
        self.assertEqual(f"{link.scheme}://{link.netloc}", self.base_url())
        values["path"] = f"{link.path}?{link.query}".replace("//", "/")
        values["query"] = dict(parse_qsl(link.query))
        return values

    def _poll(self):
        """What /payment/status does every few seconds (and the post-processing it runs)."""
        return self.make_jsonrpc_request("/payment/status/poll", {})

    def _tx(self, processing_values):
        return self._get_tx(processing_values["reference"])

    # === DOCUMENTS === #

    def _create_quotation(self, product, **values):
        return self.env["sale.order"].create(
            {
                "partner_id": self.portal_partner.id,
                "company_id": self.company.id,
                "pricelist_id": self.pricelist.id,
                "order_line": [Command.create({"product_id": product.id})],
                **values,
            }
        )

    def _shop_context(self, order):
        """The payment context /shop/payment gives the payment form."""
        return {
            "transaction_route": f"/shop/payment/transaction/{order.id}",
            "landing_route": "/shop/payment/validate",
            "access_token": order._portal_ensure_token(),
            "amount": order.amount_total,
            "payment_method_ids": [self.payment_method_id],
        }

    def _create_posted_invoice(self, amount=2500.0):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.portal_partner.id,
                "currency_id": self.currency_kes.id,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Boda boda delivery, March",
                            "quantity": 1,
                            "price_unit": amount,
                            "tax_ids": [Command.clear()],
                        }
                    )
                ],
            }
        )
        invoice.action_post()
        return invoice

    def _staff_invoices_order(self, order):
        """Staff click Create Invoice on the order (regular invoice), then Confirm."""
        with self._db_lock():
            wizard = (
                self.env["sale.advance.payment.inv"]
                .with_context(active_model="sale.order", active_ids=order.ids)
                .create({"advance_payment_method": "delivered"})
            )
            wizard.create_invoices()
            invoice = order.invoice_ids
            invoice.action_post()
        return invoice

    def _assert_paid_by_mpesa(self, tx, amount):
        self.assertEqual(tx.state, "done", tx.state_message)
        self.assertEqual(tx.amount, amount)
        self.assertEqual(tx.mpesa_paid_amount, amount)
        self.assertTrue(tx.mpesa_receipt_code, "an M-PESA receipt code is recorded")
        self.assertFalse(tx.mpesa_needs_review)
        self.assertTrue(tx.is_post_processed)
        self.assertTrue(tx.payment_id, "the accounting payment was created")
        self.assertEqual(tx.payment_id.amount, amount)
        receipt = (
            self.env["mpesa.receipt"]
            .sudo()
            .search([("name", "=", tx.mpesa_receipt_code)])
        )
        self.assertEqual(receipt.transaction_id, tx)
        self.assertEqual(receipt.amount, amount)

    def _assert_invoice_paid_by(self, invoice, txs):
        """As an accountant checks: the invoice paid by exactly these payments, each
        matched with its M-PESA bank line, and the books check clean."""
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertTrue(invoice.currency_id.is_zero(invoice.amount_residual))
        self.assertEqual(invoice.transaction_ids, txs)
        self.assertEqual(invoice._get_reconciled_payments(), txs.payment_id)
        receivable = invoice.line_ids.filtered(
            lambda line: line.account_id.account_type == "asset_receivable"
        )
        self.assertTrue(receivable.reconciled)
        self.assertEqual(
            receivable.matched_credit_ids.credit_move_id.move_id, txs.payment_id.move_id
        )
        if "statement_line_id" in self.env["mpesa.receipt"]._fields:
            for payment in txs.payment_id:
                self.assertEqual(payment.state, "paid", "matched with its bank line")
            self.assertEqual(self.mpesa._mpesa_check_books(), [])
