import base64
import json
import re
from datetime import datetime, timedelta

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from .common import ReconciliationCommon


@tagged("post_install", "-at_install")
class TestRoles(ReconciliationCommon):
    """What each role may see and do, including what must be refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nairobi = cls.env["mpesa.branch"].create({"name": "Nairobi CBD"})
        cls.mombasa = cls.env["mpesa.branch"].create({"name": "Mombasa"})
        staff = "base.group_user,"
        cls.clerk = cls._staff("mpesa_clerk", staff + "mpesa_payment.group_mpesa_user")
        cls.clerk.mpesa_branch_ids = cls.nairobi
        reconcilers = staff + "mpesa_reconciliation.group_mpesa_reconciler"
        cls.reconciler = cls._staff("mpesa_reconciler", reconcilers)
        cls.manager = cls._staff(
            "mpesa_manager", staff + "mpesa_payment.group_mpesa_manager"
        )
        cls.outsider = cls._staff("plain_employee", "base.group_user")
        cls.invoicing_user = cls._staff(
            "invoicing_user", staff + "account.group_account_invoice"
        )
        cls.invoicing_admin = cls._staff(
            "invoicing_admin", staff + "account.group_account_manager"
        )
        cls.accountant = cls._staff(
            "accountant_no_mpesa", staff + "account.group_account_user"
        )
        cls.salesperson = cls._staff(
            "salesperson", staff + "sales_team.group_sale_salesman"
        )
        other_company = cls.env["res.company"].create({"name": "Other Co"})
        cls.other_reconciler = cls._staff(
            "other_reconciler", reconcilers, company=other_company
        )

    def _receipts(self):
        first = self._c2b("NOSUCH1", 10)
        second = self._c2b("NOSUCH2", 20)
        first.branch_id = self.nairobi
        second.branch_id = self.mombasa
        self.env.flush_all()
        return first, second

    def test_user_sees_own_branch_only(self):
        nairobi, mombasa = self._receipts()
        visible = self.env["mpesa.receipt"].with_user(self.clerk).search([])
        self.assertIn(nairobi, visible)
        self.assertNotIn(mombasa, visible)
        with self.assertRaises(AccessError):
            mombasa.with_user(self.clerk).read(["amount"])
        exceptions = self.env["mpesa.exception"].with_user(self.clerk).search([])
        self.assertEqual(exceptions.receipt_id, nairobi)
        mombasa.user_id = self.clerk  # now it is theirs
        self.assertIn(
            mombasa, self.env["mpesa.receipt"].with_user(self.clerk).search([])
        )

    def test_user_cannot_work_the_queue(self):
        nairobi, _mombasa = self._receipts()
        exception = nairobi.exception_ids.with_user(self.clerk)
        with self.assertRaises(AccessError):
            exception.action_mark_duplicate()
        with self.assertRaises(AccessError):
            self.env["mpesa.statement.import"].with_user(self.clerk).create(
                {"provider_id": self.mpesa.id}
            )

    def test_reconciler_sees_all_and_resolves(self):
        nairobi, mombasa = self._receipts()
        visible = self.env["mpesa.receipt"].with_user(self.reconciler).search([])
        self.assertTrue({nairobi, mombasa} <= set(visible))
        exception = mombasa.exception_ids.with_user(self.reconciler)
        with self._db_lock():
            exception.partner_id = self.partner
            exception.action_keep_as_credit()
            self.env.flush_all()
        self.assertEqual(exception.resolved_by, self.reconciler)
        with self.assertRaises(AccessError):
            mombasa.with_user(self.reconciler).action_request_reversal()

    def test_manager_reverses(self):
        _nairobi, mombasa = self._receipts()
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            mombasa.with_user(self.manager).action_request_reversal()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        self.assertEqual(mombasa.state, "reversed")

    def test_outsider_and_other_company_see_nothing(self):
        self._receipts()
        with self.assertRaises(AccessError):
            self.env["mpesa.receipt"].with_user(self.outsider).search([])
        with self.assertRaises(AccessError):
            self.env["mpesa.exception"].with_user(self.outsider).search([])
        self.assertFalse(
            self.env["mpesa.receipt"].with_user(self.other_reconciler).search([])
        )
        self.assertFalse(
            self.env["mpesa.exception"].with_user(self.other_reconciler).search([])
        )

    def test_portal_customer_sees_own_payments_only(self):
        mine = self._c2b("NOSUCH3", 30)
        other = self._c2b("NOSUCH4", 40)
        mine.sudo().partner_id = self.portal_partner
        other.sudo().partner_id = self.partner
        self.env.flush_all()
        visible = self.env["mpesa.receipt"].with_user(self.portal_user).search([])
        self.assertEqual(visible, mine)
        with self.assertRaises(AccessError):
            other.with_user(self.portal_user).read(["amount"])
        with self.assertRaises(AccessError):
            mine.with_user(self.portal_user).write({"amount": 1})
        with self.assertRaises(AccessError):
            self.env["mpesa.exception"].with_user(self.portal_user).search([])

    def test_credentials_stay_with_admins(self):
        for user in (self.clerk, self.reconciler, self.manager):
            with self.assertRaises(AccessError, msg=user.login):
                self.mpesa.with_user(user).read(["mpesa_consumer_secret"])

    # === issue 11, finding 7 === #

    def test_clerk_looks_up_a_code_not_in_our_books(self):
        """A cashier (M-PESA user: only administrators read payment providers)
        quotes a code we have not seen: the lookup offers the company's M-PESA
        accounts by label and asks M-PESA with the one chosen."""
        lookup = self.env["mpesa.receipt.lookup"].with_user(self.clerk)
        choices = dict(lookup._selection_provider_choice())
        self.assertIn("Paybill 174379", choices[str(self.mpesa.id)])
        sent = len(self.emulator.request_log)
        with self._db_lock():
            wizard = lookup.create(
                {"code": "QZZ9ZZ9ZZ9", "provider_choice": str(self.mpesa.id)}
            )
            self.env.flush_all()
            self.env.invalidate_all()  # the button is a request of its own
            action = wizard.action_lookup()
            self.env.flush_all()
        request = self.env["mpesa.api.request"].browse(action["res_id"])
        self.assertEqual(
            (request.kind, request.provider_id, request.receipt_code),
            ("status", self.mpesa, "QZZ9ZZ9ZZ9"),
        )
        asked = [path for _m, path, _b in self.emulator.request_log[sent:]]
        self.assertIn("/mpesa/transactionstatus/v1/query", asked)

    def test_lookup_with_another_companys_provider_is_refused(self):
        other = self.other_reconciler.company_id
        with self._db_lock():
            foreign = self.mpesa.copy({"company_id": other.id, "name": "Other M-PESA"})
            self.env.flush_all()
        sent = len(self.emulator.request_log)
        wizard = (
            self.env["mpesa.receipt.lookup"]
            .with_user(self.reconciler)
            .create({"code": "QAB1CD2EF3", "provider_id": foreign.id})
        )
        self.env.invalidate_all()  # the button is a request of its own
        with self.assertRaisesRegex(UserError, "another company"):
            wizard.action_lookup()
        self.assertEqual(len(self.emulator.request_log), sent, "nothing sent")

    def test_account_balance_is_for_reconcilers_and_managers(self):
        with self._db_lock():
            balance = (
                self.env["mpesa.api.request"]
                .sudo()
                .create(
                    {"kind": "balance", "provider_id": self.mpesa.id, "amount": 5e5}
                )
            )
            status = (
                self.env["mpesa.api.request"]
                .sudo()
                .create(
                    {
                        "kind": "status",
                        "provider_id": self.mpesa.id,
                        "user_id": self.clerk.id,
                    }
                )
            )
            self.env.flush_all()
        Request = self.env["mpesa.api.request"]
        self.assertEqual(Request.with_user(self.clerk).search([]), status)
        with self.assertRaises(AccessError):
            balance.with_user(self.clerk).read(["amount"])
        for user in (self.reconciler, self.manager):
            self.assertEqual(Request.with_user(user).search([]), balance | status)

    def test_user_sees_the_requests_of_their_payments_only(self):
        """Staff review #11: a plain M-PESA user read every request to M-PESA of the
        company (receipt codes, amounts, refunds); like the receipts, they see their
        own requests and those about the payments of their branches."""
        nairobi, mombasa = self._receipts()
        Request = self.env["mpesa.api.request"].sudo()
        with self._db_lock():
            ours, theirs, asked = Request.create(
                [
                    {
                        "kind": "status",
                        "provider_id": self.mpesa.id,
                        "receipt_id": nairobi.id,
                        "user_id": self.manager.id,
                    },
                    {
                        "kind": "b2c",
                        "provider_id": self.mpesa.id,
                        "receipt_id": mombasa.id,
                        "amount": 20,
                        "user_id": self.manager.id,
                    },
                    {
                        "kind": "status",
                        "provider_id": self.mpesa.id,
                        "receipt_code": "QZZ9ZZ9ZZ8",
                        "user_id": self.clerk.id,
                    },
                ]
            )
            self.env.flush_all()
        visible = Request.with_user(self.clerk).search([])
        self.assertEqual(visible & (ours | theirs | asked), ours | asked)
        with self.assertRaises(AccessError):
            theirs.with_user(self.clerk).read(["amount", "receipt_code"])
        self.assertIn(theirs, Request.with_user(self.reconciler).search([]))

    # === issue 11, finding 4 === #

    def test_no_role_writes_the_ledgers_money_over_rpc(self):
        """Readonly in a view stops nobody calling write(): every money field of the
        ledger is refused to every role; the assignment fields stay editable."""
        receipt = self._c2b("NOSUCH9", 75)
        values = {
            "amount": 1.0,
            "name": "FORGED0009",
            "state": "applied",
            "partner_id": self.partner.id,
            "applied_amount": 75.0,
            "reference": "INV/2026/00001",
            "paid_at": "2026-01-01 00:00:00",
            "verification": "verified",
        }
        for user in (self.clerk, self.reconciler, self.manager):
            for field, value in values.items():
                with (
                    self.subTest(user=user.login, field=field),
                    self.assertRaises(AccessError),
                ):
                    receipt.with_user(user).write({field: value})
        receipt.with_user(self.manager).write({"branch_id": self.nairobi.id})
        self.assertEqual(receipt.branch_id, self.nairobi)
        self.assertEqual((receipt.amount, receipt.name), (75, receipt.name))

    def test_reconciler_moves_money_only_through_the_actions(self):
        """Staff review #2: a reconciler (who may write receipts and exceptions, to
        assign them) wrote over RPC what only the money path and the queue's actions
        write: the receipt's bank line, kind and review, the exception's resolution
        and the receipt it is about. Refused; the customer stays theirs to choose."""
        nairobi, mombasa = self._receipts()
        exception = mombasa.exception_ids.filtered(lambda e: e.state == "open")
        receipt_values = {
            "kind": "charge",
            "channel": "import",
            "seen_by_import": True,
            "statement_line_id": False,
            "review_reason": "Forged",
            "review_cause": "duplicate",
            "review_due": 1.0,
            "suggested_partner_id": self.partner.id,
            "expected_amount": 20.0,
            "exception_ids": [Command.unlink(exception.id)],
            "recovered": True,
        }
        exception_values = {
            "state": "resolved",
            "resolution": "dismissed",
            "resolution_note": "Forged",
            "resolved_by": self.reconciler.id,
            "receipt_id": nairobi.id,
            "kind": "duplicate",
            "branch_id": self.nairobi.id,
        }
        for record, values in (
            (mombasa, receipt_values),
            (exception, exception_values),
        ):
            for field, value in values.items():
                with (
                    self.subTest(model=record._name, field=field),
                    self.assertRaises(AccessError),
                    self.env.cr.savepoint(),
                ):
                    record.with_user(self.reconciler).write({field: value})
        self.env.invalidate_all()
        self.assertEqual((exception.state, exception.receipt_id), ("open", mombasa))
        self.assertTrue(mombasa.statement_line_id)
        with self._db_lock():
            exception.with_user(self.reconciler).write({"partner_id": self.partner.id})
            self.env.flush_all()
        self.assertEqual(exception.partner_id, self.partner)

    # === staff review: what each role meets in the screens === #

    def _open_form(self, record, user):
        """What the web client does to open ``record``'s form as ``user`` on a cold
        cache: the form as shaped for them (get_views), then web_read of the fields
        its arch names (field nodes and the fields its modifiers read). Returns the
        values read and the names of the fields read."""
        record = record.with_user(user)
        self.env.invalidate_all()
        views = record.get_views([(False, "form")])
        arch = views["views"]["form"]["arch"]
        described = views["models"][record._name]["fields"]
        relational = ("many2one", "one2many", "many2many")
        spec = {
            name: {"fields": {"display_name": {}}}
            if field["type"] in relational
            else {}
            for name, field in described.items()
            if re.search(rf"\b{name}\b", arch)
        }
        return record.web_read(spec)[0], set(spec)

    def test_every_finance_role_opens_a_customer(self):
        """subscription_oca's Subscriptions button read sale.subscription, which only
        salespeople may: every finance role got an access error opening a customer.
        The Invoicing roles see the customer's M-PESA block."""
        finance = (
            self.invoicing_user,
            self.invoicing_admin,
            self.clerk,
            self.reconciler,
            self.manager,
        )
        for user in finance:
            with self.subTest(user=user.login):
                values, read = self._open_form(self.partner, user)
                self.assertEqual(values["id"], self.partner.id)
                self.assertNotIn("subscription_count", read)
        for user in (self.invoicing_user, self.invoicing_admin):
            _values, read = self._open_form(self.partner, user)
            self.assertIn("mpesa_account_ref", read, user.login)
        values, _read = self._open_form(self.partner, self.salesperson)
        self.assertEqual(values["subscription_count"], 0)

    def test_suggestions_and_accept_are_for_reconcilers(self):
        """Accept applies the receipt's money: an accountant without an M-PESA role
        got the page and the button in OCA's reconciliation screen, then an access
        error on the receipt. The page is the reconcilers' (managers' too)."""
        view = self.env.ref(
            "account_reconcile_oca.bank_statement_line_form_reconcile_view"
        )
        Line = self.env["account.bank.statement.line"]
        for user, shown in (
            (self.accountant, False),
            (self.invoicing_admin, False),
            (self.reconciler, True),
            (self.manager, True),
        ):
            with self.subTest(user=user.login):
                self.env.invalidate_all()
                views = Line.with_user(user).get_views([(view.id, "form")])
                arch = views["views"]["form"]["arch"]
                self.assertEqual('name="mpesa_suggestions"' in arch, shown)
                self.assertEqual('name="action_accept"' in arch, shown)

    def test_manager_processes_a_callback_again(self):
        """Process Again on a callback in error, as the M-PESA manager who watches the
        callbacks (they read them; processing writes them): the body is applied. A
        plain M-PESA user reads no callback, so clicks nothing."""
        body = self._c2b_body("QRT5ABC123", "150.00", "NOSUCHREF")
        with self._db_lock():
            callback = (
                self.env["mpesa.callback"]
                .sudo()
                .create(
                    {
                        "kind": "c2b_confirmation",
                        "body": json.dumps(body),
                        "provider_id": self.mpesa.id,
                        "state": "error",
                        "error": "worker crashed",
                        "attempts": 5,
                    }
                )
            )
            self.env.flush_all()
        with self.assertRaises(AccessError):
            callback.with_user(self.clerk).action_retry()
        with self._db_lock():
            self.env.invalidate_all()  # the button is a request of its own
            callback.with_user(self.manager).action_retry()
            self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual((callback.state, callback.attempts), ("processed", 6))
        receipt = self.env["mpesa.receipt"].search([("name", "=", "QRT5ABC123")])
        self.assertEqual((receipt.amount, callback.receipt_id), (150, receipt))

    def test_allocation_offers_only_the_receipts_companys_invoices(self):
        """A reconciler in two companies allocating one company's receipt was offered
        the customer's invoices of the other company too, then Allocate failed on
        "Incompatible companies"."""
        other = self.setup_other_company(name="Mombasa Traders")["company"]
        with self._db_lock():
            reconciler = new_test_user(
                self.env,
                "two_company_reconciler",
                company_id=self.company.id,
                company_ids=[Command.set((self.company | other).ids)],
                groups="base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
            )
            ours = self._invoice(300)
            theirs = self.init_invoice(
                "out_invoice",
                partner=self.partner,
                amounts=[400],
                company=other,
                taxes=[],
                post=True,
                invoice_date=fields.Date.today(),
            )
            self.env.flush_all()
        receipt = self._c2b("NOSUCH7", 500)
        exception = receipt.exception_ids.filtered(lambda e: e.state == "open")
        with self._db_lock():
            exception.partner_id = self.partner
            self.env.flush_all()
        both = (self.company | other).ids
        Wizard = (
            self.env["mpesa.exception.allocate"]
            .with_user(reconciler)
            .with_context(allowed_company_ids=both, default_exception_id=exception.id)
        )
        with self._db_lock():
            self.env.invalidate_all()  # the dialog is a request of its own
            wizard = Wizard.create({})
            self.env.flush_all()
        self.assertEqual(wizard.line_ids.invoice_id, ours)
        domain = wizard.line_ids._fields["invoice_id"]._description_domain(wizard.env)
        self.assertIn("company_id", domain)
        with (
            self.assertRaisesRegex(UserError, "Incompatible companies"),
            self.env.cr.savepoint(),
        ):
            wizard.line_ids = [Command.create({"invoice_id": theirs.id, "amount": 200})]
        self.env.invalidate_all()
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self.assertEqual(exception.state, "resolved")
        self.assertIn(ours.payment_state, ("paid", "in_payment"))
        self.assertEqual(theirs.payment_state, "not_paid")

    def test_a_duplicated_provider_has_none_of_the_originals_mpesa_state(self):
        """An administrator duplicating an M-PESA provider (another shortcode) got the
        original's balance, its date, the C2B registration date and the books check's
        result: what M-PESA said of another shortcode."""
        state = {
            "mpesa_balance": 12345.0,
            "mpesa_balance_date": "2026-11-30 08:00:00",
            "mpesa_c2b_registered": "2026-11-01 08:00:00",
            "mpesa_books_checked_on": "2026-11-30 09:00:00",
            "mpesa_books_differences": "174379 QAB1CD2EF3: not in the journal",
            "mpesa_pull_registered": "2026-11-01 08:00:00",
            "mpesa_pull_last": "2026-11-30 07:00:00",
        }
        with self._db_lock():
            self.mpesa.write(state)
            copy = self.mpesa.copy({"name": "M-PESA Till"})
            self.env.flush_all()
        self.env.invalidate_all()
        for field in state:
            self.assertTrue(self.mpesa[field], field)
            self.assertFalse(copy[field], field)

    def _allocate_as(self, user, exception, invoice, amount):
        """Allocate to Invoices as ``user``: the dialog, then its button."""
        with self._db_lock():
            self.env.invalidate_all()
            wizard = self._allocation_wizard(exception, user=user)
            wizard.line_ids = [Command.clear()] + [
                Command.create({"invoice_id": invoice.id, "amount": amount})
            ]
            self.env.flush_all()
            self.env.invalidate_all()  # the button is a request of its own
            wizard.action_allocate()
            self.env.flush_all()

    def test_undo_and_reopen_leaves_one_open_exception(self):
        """Undo and Reopen put the receipt back in review before reopening: a receipt
        in review without an open exception gets a new one, so the money had two."""
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b("", 1000, style="plain")
        exception = receipt.exception_ids.filtered(lambda e: e.state == "open")
        self.assertEqual(len(exception), 1)
        self._allocate_as(self.reconciler, exception, invoice, 1000)
        self.assertEqual(exception.state, "resolved")
        with self._db_lock():
            self.env.invalidate_all()  # the button is a request of its own
            exception.with_user(self.reconciler).action_undo_and_reopen()
            self.env.flush_all()
        self.env.invalidate_all()
        open_ = receipt.exception_ids.filtered(lambda e: e.state == "open")
        self.assertEqual(open_, exception, "one open exception: the one reopened")
        self.assertEqual((receipt.state, receipt.applied_amount), ("review", 0))
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertAlmostEqual(self._receivable_balance(invoice.partner_id), before)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        self._allocate_as(self.reconciler, exception, invoice, 1000)
        self.env.invalidate_all()
        self.assertFalse(receipt.exception_ids.filtered(lambda e: e.state == "open"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    # === the statement import and pull, by the reconciler === #

    def _till_first(self):
        """A till of the company listed before the paybill: the wizard's default."""
        with self._db_lock():
            journal = self.env["account.journal"].create(
                {"name": "M-PESA Till", "code": "MPTL", "type": "bank"}
            )
            till = self.mpesa.copy(
                {
                    "name": "M-PESA Till",
                    "state": self.mpesa.state,
                    "sequence": self.mpesa.sequence - 1,
                    "mpesa_shortcode": "600100",
                    "mpesa_shortcode_type": "till",
                    "mpesa_till_number": "600200",
                    "journal_id": journal.id,
                }
            )
            self.env.flush_all()
        return till

    def _statement_file(self, *rows):
        header = (
            "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,"
            "Paid In,Withdrawn,Balance,Balance Confirmed,Reason Type,"
            "Other Party Info,Linked Transaction ID,A/C No.\n"
        )
        return base64.b64encode((header + "".join(rows)).encode())

    def _ledger_counts(self):
        return [
            self.env[model].sudo().search_count([])
            for model in (
                "mpesa.receipt",
                "mpesa.exception",
                "account.bank.statement.line",
            )
        ]

    def test_reconciler_picks_the_paybill_and_imports_its_statement(self):
        """Only administrators read payment providers: the reconciler chose the
        account in a dropdown that could not open, so the statement went to the
        default, a till, which refused the paybill's rows. The form offers the
        company's M-PESA accounts by label, and the import books the one chosen."""
        till = self._till_first()
        known = self._c2b("NOSUCHREF", 250)  # the paybill's, by its callback
        invoice = self._invoice(640)
        with self.assertRaises(AccessError):
            self.env["payment.provider"].with_user(self.reconciler).name_search("")
        Import = self.env["mpesa.statement.import"].with_user(self.reconciler)
        choices = dict(Import._selection_provider_choice())
        self.assertIn("Paybill 174379", choices[str(self.mpesa.id)])
        self.assertIn("Till 600200", choices[str(till.id)])
        with self._db_lock():
            # the file widget sends the file's name with it
            form = Form(Import.with_context(default_filename="paybill.csv"))
            self.assertEqual(form.provider_choice, str(till.id), "the default")
            form.provider_choice = str(self.mpesa.id)
            form.data_file = self._statement_file(
                "SKL0000031,01-03-2026 11:00:00,01-03-2026 11:00:00,Pay Bill,"
                'Completed,"640.00",,"890.00",TRUE,Pay Bill Online,'
                f"2547****149 - JOHN,,{invoice.name}\n",
                f"{known.name},01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill,"
                'Completed,"250.00",,"250.00",TRUE,Pay Bill Online,'
                "2547****149 - JOHN,,NOSUCHREF\n",
            )
            wizard = form.save()
            self.env.flush_all()
            self.env.invalidate_all()  # the button is a request of its own
            wizard.action_import()
            self.env.flush_all()
        self.assertIn("1 new receipts", wizard.result)
        self.assertIn("1 receipts were already known", wizard.result)
        receipt = self.env["mpesa.receipt"].search([("name", "=", "SKL0000031")])
        self.assertEqual(
            (receipt.provider_id, receipt.recovered, receipt.invoice_id),
            (self.mpesa, True, invoice),
        )
        self.assertSeenBy(known, "c2b", "import")
        self._post_process(receipt)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(receipt.statement_line_id.journal_id, self.journal)
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertFalse(
            self.env["account.bank.statement.line"].search(
                [("journal_id", "=", till.journal_id.id)]
            ),
            "nothing booked on the till",
        )

    def test_reconciler_pulls_the_account_chosen(self):
        code = self.emulator.add_payment(
            120, bill_ref="NOSUCH", time=datetime.now() + timedelta(hours=2)
        )  # naive times are Kenya time (UTC+3)
        Import = self.env["mpesa.statement.import"].with_user(self.reconciler)
        with self._db_lock():
            wizard = Import.create(
                {
                    "provider_choice": str(self.mpesa.id),
                    "source": "pull",
                    "date_from": datetime.now() - timedelta(hours=6),
                    "date_to": datetime.now(),
                }
            )
            self.env.flush_all()
            self.env.invalidate_all()  # the button is a request of its own
            wizard.action_import()
            self.env.flush_all()
        receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
        self.assertEqual((receipt.provider_id, receipt.amount), (self.mpesa, 120))
        self.assertIn("1 new receipts", wizard.result)

    def test_other_company_cannot_import_or_pull_into_our_account(self):
        """A reconciler of another company named our M-PESA account over RPC: the
        import and the pull wrote receipts, lines and exceptions into our books."""
        Import = self.env["mpesa.statement.import"].with_user(self.other_reconciler)
        self.assertNotIn(str(self.mpesa.id), dict(Import._selection_provider_choice()))
        before = self._ledger_counts()
        sent = len(self.emulator.request_log)
        content = self._statement_file(
            "SKL0000041,01-03-2026 11:00:00,01-03-2026 11:00:00,Pay Bill,"
            'Completed,"70.00",,"70.00",TRUE,Pay Bill Online,'
            "2547****149 - JOHN,,NOSUCHREF\n"
        )
        for values in (
            {"source": "file", "data_file": content, "filename": "theirs.csv"},
            {"source": "pull"},
        ):
            with self.subTest(source=values["source"]), self._db_lock():
                wizard = Import.create({"provider_id": self.mpesa.id, **values})
                self.env.flush_all()
                self.env.invalidate_all()  # the button is a request of its own
                with self.assertRaisesRegex(UserError, "another company"):
                    wizard.action_import()
                self.env.flush_all()
        self.assertEqual(self._ledger_counts(), before, "nothing created")
        self.assertEqual(len(self.emulator.request_log), sent, "nothing asked")
