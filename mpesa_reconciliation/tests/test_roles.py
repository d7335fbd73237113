import base64
from datetime import datetime, timedelta

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from .common import ReconciliationCommon


@tagged("post_install", "-at_install")
class TestRoles(ReconciliationCommon):
    """What each role may see and do, including what must be refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        cls.nairobi = cls.env["mpesa.branch"].create({"name": "Nairobi CBD"})
        cls.mombasa = cls.env["mpesa.branch"].create({"name": "Mombasa"})
        groups = "base.group_user,mpesa_payment.group_mpesa_user"
        cls.clerk = new_test_user(
            cls.env,
            "mpesa_clerk",
            groups=groups,
            company_id=company.id,
            company_ids=[Command.set(company.ids)],
        )
        cls.clerk.mpesa_branch_ids = cls.nairobi
        cls.reconciler = new_test_user(
            cls.env,
            "mpesa_reconciler",
            company_id=company.id,
            groups="base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
            company_ids=[Command.set(company.ids)],
        )
        cls.manager = new_test_user(
            cls.env,
            "mpesa_manager",
            company_id=company.id,
            groups="base.group_user,mpesa_payment.group_mpesa_manager",
            company_ids=[Command.set(company.ids)],
        )
        cls.outsider = new_test_user(
            cls.env,
            "plain_employee",
            groups="base.group_user",
            company_id=company.id,
            company_ids=[Command.set(company.ids)],
        )
        other_company = cls.env["res.company"].create({"name": "Other Co"})
        cls.other_reconciler = new_test_user(
            cls.env,
            "other_reconciler",
            company_id=other_company.id,
            company_ids=[Command.set(other_company.ids)],
            groups="base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
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
                .create({"kind": "status", "provider_id": self.mpesa.id})
            )
            self.env.flush_all()
        Request = self.env["mpesa.api.request"]
        self.assertEqual(Request.with_user(self.clerk).search([]), status)
        with self.assertRaises(AccessError):
            balance.with_user(self.clerk).read(["amount"])
        for user in (self.reconciler, self.manager):
            self.assertEqual(Request.with_user(user).search([]), balance | status)

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
