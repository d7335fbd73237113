import json
import time
from contextlib import contextmanager
from importlib import resources

from daraja_emulator import DEFAULT_INITIATOR_PASSWORD, DEFAULT_PASSKEY, DarajaEmulator

import odoo
from odoo import Command, fields
from odoo.tests import HttpCase, new_test_user
from odoo.tools import hmac as hmac_tool

from odoo.addons.account_payment.tests.common import AccountPaymentCommon

from ..models.mpesa_receipt import CHANNELS

PHONE = "254708374149"
SHORTCODE = "174379"


def build_static_folders():
    """Have Odoo's server map its static folders now, in the test's thread.

    The server builds that map on the first static file a browser asks for, reading
    every manifest with ``ast`` in that request's thread, which holds no test lock. On
    CPython 3.11 two threads building ASTs at once can fail with "SystemError: AST
    constructor recursion depth mismatch" (CPython gh-106905, fixed in 3.13 by PR
    113035): the first tour of a run then got a 500 on an icon whenever the page's
    other requests parsed a domain or a view at that moment (CI, 2026-12-07).
    """
    return odoo.http.root.statics


def load_sample(name):
    """A sample payload from Daraja's documentation, as shipped with the emulator."""
    path = resources.files("daraja_emulator") / "samples" / name
    return json.loads(path.read_text())


class MpesaCommon(AccountPaymentCommon):
    """An M-PESA provider in KES talking to a real Daraja emulator over HTTP."""

    # A generic chart: the Kenyan one (l10n_ke) is not a dependency of ours.
    chart_template = "generic_coa"

    # The currency the test company keeps its books in.
    books_currency = "KES"

    @classmethod
    def setup_independent_company(cls, **kwargs):
        """A Kenyan company keeping its books in KES, like almost every real user:
        with a foreign currency OCA's reconciliation rules never match an M-PESA
        line."""
        currency = cls._enable_currency(cls.books_currency)
        return super().setup_independent_company(
            currency_id=currency.id, country_id=cls.env.ref("base.ke").id, **kwargs
        )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only a credential really encrypted with the emulator's certificate passes.
        cls.emulator = DarajaEmulator(fixed_credentials=False).start()
        cls.addClassCleanup(cls.emulator.stop)
        cls.currency_kes = cls._prepare_currency("KES")
        cls.currency = cls.currency_kes
        cls.mpesa = cls._prepare_provider(
            "mpesa",
            update_values={
                "mpesa_consumer_key": "emulator-key",
                "mpesa_consumer_secret": "emulator-secret",
                "mpesa_shortcode": "174379",
                "mpesa_shortcode_type": "paybill",
                "mpesa_passkey": DEFAULT_PASSKEY,
                "mpesa_initiator_name": "testapi",
                # As an admin would: the emulator's certificate plays Safaricom's,
                # the password is encrypted with it and only the result is kept.
                "mpesa_certificate": cls.emulator.certificate_pem,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
                "mpesa_api_url": cls.emulator.base_url,
                "journal_id": cls.company_data["default_journal_bank"].id,
            },
        )
        cls.provider = cls.mpesa
        cls.env.ref("payment.payment_method_mpesa").active = True
        # The accountant running these tests also manages M-PESA.
        cls.env.user.groups_id += cls.env.ref("mpesa_payment.group_mpesa_manager")
        cls.payment_method = cls.env.ref("payment.payment_method_mpesa")
        cls.payment_method_id = cls.payment_method.id
        cls.amount = 1250.0
        cls.partner.write(
            {"country_id": cls.env.ref("base.ke").id, "mobile": "0708374149"}
        )

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.addCleanup(self._quiet_emulator)

    def _quiet_emulator(self):
        """Stop this test's pending callbacks and let in-flight ones land, so none
        reaches the next test; customers answer by themselves again."""
        self.emulator.auto_complete = True
        self.emulator.reset()
        time.sleep(0.2)

    def _create_mpesa_tx(self, **values):
        return self._create_transaction(flow="direct", **values)

    @contextmanager
    def _db_lock(self):
        """In HttpCase the test and the server share one connection: keep the server's
        request threads (the callbacks) out while the test thread writes."""
        lock = getattr(self.registry, "test_lock", None)
        if lock is None:
            yield
            return
        with lock:
            yield

    def _push(self, tx, phone=PHONE, lock=True):
        if lock:
            with self._db_lock():
                tx._mpesa_send_stk_push(phone)
                self.env.flush_all()
        else:
            tx._mpesa_send_stk_push(phone)
        return tx

    def _wait_callbacks(self, count=1, kind="stk_callback", timeout=15):
        deliveries = self.emulator.wait_for_deliveries(
            count, timeout=timeout, kind=kind
        )
        self._apply_inbox()
        return deliveries

    def _apply_inbox(self):
        """The routes only store and answer; Odoo's cron worker, woken by each stored
        body, applies the money. No cron worker runs under test: run its job here."""
        with self._db_lock():
            self.env["mpesa.callback"]._cron_apply_inbox()
            self.env.flush_all()
        self.env.invalidate_all()

    def assertSeenBy(self, receipt, *channels):
        """Exactly ``channels`` saw the one ``receipt``: each Seen By flag checked."""
        receipt.ensure_one()
        seen = {c for c, _label in CHANNELS if receipt[receipt._seen_by_field(c)]}
        self.assertEqual(seen, set(channels))


class MpesaHttpCommon(MpesaCommon, HttpCase):
    """Callbacks reach this test's server; C2B URLs are registered with the emulator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        build_static_folders()  # before any browser: see there why
        cls.partner.email = "customer@example.com"

    @classmethod
    def _staff(cls, login, groups, company=None, **values):
        """A user of ``company`` (default: the test company) only, with ``groups``."""
        company = company or cls.env.company
        return new_test_user(
            cls.env,
            login,
            groups=groups,
            company_id=company.id,
            company_ids=[Command.set(company.ids)],
            **values,
        )

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", self.base_url()
        )
        with self._db_lock():
            self.mpesa.action_mpesa_register_c2b_urls()
            self.env.flush_all()

    def _invoice(self, amount=1000.0, partner=None):
        invoice = self.init_invoice(
            "out_invoice",
            partner=partner or self.partner,
            amounts=[amount],
            currency=self.currency_kes,
            taxes=[],
            post=True,
            # A recent invoice, as customers pay them: reconciliation rules look back
            # only so far (OCA's "Perfect Match" skips invoices over 18 months old).
            invoice_date=fields.Date.today(),
        )
        self.env.flush_all()
        return invoice

    # === WHAT THE PAYMENT FORM DOES === #

    def _tx_for(self, invoice, amount=None):
        """A transaction of the payment form for the invoice, and its access token."""
        with self._db_lock():
            tx = self._create_mpesa_tx(
                reference=f"{invoice.name}-{time.monotonic_ns()}",
                amount=amount or invoice.amount_residual,
                invoice_ids=[Command.set(invoice.ids)],
            )
            token = hmac_tool(
                self.env(su=True),
                "generate_access_token",
                f"{tx.reference}|{tx.amount}",
            )
            self.env.flush_all()
        return tx, token

    def _ask_prompt(self, tx, token, phone):
        """What the payment form does on Pay: returns (result, error message)."""
        response = self.url_open(
            "/payment/mpesa/stk_push",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "reference": tx.reference,
                        "access_token": token,
                        "phone": phone,
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ).json()
        error = response.get("error")
        if error:
            self.assertEqual(error["data"]["name"], "odoo.exceptions.ValidationError")
            return None, error["data"]["message"]
        return response["result"], None

    def _named_invoice(self, name, partner, amount=1000.0):
        """A posted invoice of today numbered ``name`` (numbers one typo apart)."""
        with self._db_lock():
            invoice = self.init_invoice(
                "out_invoice",
                partner=partner,
                amounts=[amount],
                currency=self.currency_kes,
                taxes=[],
                invoice_date=fields.Date.today(),
            )
            invoice.name = name
            invoice.action_post()
            self.env.flush_all()
        self.assertEqual(invoice.name, name)
        return invoice

    def _c2b(
        self,
        bill_ref,
        amount=1000,
        msisdn=PHONE,
        style="masked",
        version="v2",
        trans_id=None,
        count=1,
    ):
        """A paybill payment made on a phone; returns its receipt once confirmed."""
        before = len(
            [d for d in self.emulator.deliveries if d.kind == "c2b_confirmation"]
        )
        trans_id = self.emulator.c2b_pay(
            SHORTCODE,
            msisdn,
            amount,
            bill_ref,
            msisdn_style=style,
            api_version=version,
            trans_id=trans_id,
        )
        self._wait_callbacks(before + count, kind="c2b_confirmation")
        with self._db_lock():  # M-PESA's answer may be arriving on the server
            receipt = self.env["mpesa.receipt"].search([("name", "=", trans_id)])
        self._wait_confirmed(receipt)
        return receipt

    def _wait_confirmed(self, receipt, timeout=15):
        """M-PESA's Transaction Status answer to a paybill notification arrives on
        our result URL shortly after: wait until it is applied. The test and the
        server share one connection: read only while the server is kept out."""
        deadline = time.monotonic() + timeout
        while True:
            self._apply_inbox()
            with self._db_lock():
                self.env.invalidate_all()
                if receipt.verification != "pending":
                    return
            self.assertLess(time.monotonic(), deadline, "no confirmation from M-PESA")
            time.sleep(0.05)

    @staticmethod
    def _c2b_body(trans_id, amount, bill_ref, shortcode=SHORTCODE):
        """A C2B validation/confirmation body as Daraja v2 sends it (all strings)."""
        return {
            "TransactionType": "Pay Bill",
            "TransID": trans_id,
            "TransTime": "20261128101500",
            "TransAmount": amount,
            "BusinessShortCode": shortcode,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": "2547 ***** 149",
            "FirstName": "JOHN",
            "MiddleName": "",
            "LastName": "",
        }

    def _post_process(self, receipt):
        with self._db_lock():
            txs = receipt.transaction_id | receipt.application_ids
            txs._post_process()
            self.env.flush_all()


def stk_payload(tx, result_code=0, amount=None, receipt="QAB1CD2EF3", phone=None):
    """An STK callback for ``tx`` shaped like Daraja's (ints stay ints)."""
    cb = {
        "MerchantRequestID": tx.mpesa_merchant_request_id or "29115-34620561-1",
        "CheckoutRequestID": tx.mpesa_checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": "The service request is processed successfully."
        if result_code == 0
        else "Failed",
    }
    if result_code == 0:
        cb["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": tx.amount if amount is None else amount},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "TransactionDate", "Value": 20261128101500},
                {"Name": "PhoneNumber", "Value": int(phone or tx.mpesa_phone or PHONE)},
            ]
        }
    return {"Body": {"stkCallback": cb}}
