from odoo import models


class AccountJournal(models.Model):
    _inherit = "account.journal"

    def _mpesa_journal_balance_domain(self, until=None):
        """The statement lines that make the balance of an M-PESA journal."""
        domain = [("journal_id", "in", self.ids), ("move_id.state", "=", "posted")]
        if until:
            domain.append(("date", "<=", until))
        return domain

    def _mpesa_journal_balance(self, until=None):
        """The one definition of an M-PESA journal's balance, compared everywhere with
        the balance M-PESA reports: the sum of its posted statement lines (one per
        receipt, charge or withdrawal, and the opening balance), up to ``until``."""
        [(balance,)] = (
            self.env["account.bank.statement.line"]
            .sudo()
            ._read_group(
                self._mpesa_journal_balance_domain(until), aggregates=["amount:sum"]
            )
        )
        return balance or 0.0
