from odoo.tests import tagged

from .common import ReconciliationCommon
from .test_branches import BranchCommon


@tagged("post_install", "-at_install")
class TestReconcileTour(ReconciliationCommon):
    def test_accountant_accepts_a_suggestion(self):
        invoice = self._invoice(1000)
        typo = invoice.name.replace("/", "")[:-1] + "9"
        receipt = self._c2b(typo, 1000, trans_id="SKLTOUR001")
        with self._db_lock():
            receipt.statement_line_id._mpesa_refresh_suggestions(auto=False)
            self.env.flush_all()
        self.assertTrue(receipt.statement_line_id.mpesa_suggestion_ids)
        self.env.user.groups_id += self.env.ref(
            "mpesa_reconciliation.group_mpesa_reconciler"
        )
        action = self.env.ref(
            "account_reconcile_oca.action_bank_statement_line_reconcile"
        )
        self.start_tour(
            f"/odoo/action-{action.id}?active_id={self.journal.id}",
            "mpesa_reconcile_suggestion",
            login=self.env.user.login,
        )
        self.env.invalidate_all()
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_accountant_matches_an_exception_from_the_queue(self):
        """A paybill payment with an account number that names nothing: from the
        exception queue, Find Matches ranks the invoice and Accept books it."""
        invoice = self._invoice(1000)
        typo = invoice.name.replace("/", "")[:-1] + "9"
        receipt = self._c2b(typo, 1000, trans_id="SKLEXC0001")
        self.assertFalse(receipt.suggestion_ids, "the matching job has not run yet")
        receivable = self._receivable_balance(self.partner)
        self.env.user.groups_id += self.env.ref(
            "mpesa_reconciliation.group_mpesa_reconciler"
        )
        action = self.env.ref("mpesa_reconciliation.action_mpesa_exception")
        self.start_tour(
            f"/odoo/action-{action.id}",
            "mpesa_exception_find_matches",
            login=self.env.user.login,
        )
        self.env.invalidate_all()
        self.assertEqual(receipt.exception_ids.resolution, "allocated")
        self.assertBooksOfPayment(receipt, self.partner, receivable, 1000)
        self.assertEqual(invoice.payment_state, "paid")


@tagged("post_install", "-at_install")
class TestBranchTour(BranchCommon):
    def test_cashier_sees_their_branchs_payments(self):
        """Issue 11, finding 9: a plain M-PESA user of the Westlands shop logs in,
        opens M-PESA > Receipts and finds Westlands' payment, not Mombasa Road's."""
        west = self._c2b(
            self._sold_invoice(700, self.team_westlands).name,
            700,
            trans_id="SKLWEST001",
        )
        coast = self._c2b(
            self._sold_invoice(900, self.team_mombasa).name,
            900,
            trans_id="SKLCOAST01",
        )
        self.assertEqual((west | coast).mapped("state"), ["applied", "applied"])
        self._join_branch(self.westlands, self.cashier)
        self.start_tour("/odoo", "mpesa_branch_receipts", login=self.cashier.login)
