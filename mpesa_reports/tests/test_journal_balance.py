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
