import logging

from odoo import api, fields, models

from odoo.addons.mpesa_payment.amounts import shillings

_logger = logging.getLogger(__name__)

# The posted payments of each receipt's money: the transactions the money path
# recorded, and any other transaction quoting the receipt code (never bypassed).
RECEIPT_PAYMENTS = """
    SELECT r.id AS receipt_id, tx.id AS tx_id, tx.amount, pay.id AS payment_id,
           pay.move_id, pay.outstanding_account_id, pay.destination_account_id
      FROM mpesa_receipt r
      JOIN payment_transaction tx ON tx.state = 'done'
           AND (tx.mpesa_source_receipt_id = r.id
                OR (tx.mpesa_receipt_code = r.name AND tx.provider_id = r.provider_id))
      JOIN account_payment pay ON pay.id = tx.payment_id
      JOIN account_move pm ON pm.id = pay.move_id AND pm.state = 'posted'
     WHERE r.provider_id = %(provider)s
"""
# Grace for money still on its way (callback answered, post-processing not yet run).
GRACE = "interval '30 minutes'"


class PaymentProvider(models.Model):
    _inherit = "payment.provider"

    # A copy's books are its own: never checked yet.
    mpesa_books_checked_on = fields.Datetime(
        string="Books Checked On", readonly=True, copy=False
    )
    mpesa_books_differences = fields.Text(
        string="Books Differences", readonly=True, copy=False
    )

    def _mpesa_check_books(self):
        """The books of M-PESA money, checked as an accountant would: every receipt once
        in the ledger and once in the journal, the journal balance equal to M-PESA's,
        and the double entry of each receipt (payments matched, nothing left in
        Outstanding Receipts, the receivable credited by what was paid, never twice,
        no money applied beyond its receipt, none left without payment or exception,
        each payment matched with the invoice it paid).

        Returns a list of (shortcode, receipt code or "", problem) tuples."""
        differences = []
        self.env.flush_all()  # the checks below are SQL
        for provider in self.filtered(lambda p: p.code == "mpesa").sudo():
            shortcode = provider.mpesa_shortcode
            found = []
            for check in (
                provider._mpesa_books_ledger,
                provider._mpesa_books_journal,
                provider._mpesa_books_applied,
                provider._mpesa_books_payments,
                provider._mpesa_books_documents,
                provider._mpesa_books_balance,
            ):
                found += check()
            differences += [(shortcode, code, problem) for code, problem in found]
            provider.write(
                {
                    "mpesa_books_checked_on": fields.Datetime.now(),
                    "mpesa_books_differences": "\n".join(
                        f"{code or '-'}: {problem}" for code, problem in found
                    )
                    or False,
                }
            )
        for shortcode, code, problem in differences:
            _logger.warning("M-PESA books %s: %s %s", shortcode, code, problem)
        return differences

    def _mpesa_books_query(self, query, **params):
        self.env.cr.execute(query, {"provider": self.id, **params})
        return self.env.cr.fetchall()

    def _mpesa_books_ledger(self):
        """Each receipt code once in the ledger; status-query payments get their code."""
        rows = self._mpesa_books_query(
            """SELECT name, count(*) FROM mpesa_receipt WHERE provider_id = %(provider)s
                GROUP BY company_id, shortcode, name HAVING count(*) > 1"""
        )
        found = [(code, f"in the ledger {count} times") for code, count in rows]
        # Receipt codes are unique across M-PESA: one under two shortcodes, of the
        # company or of two companies (a statement imported under the wrong
        # account), is booked twice.
        rows = self._mpesa_books_query(
            """SELECT r.name, min(o.shortcode),
                      min(c.name) FILTER (WHERE o.company_id != r.company_id)
                 FROM mpesa_receipt r
                 JOIN mpesa_receipt o ON o.name = r.name
                      AND (o.company_id != r.company_id OR o.shortcode != r.shortcode)
                 JOIN res_company c ON c.id = o.company_id
                WHERE r.provider_id = %(provider)s GROUP BY r.name"""
        )
        found += [
            (
                code,
                f"also in the ledger of shortcode {other}"
                + (f" ({company})" if company else ""),
            )
            for code, other, company in rows
        ]
        # Confirmed by status query only: paid, but not yet in the ledger. After a
        # day the statement import or the Pull API should have brought its code.
        rows = self._mpesa_books_query(
            """SELECT reference FROM payment_transaction
                WHERE provider_id = %(provider)s AND state = 'done'
                  AND mpesa_checkout_request_id IS NOT NULL AND mpesa_receipt_code IS NULL
                  AND last_state_change < now() at time zone 'utc' - interval '1 day'"""
        )
        return found + [
            ("", f"payment {ref} has no receipt code (import the statement)")
            for (ref,) in rows
        ]

    def _mpesa_books_journal(self):
        """Each receipt exactly once in the provider's journal."""
        if not self.journal_id:
            return [("", "the provider has no journal")]
        rows = self._mpesa_books_query(
            """SELECT r.name, count(l.id), bool_and(l.journal_id = %(journal)s)
                 FROM mpesa_receipt r
            LEFT JOIN account_bank_statement_line l ON l.mpesa_receipt_id = r.id
                WHERE r.provider_id = %(provider)s
                  -- not money (yet): M-PESA has not confirmed it, or denies it
                  AND r.verification NOT IN ('pending', 'refused')
             GROUP BY r.id, r.name
               HAVING count(l.id) != 1 OR NOT bool_and(l.journal_id = %(journal)s)""",
            journal=self.journal_id.id,
        )
        found = []
        for code, count, same in rows:
            if count == 0:
                found.append((code, "missing from the journal"))
            elif count > 1:
                found.append((code, f"in the journal {count} times"))
            elif not same:
                found.append((code, "in another journal"))
        return found

    def _mpesa_books_applied(self):
        """No receipt applied beyond its amount; none left with neither a payment nor
        an open exception."""
        rows = self._mpesa_books_query(
            f"""SELECT r.name, r.amount, count(p.payment_id), sum(p.amount)
                  FROM mpesa_receipt r
                  JOIN ({RECEIPT_PAYMENTS}) p ON p.receipt_id = r.id
                 WHERE r.state != 'reversed'
              GROUP BY r.id HAVING sum(p.amount) > r.amount + 0.005"""
        )
        found = [
            (
                code,
                (
                    f"applied {count} times for {shillings(applied)}, "
                    f"received {shillings(amount)}"
                ),
            )
            for code, amount, count, applied in rows
        ]
        rows = self._mpesa_books_query(
            f"""SELECT r.name FROM mpesa_receipt r
                 WHERE r.provider_id = %(provider)s AND r.kind = 'payment'
                   AND r.state != 'reversed'
                   AND r.verification NOT IN ('pending', 'refused')
                   AND r.create_date < now() at time zone 'utc' - {GRACE}
                   AND NOT EXISTS (SELECT 1 FROM ({RECEIPT_PAYMENTS}) p
                                    WHERE p.receipt_id = r.id)
                   AND NOT EXISTS (SELECT 1 FROM mpesa_exception e
                                    WHERE e.receipt_id = r.id AND e.state = 'open')
                   AND NOT EXISTS (SELECT 1 FROM account_bank_statement_line l
                                     JOIN account_move m ON m.id = l.move_id
                                    WHERE l.mpesa_receipt_id = r.id AND l.is_reconciled
                                      AND m.state = 'posted')"""
        )
        return found + [
            (code, "received, but neither a payment nor an open exception")
            for (code,) in rows
        ]

    def _mpesa_books_payments(self):
        """The double entry of each receipt: its payments matched with its bank line
        (nothing left in Outstanding Receipts) and the customer's receivable credited
        by what was paid, not a second time by the bank line. In shillings, as the
        receipt (amount_currency): a company keeping its books in another currency
        would otherwise compare its dollars with the receipt's shillings."""
        rows = self._mpesa_books_query(
            f"""SELECT r.name, sum(aml.amount_currency)
                  FROM mpesa_receipt r
                  JOIN ({RECEIPT_PAYMENTS}) p ON p.receipt_id = r.id
                  JOIN account_move_line aml ON aml.move_id = p.move_id
                       AND aml.account_id = p.outstanding_account_id
                 WHERE NOT aml.reconciled
              GROUP BY r.id"""
        )
        found = [
            (
                code,
                f"{shillings(left)} left in Outstanding Receipts (payment not matched)",
            )
            for code, left in rows
        ]
        return found + self._mpesa_books_credited_beyond()

    def _mpesa_books_credited_beyond(self):
        """The customer's receivable credited beyond the money (a second time by the
        bank line, say). What a payment writes off (an early payment discount: 980
        paid settles 1,000) is no money, but no excess either: it is left out."""
        rows = self._mpesa_books_query(
            f"""WITH payments AS ({RECEIPT_PAYMENTS}),
                moves AS (
                    SELECT receipt_id, move_id FROM payments
                     UNION
                    SELECT l.mpesa_receipt_id, l.move_id
                      FROM account_bank_statement_line l
                      JOIN mpesa_receipt r ON r.id = l.mpesa_receipt_id
                     WHERE r.provider_id = %(provider)s),
                written_off AS (
                    SELECT p.receipt_id, sum(aml.amount_currency) AS amount
                      FROM payments p
                      JOIN account_move_line aml ON aml.move_id = p.move_id
                           AND aml.account_id IS DISTINCT FROM p.outstanding_account_id
                           AND aml.account_id IS DISTINCT FROM p.destination_account_id
                  GROUP BY p.receipt_id)
                SELECT r.name, r.amount,
                       -sum(aml.amount_currency) - coalesce(max(w.amount), 0)
                  FROM mpesa_receipt r
                  JOIN moves ON moves.receipt_id = r.id
                  JOIN account_move_line aml ON aml.move_id = moves.move_id
                       AND aml.parent_state = 'posted'
                  JOIN account_account acc ON acc.id = aml.account_id
                       AND acc.account_type IN ('asset_receivable', 'liability_payable')
                  LEFT JOIN written_off w ON w.receipt_id = r.id
              GROUP BY r.id
                HAVING -sum(aml.amount_currency) - coalesce(max(w.amount), 0)
                       > r.amount + 0.005"""
        )
        return [
            (
                code,
                (
                    f"the customer was credited {shillings(booked)} for "
                    f"{shillings(amount)} paid"
                ),
            )
            for code, amount, booked in rows
        ]

    def _mpesa_books_documents(self):
        """The money reached what it paid: a payment made for an invoice is matched
        with it, not left as the customer's credit beside the invoice still due (a
        payment unmatched by hand, one that paid the order but not its invoice)."""
        rows = self._mpesa_books_query(
            f"""SELECT r.name, string_agg(DISTINCT inv.name, ', ' ORDER BY inv.name),
                       sum(aml.amount_residual_currency)
                  FROM mpesa_receipt r
                  JOIN ({RECEIPT_PAYMENTS}) p ON p.receipt_id = r.id
                  JOIN account_move_line aml ON aml.move_id = p.move_id
                       AND aml.account_id = p.destination_account_id
                       AND NOT aml.reconciled
                  JOIN account_invoice_transaction_rel rel
                       ON rel.transaction_id = p.tx_id
                  JOIN account_move inv ON inv.id = rel.invoice_id
                       AND inv.state = 'posted' AND inv.amount_residual > 0.005
              GROUP BY r.id"""
        )
        problem = (
            "paid for {invoices}, which is still due: {credit} is the "
            "customer's credit instead (payment not matched with the invoice)"
        )
        return [
            (code, problem.format(invoices=invoices, credit=shillings(-credit)))
            for code, invoices, credit in rows
        ]

    def _mpesa_books_balance(self):
        """The journal balance equals the last balance M-PESA gave us: the journal as
        of the moment M-PESA reported it, so money received since then is no
        difference."""
        if not (self.mpesa_balance_date and self.journal_id):
            return []
        checked = self.mpesa_balance_date
        balance = self.journal_id._mpesa_journal_balance(as_of=checked)
        if abs(balance - self.mpesa_balance) <= 0.005:
            return []
        return [
            (
                "",
                (
                    f"journal balance {shillings(balance)} != M-PESA balance "
                    f"{shillings(self.mpesa_balance)}, both as of M-PESA's balance check "
                    f"at {checked} UTC"
                ),
            )
        ]

    @api.model
    def _cron_mpesa_check_books(self):
        self.search(
            [("code", "=", "mpesa"), ("state", "!=", "disabled")]
        )._mpesa_check_books()
