from odoo.tests import tagged

from .common import ReconciliationCommon


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
