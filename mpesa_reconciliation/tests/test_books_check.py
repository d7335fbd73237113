import time

from odoo.tests import tagged

from .common import ReconciliationCommon


@tagged("post_install", "-at_install")
class TestBooksCheck(ReconciliationCommon):
    def test_clean_books_then_each_difference(self):
        invoice = self._invoice(1000)
        receipt = self._c2b(invoice.name, 1000)
        self._post_process(receipt)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        self.assertFalse(self.mpesa.mpesa_books_differences)
        self.assertTrue(self.mpesa.mpesa_books_checked_on)
        # M-PESA says the account holds something else than the journal
        self.mpesa.write({"mpesa_balance": 900, "mpesa_balance_date": "2026-03-01"})
        (diff,) = self.mpesa._mpesa_check_books()
        self.assertIn("journal balance 1,000.00 != M-PESA balance 900.00", diff[2])
        self.mpesa.mpesa_balance = 1000
        # a receipt whose statement line went missing, and one fed twice
        other = self._c2b("NOSUCH", 50)
        other.statement_line_id.mpesa_receipt_id = False
        self.env["account.bank.statement.line"].create(
            {
                "journal_id": self.journal.id,
                "payment_ref": "again",
                "amount": 1000,
                "mpesa_receipt_id": receipt.id,
            }
        )
        problems = {
            (code, problem) for _sc, code, problem in self.mpesa._mpesa_check_books()
        }
        self.assertIn((other.name, "missing from the journal"), problems)
        self.assertIn((receipt.name, "in the journal 2 times"), problems)
        self.assertIn(other.name, self.mpesa.mpesa_books_differences)

    def test_payment_confirmed_by_query_without_receipt(self):
        self.emulator.set_scenario("254708374149", no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        time.sleep(0.3)
        with self._db_lock():
            tx._mpesa_query_and_apply()
            self.env.flush_all()
        self.assertEqual(tx.state, "done")
        self.assertFalse(tx.mpesa_receipt)
        self.assertEqual(self.mpesa._mpesa_check_books(), [], "a fresh one can wait")
        self.env.cr.execute(
            "UPDATE payment_transaction SET last_state_change = last_state_change"
            " - interval '2 days' WHERE id = %s",
            [tx.id],
        )
        (diff,) = self.mpesa._mpesa_check_books()
        self.assertIn(f"payment {tx.reference} has no receipt code", diff[2])
