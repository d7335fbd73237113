import time

from odoo import fields
from odoo.tests import tagged

from odoo.addons.mpesa_payment.kenya_time import kenya_today

from .common import ReportsCommon


@tagged("post_install", "-at_install")
class TestOneJournalBalance(ReportsCommon):
    def test_every_screen_shows_the_same_journal_balance(self):
        """Finding 9 of the money-integrity issue: the books check, the statement
        import, the dashboard and the daily summary each summed the journal their own
        way. An entry the accountant cancelled counted in some and not in others."""
        invoice = self._invoice(1000)
        self._post_process(self._c2b(invoice.name, 1000))
        wrong = self._c2b("NOSUCHREF", 250)
        with self._db_lock():
            # the accountant resets the wrong line's entry to draft and cancels it
            wrong.statement_line_id.move_id.button_draft()
            wrong.statement_line_id.move_id.button_cancel()
            self.mpesa.write(
                {"mpesa_balance": 1000.0, "mpesa_balance_date": fields.Datetime.now()}
            )
            self.env.flush_all()
        journal = self.mpesa.journal_id
        self.assertEqual(journal._mpesa_journal_balance(), 1000.0)
        [dashboard] = (
            self.env["mpesa.dashboard"]
            .with_user(self.finance)
            .get_figures()["balances"]
        )
        self.assertEqual(dashboard["journal_balance"]["amount"], 1000.0)
        self.assertEqual(dashboard["difference"]["amount"], 0.0)
        summary = (
            self.env["mpesa.daily.summary"]
            .with_user(self.finance)
            .create({"date": kenya_today()})
        )
        self.assertEqual(summary._summary_values()["journal_balance"], 1000.0)
        wizard = self.env["mpesa.statement.import"].create(
            {"provider_id": self.mpesa.id}
        )
        self.assertEqual(wizard._journal_balance(), 1000.0)
        differences = self.mpesa._mpesa_check_books()
        self.assertNotIn("journal balance", " ".join(d[2] for d in differences))

    def _balance_row(self):
        [row] = (
            self.env["mpesa.dashboard"]
            .with_user(self.finance)
            .get_figures()["balances"]
        )
        return row

    def _summary_balance(self):
        summary = (
            self.env["mpesa.daily.summary"]
            .with_user(self.finance)
            .create({"date": kenya_today()})
        )
        [row] = summary._summary_values()["balances"]
        return row

    def test_payment_after_the_balance_check_is_no_difference(self):
        """Payment A, M-PESA's balance check, then payment B: the dashboard showed a
        difference of B, the daily summary too, and the books check reported
        "journal balance != M-PESA balance", although the books were right. Each
        compares M-PESA's balance with the journal as of M-PESA's check."""
        first = self._c2b(self._invoice(1000).name, 1000)
        self._post_process(first)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            self.mpesa.action_mpesa_check_balance()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        self.assertEqual(self.mpesa.mpesa_balance, 1000.0)
        checked = fields.Datetime.to_string(self.mpesa.mpesa_balance_date)
        time.sleep(1.1)  # M-PESA's times are whole seconds
        self._post_process(self._c2b(self._invoice(500).name, 500))

        row = self._balance_row()
        self.assertEqual(row["mpesa"]["amount"], 1000.0)
        at_check = row["journal_balance"]
        self.assertEqual((at_check["amount"], at_check["date"]), (1000.0, checked))
        self.assertEqual(row["journal_now"]["amount"], 1500.0)
        self.assertEqual(row["difference"]["amount"], 0.0)
        lines = (
            self.env["account.bank.statement.line"]
            .with_user(self.finance)
            .search(at_check["domain"])
        )
        self.assertEqual(lines.mpesa_receipt_id, first)
        summary = self._summary_balance()
        self.assertEqual(summary["journal_balance"], 1500.0, "at the end of the day")
        self.assertEqual(summary["journal_balance_at_check"], 1000.0)
        self.assertEqual(summary["difference"], 0.0)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

        # M-PESA held less than the journal did at its check: a difference everywhere
        self._write(self.mpesa, {"mpesa_balance": 960.0})
        self.assertEqual(self._balance_row()["difference"]["amount"], -40.0)
        self.assertEqual(self._summary_balance()["difference"], -40.0)
        (diff,) = self.mpesa._mpesa_check_books()
        self.assertIn("journal balance 1,000.00 != M-PESA balance 960.00", diff[2])
