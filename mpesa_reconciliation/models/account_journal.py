from odoo import fields, models

from odoo.addons.mpesa_payment.kenya_time import kenya_date


class AccountJournal(models.Model):
    _inherit = "account.journal"

    def _mpesa_journal_balance_domain(self, until=None, as_of=None):
        """The statement lines that make the balance of an M-PESA journal: those dated
        up to ``until`` (a day), and those M-PESA had booked at ``as_of`` (a naive UTC
        moment, e.g. when M-PESA reported its balance).

        As of a moment, a line counts by when its money moved on M-PESA: the
        ``paid_at`` of its receipt. Every kind of M-PESA line has a receipt with
        ``paid_at`` set: payments (STK, C2B, status query, Pull API, statement
        import), charges and withdrawals (statement import), refunds out (reversal or
        B2C, in the paybill's or the B2C shortcode's journal) and reversals out, the
        negative lines, all keep M-PESA's completion time. A line without a receipt
        (the opening balance of a statement import, a line an accountant added) or
        with a receipt that has no ``paid_at`` counts by its date: up to the day of
        ``as_of`` in Nairobi, as M-PESA's statement would."""
        domain = [("journal_id", "in", self.ids), ("move_id.state", "=", "posted")]
        if until:
            domain.append(("date", "<=", until))
        if as_of:
            as_of = fields.Datetime.to_datetime(as_of)
            domain += [
                "|",
                ("mpesa_receipt_id.paid_at", "<=", fields.Datetime.to_string(as_of)),
                "&",
                "|",
                ("mpesa_receipt_id", "=", False),
                ("mpesa_receipt_id.paid_at", "=", False),
                ("date", "<=", fields.Date.to_string(kenya_date(as_of))),
            ]
        return domain

    def _mpesa_journal_balance(self, until=None, as_of=None):
        """The one definition of an M-PESA journal's balance, compared everywhere with
        the balance M-PESA reports: the sum of its posted statement lines (one per
        receipt, charge or withdrawal, and the opening balance), up to ``until`` (a
        day) or ``as_of`` (a UTC moment: compare M-PESA's balance with the journal as
        of when M-PESA reported it, not with money received since)."""
        return self._mpesa_journal_totals(until, as_of)[0]

    def _mpesa_journal_totals(self, until=None, as_of=None):
        """That balance and how many statement lines make it, read together: one scan
        of the journal's whole history, not two (the dashboard shows both)."""
        [(balance, count)] = (
            self.env["account.bank.statement.line"]
            .sudo()
            ._read_group(
                self._mpesa_journal_balance_domain(until, as_of),
                aggregates=["amount:sum", "__count"],
            )
        )
        return balance or 0.0, count
