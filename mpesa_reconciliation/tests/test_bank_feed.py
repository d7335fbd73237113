from odoo import fields
from odoo.tests import tagged

from .common import ReconciliationCommon


@tagged("post_install", "-at_install")
class TestBankFeed(ReconciliationCommon):
    def test_stk_payment_feeds_one_line_and_reconciles(self):
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        line = receipt.statement_line_id
        self.assertEqual(line.journal_id, self.journal)
        self.assertEqual(line.amount, 1250)
        self.assertIn(receipt.name, line.payment_ref)
        self.assertEqual(receipt.reconcile_state, "unreconciled")
        with self._db_lock():
            tx._post_process()
            self.env.flush_all()
        self.assertTrue(line.is_reconciled)
        self.assertEqual(receipt.reconcile_state, "reconciled")
        self.assertEqual(self._journal_balance(), 1250)

    def test_c2b_invoice_payment_reconciles(self):
        invoice = self._invoice(1000)
        receipt = self._c2b(invoice.name, 1000)
        self.assertEqual(len(receipt.statement_line_id), 1)
        self._post_process(receipt)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertTrue(receipt.statement_line_id.is_reconciled)

    def test_same_receipt_by_two_channels_is_one_line(self):
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        receipt = self._c2b(
            tx.mpesa_account_reference, 1250, trans_id=tx.mpesa_receipt_code
        )
        self.assertSeenBy(receipt, "c2b", "stk")
        lines = self.env["account.bank.statement.line"].search(
            [("mpesa_receipt_id", "=", receipt.id)]
        )
        self.assertEqual(len(lines), 1)

    def test_statement_date_is_nairobi_day(self):
        receipt = self._c2b("NOTHING1", 10)
        # 22:30 UTC on the 1st is 01:30 on the 2nd in Nairobi
        receipt.sudo().paid_at = fields.Datetime.to_datetime("2026-03-01 22:30:00")
        self.assertEqual(str(receipt._mpesa_statement_date()), "2026-03-02")
