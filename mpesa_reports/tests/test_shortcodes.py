"""Several shortcodes per company (issue #12, point 5) and payers masked by M-PESA
(point 7): one Kenyan company takes money on a paybill and on a till, two M-PESA
providers, each with its own bank journal, C2B URLs, token and Daraja app.

Everything goes through the emulator over HTTP: C2B confirmations reach each provider's
own URL, STK pushes go out through each, the statement import and the Pull API fill
each journal, and the books check looks at both."""

import base64
import json
import re
from datetime import timedelta

from daraja_emulator import DEFAULT_INITIATOR_PASSWORD, DEFAULT_PASSKEY

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mpesa_payment.kenya_time import kenya_today
from odoo.addons.mpesa_payment.tests.common import PHONE, SHORTCODE

from .common import ReportsCommon

STORE = "600100"  # the till's store (head office) number: Daraja's BusinessShortCode
TILL = "600200"  # the till number customers type under Buy Goods
TILL_KEY, TILL_SECRET = "till-app-key", "till-app-secret"
STATEMENT_HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,"
    "Linked Transaction ID,A/C No.\n"
)
JSON = {"Content-Type": "application/json"}


@tagged("post_install", "-at_install")
class TestSeveralShortcodes(ReportsCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.paybill = cls.mpesa
        # A till has its own Daraja app at Safaricom (one app per shortcode): its
        # token never invalidates the paybill's.
        cls.emulator.add_app(TILL_KEY, TILL_SECRET)
        cls.emulator.add_shortcode(STORE, DEFAULT_PASSKEY, kind="till", till=TILL)
        cls.till_journal = cls.env["account.journal"].create(
            {"name": "M-PESA Till", "code": "MPTL", "type": "bank"}
        )
        # Odoo lists no "New" provider: the admin duplicates the M-PESA provider.
        cls.till = cls.paybill.copy(
            {
                "name": "M-PESA Till",
                "state": "test",
                "is_published": True,
                "sequence": cls.paybill.sequence + 1,
                "mpesa_consumer_key": TILL_KEY,
                "mpesa_consumer_secret": TILL_SECRET,
                "mpesa_shortcode": STORE,
                "mpesa_shortcode_type": "till",
                "mpesa_till_number": TILL,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
                "journal_id": cls.till_journal.id,
            }
        )
        cls.paybill.is_published = True
        cls.env["ir.config_parameter"].sudo().set_param(
            "account_payment.enable_portal_payment", True
        )
        cls.other_customer = cls.env["res.partner"].create(
            {"name": "Otieno Hardware", "country_id": cls.env.ref("base.ke").id}
        )

    def setUp(self):
        super().setUp()  # registers the paybill's C2B URLs
        with self._db_lock():
            self.till.action_mpesa_register_c2b_urls()
            self.env.flush_all()

    # === HELPERS === #

    def _pay_at(self, number, bill_ref, amount, style="masked", first_name="JOHN"):
        """A customer pays ``number`` (paybill or till) from the phone menu; returns
        the receipt once M-PESA confirmed it."""
        kind = "c2b_confirmation"
        before = len([d for d in self.emulator.deliveries if d.kind == kind])
        trans_id = self.emulator.c2b_pay(
            number, PHONE, amount, bill_ref, msisdn_style=style, first_name=first_name
        )
        self._wait_callbacks(before + 1, kind=kind)
        with self._db_lock():
            receipt = self.env["mpesa.receipt"].search([("name", "=", trans_id)])
        self.assertEqual(len(receipt), 1, f"{trans_id} in the ledger")
        self._wait_confirmed(receipt)
        return receipt

    def _push_through(self, provider, invoice):
        """An STK push for ``invoice`` through ``provider``."""
        with self._db_lock():
            tx = self._create_transaction(
                flow="direct",
                provider_id=provider.id,
                amount=invoice.amount_residual,
                invoice_ids=[Command.set(invoice.ids)],
                reference=f"{invoice.name}-{provider.id}",
            )
            self.env.flush_all()
        return self._push(tx)

    def _check_books(self):
        with self._db_lock():
            return (self.paybill | self.till)._mpesa_check_books()

    def _assert_in_journal(self, receipt, provider):
        self.assertEqual(receipt.provider_id, provider)
        self.assertEqual(receipt.shortcode, provider.mpesa_shortcode)
        self.assertEqual(receipt.statement_line_id.journal_id, provider.journal_id)

    # === TESTS === #

    def test_paybill_and_till_each_book_in_their_own_journal(self):
        """Paybill money by account number, till money (Buy Goods: no account number)
        through the exception queue; each in its journal, routed by its own URL,
        pulled by its own shortcode, and seen apart by the dashboard, the analysis,
        the export and the customer's portal. Both payers are masked, as M-PESA
        sends them since 2026 (point 7)."""
        self.assertNotEqual(self.paybill.journal_id, self.till.journal_id)
        customer = self.portal_partner
        invoice = self._invoice(1000, partner=customer)
        till_invoice = self._invoice(450, partner=customer)
        receivable_before = self._receivable_balance(customer)
        typed = invoice.name.lower().replace("/", " ")  # as customers type it
        by_paybill = self._pay_at(
            SHORTCODE, typed, 1000, style="masked_compact", first_name="W****** K****"
        )
        self._post_process(by_paybill)
        self.assertEqual(
            (by_paybill.state, by_paybill.invoice_id), ("applied", invoice)
        )
        self._assert_in_journal(by_paybill, self.paybill)
        self._assert_masked_payer(by_paybill, typed, customer)

        # Buy Goods: the customer types the till number and the amount, nothing else.
        by_till = self._pay_at(TILL, "", 450)
        self._assert_in_journal(by_till, self.till)
        self.assertEqual(by_till.verification, "verified", "asked the till's M-PESA")
        self.assertEqual(by_till.state, "review", "nothing names what it pays")
        self.assertFalse(by_till.partner_id | by_till.suggested_partner_id, "masked")
        exception = self.env["mpesa.exception"].search(
            [("receipt_id", "=", by_till.id), ("state", "=", "open")]
        )
        self.assertEqual(len(exception), 1, "the till's payment waits in the queue")
        # The queue's "Paybill / Till" search (mpesa_exception_views.xml).
        self.assertEqual(
            self.env["mpesa.exception"].search(
                [
                    ("receipt_id.provider_id", "ilike", self.till.name),
                    ("state", "=", "open"),
                ]
            ),
            exception,
        )
        wizard = (
            self.env["mpesa.exception.allocate"]
            .with_context(default_exception_id=exception.id)
            .create({"partner_id": customer.id})
        )
        wizard.line_ids = [
            Command.create({"invoice_id": till_invoice.id, "amount": 450})
        ]
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self._post_process(by_till)
        self.assertEqual(exception.state, "resolved")
        self.assertIn(till_invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(
            by_till.application_ids.payment_id.journal_id, self.till_journal
        )
        self.assertBooksOfPayment(
            by_paybill | by_till, customer, receivable_before, 1450
        )
        self._assert_balances_per_journal({self.paybill: 1000, self.till: 450})

        # One shortcode's notification on the other's URL is refused, not booked.
        body = self._c2b_body("QXW0000001", "10.00", invoice.name)
        url = self.till._mpesa_c2b_urls()["ConfirmationURL"]
        self.url_open(
            url, data=json.dumps(body).encode(), headers=JSON
        ).raise_for_status()
        self._apply_inbox()
        with self._db_lock():
            callback = self.env["mpesa.callback"].search(
                [("provider_id", "=", self.till.id)], order="id desc", limit=1
            )
            self.assertEqual(callback.state, "error")
            self.assertIn("not this provider's", callback.error)
            self.assertFalse(
                self.env["mpesa.receipt"].search([("name", "=", "QXW0000001")])
            )

        self._assert_pulled_by_shortcode(by_paybill, by_till)
        self._assert_reports_by_shortcode(by_paybill, by_till)

        # The customer sees both payments: they pay the customer's invoices.
        self.authenticate(self.portal_user.login, self.portal_user.login)
        page = self.url_open("/my/mpesa")
        self.assertEqual(page.status_code, 200)
        for receipt in by_paybill | by_till:
            self.assertIn(receipt.name, page.text)
        self.assertNotIn(by_paybill.phone, page.text, "no payer number shown")

    def _assert_masked_payer(self, receipt, typed, customer):
        """Since 2026 M-PESA masks the payer's number and name on paybill and till
        payments. What the customer typed names the invoice, so the money is the
        invoice customer's, although the payer's real number is another
        customer's: the mask neither suggests nor shows it to them. The masked
        values are kept exactly as M-PESA gave them."""
        self.assertEqual(receipt.phone, f"{PHONE[:4]}****{PHONE[-3:]}", "as given")
        self.assertEqual(receipt.customer_name, "W****** K****", "as given")
        self.assertEqual(receipt.reference, typed, "as typed")
        self.assertEqual(receipt.phone_kind, "masked")
        self.assertEqual(receipt.partner_id, customer)
        self.assertEqual(self.partner.mobile, "0708374149", "the real payer")
        self.assertFalse(receipt.suggested_partner_id, "a mask identifies nobody")
        callback = receipt.callback_ids.filtered(lambda c: c.kind == "c2b_confirmation")
        self.assertEqual(json.loads(callback.body)["MSISDN"], receipt.phone)

    def _assert_balances_per_journal(self, expected):
        """Each shortcode's M-PESA balance (the till's asked by its till number)
        against its own journal: the books check compares them one by one."""
        kind = "result"
        before = len([d for d in self.emulator.deliveries if d.kind == kind])
        with self._db_lock():
            for provider in expected:
                provider.action_mpesa_check_balance()
            self.env.flush_all()
        self._wait_callbacks(before + len(expected), kind=kind)
        with self._db_lock():
            self.env.invalidate_all()
            for provider, amount in expected.items():
                self.assertEqual(provider.mpesa_balance, amount, provider.name)
                self.assertEqual(provider.journal_id._mpesa_journal_balance(), amount)
            self.assertEqual(self._check_books(), [])

    def _assert_pulled_by_shortcode(self, by_paybill, by_till):
        """Each provider pulls its own shortcode's rows: nothing new, nothing moved."""
        start = fields.Datetime.now() - timedelta(hours=1)
        end = fields.Datetime.now() + timedelta(minutes=1)
        lines = self.env["account.bank.statement.line"].search_count([])
        for provider, receipt in ((self.paybill, by_paybill), (self.till, by_till)):
            with self._db_lock():
                summary = provider._mpesa_pull(start, end)
                self.env.flush_all()
            self.assertEqual((summary["created"], summary["known"]), (0, 1))
            self.assertTrue(receipt.seen_by_import)
        self.assertEqual(
            self.env["account.bank.statement.line"].search_count([]), lines
        )

    def _assert_reports_by_shortcode(self, by_paybill, by_till):
        # The M-PESA business day is Kenya's: between 21:00 and 24:00 UTC the
        # user's (UTC) date is the day before the receipts' day.
        today = str(kenya_today())
        figures = (
            self.env["mpesa.dashboard"]
            .with_user(self.finance)
            .get_figures(today, today)
        )
        lines = {line["label"]: line for line in figures["by_shortcode"]}
        self.assertEqual(
            {label: (line["count"], line["amount"]) for label, line in lines.items()},
            {f"Paybill {SHORTCODE}": (1, 1000.0), f"Till {TILL}": (1, 450.0)},
        )
        clicked = self.env["mpesa.receipt"].with_user(self.finance)
        self.assertEqual(
            clicked.search(lines[f"Till {TILL}"]["domain"]).ids, by_till.ids
        )
        balances = {b["label"]: b["journal"] for b in figures["balances"]}
        self.assertEqual(balances[f"Till {TILL}"], self.till_journal.display_name)
        self.assertEqual(
            balances[f"Paybill {SHORTCODE}"], self.paybill.journal_id.display_name
        )
        summary = self.env["mpesa.daily.summary"].create({"date": today})
        rows = {row["label"]: row["journal"] for row in summary._balance_rows()}
        self.assertEqual(rows[f"Till {TILL}"], self.till_journal.name)

        groups = (
            self.env["mpesa.receipt.report"]
            .with_user(self.finance)
            ._read_group(
                [("receipt_id", "in", (by_paybill | by_till).ids)],
                ["shortcode"],
                ["amount:sum"],
            )
        )
        self.assertEqual(dict(groups), {SHORTCODE: 1000.0, STORE: 450.0})

        export = (
            self.env["mpesa.export"]
            .with_user(self.finance)
            .create({"date_from": today, "date_to": today, "file_format": "csv"})
        )
        choices = dict(export._fields["shortcode"]._description_selection(export.env))
        self.assertIn(f"Till {TILL}", choices[STORE])
        export.shortcode = STORE
        self.assertEqual(export._receipts(), by_till.with_user(self.finance))

    def test_stk_push_through_each_and_a_paybill_payment_never_completes_a_till_push(
        self,
    ):
        """Each push goes out with its own shortcode and lands in its own journal. A
        paybill payment for a document whose till push still waits is the paybill's:
        it does not complete the till's push (which would book the same money twice,
        once under each shortcode)."""
        invoice, till_invoice = self._invoice(700), self._invoice(300)
        receivable_before = self._receivable_balance(self.partner)
        paybill_tx = self._push_through(self.paybill, invoice)
        till_tx = self._push_through(self.till, till_invoice)
        self._wait_callbacks(2)
        prompts = self.emulator.prompts
        self.assertEqual(prompts[till_tx.mpesa_checkout_request_id].shortcode, STORE)
        self.assertEqual(
            prompts[till_tx.mpesa_checkout_request_id].transaction_type,
            "CustomerBuyGoodsOnline",
        )
        self.assertEqual(
            prompts[paybill_tx.mpesa_checkout_request_id].shortcode, SHORTCODE
        )
        for tx in paybill_tx | till_tx:
            self.assertEqual(tx.state, "done", tx.provider_id.name)
        with self._db_lock():
            (paybill_tx | till_tx)._post_process()
            self.env.flush_all()
        receipts = (paybill_tx | till_tx).mpesa_source_receipt_id
        self._assert_in_journal(paybill_tx.mpesa_source_receipt_id, self.paybill)
        self._assert_in_journal(till_tx.mpesa_source_receipt_id, self.till)
        self.assertEqual(
            paybill_tx.payment_id.payment_method_line_id.journal_id,
            self.paybill.journal_id,
        )
        self.assertEqual(
            till_tx.payment_id.payment_method_line_id.journal_id, self.till_journal
        )
        self.assertBooksOfPayment(receipts, self.partner, receivable_before, 1000)

        # The customer ignores a till prompt and pays on the paybill instead.
        third = self._invoice(250)
        self.emulator.auto_complete = False
        waiting = self._push_through(self.till, third)
        self.assertEqual(waiting.state, "pending")
        receipt = self._pay_at(SHORTCODE, waiting.mpesa_account_reference, 250)
        self._post_process(receipt)
        self._assert_in_journal(receipt, self.paybill)
        self.assertEqual(receipt.invoice_id, third)
        self.assertNotIn(waiting, receipt.application_ids, "not the till's push")
        self.assertEqual(waiting.state, "pending")
        self.assertFalse(waiting.mpesa_receipt_code)
        self.assertEqual(
            self.env["mpesa.receipt"].search_count([("name", "=", receipt.name)]), 1
        )
        self.assertIn(third.payment_state, ("paid", "in_payment"))
        self.assertEqual(self._check_books(), [])

    def test_statement_of_each_shortcode_into_its_journal(self):
        """The till's org-portal statement goes to the till's journal; imported by
        mistake as the paybill's, it is refused: its receipts are the till's."""
        till_invoice = self._invoice(820)
        row = (
            "TIL0000001,01-03-2026 10:00:00,01-03-2026 10:00:00,Merchant Payment,"
            'Completed,"820.00",,"820.00",TRUE,Buy Goods Online,2547****149 - J*** K***,,'
            f"{till_invoice.name}\n"
        )
        content = (f"Till {TILL}\n\n" + STATEMENT_HEADER + row).encode()
        self._import_statement(self.till, content)
        receipt = self.env["mpesa.receipt"].search([("name", "=", "TIL0000001")])
        self._assert_in_journal(receipt, self.till)
        self.assertEqual(receipt.invoice_id, till_invoice)
        self.assertEqual(
            (receipt.phone, receipt.customer_name), ("2547****149", "J*** K***")
        )
        with self.assertRaisesRegex(UserError, f"belongs to Till {TILL}"):
            self._import_statement(self.paybill, content)
        self.assertEqual(
            self.env["mpesa.receipt"].search_count([("name", "=", "TIL0000001")]), 1
        )
        self._post_process(receipt)
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertEqual(self._check_books(), [])
        # Had it been imported as the paybill's, the books check would say so.
        with self._db_lock():
            self.env["mpesa.receipt"].sudo().create(
                {
                    "name": receipt.name,
                    "provider_id": self.paybill.id,
                    "shortcode": SHORTCODE,
                    "amount": 820,
                    "reference": receipt.reference,
                }
            )
        self.assertIn(
            (SHORTCODE, receipt.name, f"also in the ledger of shortcode {STORE}"),
            self._check_books(),
        )

    def _import_statement(self, provider, content):
        with self._db_lock():
            wizard = self.env["mpesa.statement.import"].create(
                {
                    "provider_id": provider.id,
                    "source": "file",
                    "data_file": base64.b64encode(content),
                    "filename": "statement.csv",
                }
            )
            wizard.action_import()
            self.env.flush_all()
        return wizard

    def test_checkout_and_staff_use_the_first_provider_invoices_print_the_paybill(
        self,
    ):
        """The payment form shows M-PESA once, for the first provider by sequence
        (Odoo shows one option per payment method); putting the till first makes it
        the one used, and its payment method line stays on the till's journal.
        Invoices always print the paybill: a till takes no account number."""
        invoice = self._invoice(600)
        self.assertEqual(self._offered_providers(invoice), self.paybill)
        self.assertEqual(invoice._mpesa_paybill(), SHORTCODE)
        self._write(self.till, {"sequence": self.paybill.sequence - 1})
        self.assertEqual(self._offered_providers(invoice), self.till)
        self.assertEqual(invoice._mpesa_paybill(), SHORTCODE, "never the till")
        how_to_pay = invoice._mpesa_how_to_pay()
        self.assertEqual(
            (how_to_pay["kind"], how_to_pay["number"]), ("paybill", SHORTCODE)
        )
        action = self.env["mpesa.collection"]._action_request(invoice)
        collection = self.env["mpesa.collection"].create(
            {
                key[len("default_") :]: value
                for key, value in action["context"].items()
                if key.startswith("default_")
            }
        )
        self.assertEqual(collection._provider(), self.till)
        for provider in self.paybill | self.till:
            lines = self.env["account.payment.method.line"].search(
                [("payment_provider_id", "=", provider.id), ("journal_id", "!=", False)]
            )
            self.assertEqual(lines.journal_id, provider.journal_id, provider.name)
            self.assertEqual(lines.name, provider.name)

    def _offered_providers(self, invoice):
        page = self.url_open(invoice.get_portal_url())
        self.assertEqual(page.status_code, 200)
        found = re.findall(
            r'<input[^>]*name="o_payment_radio"[^>]*>', page.text, flags=re.DOTALL
        )
        mpesa = [tag for tag in found if 'data-provider-code="mpesa"' in tag]
        ids = [int(re.search(r'data-provider-id="(\d+)"', tag)[1]) for tag in mpesa]
        self.assertEqual(len(ids), 1, "one M-PESA option")
        return self.env["payment.provider"].browse(ids)
