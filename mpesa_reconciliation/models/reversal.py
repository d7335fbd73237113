"""The books of a reversal asked for from the exception queue: M-PESA sent a
payment's money back, so it left the paybill. The money out is a ledger record of its
own (kind 'reversal', named by the reversal's TransactionID, as M-PESA's statement
lists it), with one negative statement line in the same journal: the journal stays
equal to M-PESA's balance. With a known customer the two lines meet on the
customer's receivable; without one, on the company's liquidity transfer account:
nothing is left in suspense.

M-PESA may confirm a reversal without naming it: a reversal request answered "already
reversed" (R000001), a status query answering "Reversed". The money out then waits,
in the exception queue and in the books check, for M-PESA's statement row of the
reversal, which books it the same way."""

import logging

from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.mpesa_payment.amounts import shillings

_logger = logging.getLogger(__name__)

# What the books check says of a reversed payment whose money out is missing, or
# booked but not cleared against the money in.
MONEY_OUT_UNBOOKED = (
    "reversed on M-PESA, but its money out is not booked (import the statement that "
    "lists the reversal)"
)
PAIR_IN_SUSPENSE = (
    "reversed: its money in and out wait in suspense (reconcile them against each "
    "other)"
)


class MpesaReceipt(models.Model):
    _inherit = "mpesa.receipt"  # pylint: disable=consider-merging-classes-inherited

    kind = fields.Selection(
        selection_add=[("reversal", "Reversal Out")],
        ondelete={"reversal": "cascade"},
    )

    def _mpesa_book_reversal(self, reversal_code, amount, reversed_at):
        """Book the money M-PESA sent back for this receipt; returns the record."""
        self.ensure_one()
        if not (reversal_code and self.kind == "payment" and self.statement_line_id):
            return self.browse()  # its money never entered the books
        money_out = self.search(
            [("name", "=", reversal_code), ("company_id", "=", self.company_id.id)]
        )
        if money_out.kind == "reversal":
            return money_out  # already booked (a repeated result, or the statement)
        if not money_out:
            money_out = self.sudo().create(
                {
                    "name": reversal_code,
                    "kind": "reversal",
                    "provider_id": self.provider_id.id,
                    "company_id": self.company_id.id,
                    "shortcode": self.shortcode,
                    "amount": amount or self.amount,
                    "phone": self.phone,
                    "paid_at": reversed_at,
                    "partner_id": self.partner_id.id,
                    "linked_receipt": self.name,
                    "state": "applied",
                }
            )
        return self._mpesa_meet_reversal(money_out)

    def _mpesa_meet_reversal(self, money_out):
        """``money_out`` is this payment's reversal: booked as such (a statement row
        imported before M-PESA said the payment was reversed was booked as a
        withdrawal), met with the money in, and the queue's wait for it closed."""
        self._mpesa_take_money_out(money_out, "reversal")
        try:
            with self.env.cr.savepoint():
                self.with_company(self.company_id)._mpesa_settle_reversal(money_out)
        except UserError:
            # The money out is booked either way; the books check shows the pair.
            _logger.warning("M-PESA reversal %s left in suspense", money_out.name)
        self.sudo().exception_ids.filtered(
            lambda e: e.state == "open" and e.kind == "reversal_unbooked"
        )._resolve(
            "reversed",
            self.env._(
                "Money out booked: KES %(amount)s, reversal %(code)s.",
                amount=shillings(money_out.amount),
                code=money_out.name,
            ),
        )
        return money_out

    def _mpesa_take_money_out(self, money_out, kind, **values):
        """``money_out`` is this payment's money out of ``kind`` (its reversal, or
        a refund's): a statement row imported before M-PESA's result named it was
        booked as a withdrawal, linked to this payment. Booked as ``kind`` with
        ``values``; its bank line, not yet reconciled, the customer's named there
        (as a line fed from the receipt is)."""
        if money_out.kind == kind:
            return money_out
        money_out.sudo().write({"kind": kind, "linked_receipt": self.name, **values})
        line = money_out.sudo().statement_line_id
        if values.get("partner_id") and not line.is_reconciled:
            line.partner_id = values["partner_id"]
        return money_out

    def _mpesa_settle_reversal(self, money_out):
        """The money in and the money out meet on the customer's receivable, or,
        without a customer, on the company's liquidity transfer account, as an
        accountant clears a pair that nets to nothing (in the receipt's company: a
        result runs as the main company)."""
        incoming = self.statement_line_id.with_company(self.company_id)
        outgoing = money_out.statement_line_id.with_company(self.company_id)
        partner = self.partner_id.commercial_partner_id.with_company(self.company_id)
        account = (
            partner.property_account_receivable_id
            if partner
            else self.company_id.transfer_account_id
        )
        if not (outgoing and account.reconcile) or incoming.is_reconciled:
            return False
        incoming.partner_id = outgoing.partner_id = partner
        if not incoming._mpesa_reconcile_to(account):
            return False
        counterpart = incoming.move_id.line_ids.filtered(
            lambda aml: aml.account_id == account and not aml.reconciled
        )
        return bool(counterpart) and outgoing._mpesa_reconcile_with(counterpart)

    def _mpesa_reversal_out(self, kind="reversal"):
        """The money out booked for this payment's reversal. ``kind="withdrawal"``:
        its statement row, imported before M-PESA said the payment was reversed (money
        out linked to a payment not reversed then)."""
        self.ensure_one()
        return self.search(
            [
                ("kind", "=", kind),
                ("linked_receipt", "=", self.name),
                ("company_id", "=", self.company_id.id),
                ("shortcode", "=", self.shortcode),
            ],
            limit=1,
        )

    def _mpesa_await_reversal_out(self):
        """M-PESA says this payment was reversed but did not name the reversal: its
        statement row, if imported already, is its money out; otherwise the
        accountant is told what brings the money out (that row), once."""
        for receipt in self.filtered(
            lambda r: (
                r.kind == "payment" and r.state == "reversed" and r.statement_line_id
            )
        ):
            if receipt._mpesa_reversal_out():
                continue
            imported = receipt._mpesa_reversal_out(kind="withdrawal")
            if imported:
                receipt._mpesa_meet_reversal(imported)
                continue
            self.env["mpesa.exception"].sudo()._open_for_receipt(
                receipt,
                kind="reversal_unbooked",
                reason=self.env._(
                    "M-PESA confirms this payment was reversed, but did not say under "
                    "which receipt: the KES %s that left M-PESA is not booked yet. "
                    "Import the M-PESA statement that lists the reversal: its row "
                    "books the money out and closes this exception.",
                    shillings(receipt.amount),
                ),
            )


class MpesaApiRequest(models.Model):
    _inherit = "mpesa.api.request"  # pylint: disable=consider-merging-classes-inherited

    def _apply_reversal(self, result):
        """A reversal from the exception queue that M-PESA made: its money out is
        booked (a refund's reversal is booked by the refund); one M-PESA had made
        already (R000001) waits for its statement row."""
        res = super()._apply_reversal(result)
        receipt = self.receipt_id
        if self._refund_transaction() or receipt.state != "reversed":
            return res
        if result.is_success:
            params = result.parameters
            receipt._mpesa_book_reversal(
                str(result.transaction_id or ""),
                float(params.get("Amount") or 0.0),
                self._result_time(params.get("TransCompletedTime")),
            )
        elif result.result_code == "R000001":
            receipt._mpesa_await_reversal_out()
        return res

    def _apply_status(self, result):
        """A payment M-PESA reports as reversed: its money out waits for the
        reversal's statement row (the status names the payment, not the reversal)."""
        res = super()._apply_status(result)
        if result.is_success and (
            result.parameters.get("TransactionStatus") == "Reversed"
        ):
            self.receipt_id._mpesa_await_reversal_out()
        return res


class MpesaException(models.Model):
    _inherit = "mpesa.exception"  # pylint: disable=consider-merging-classes-inherited

    kind = fields.Selection(
        selection_add=[("reversal_unbooked", "Reversed, Money Out Not Booked")],
        ondelete={"reversal_unbooked": "cascade"},
    )


class PaymentProvider(models.Model):
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    def _mpesa_books_applied(self):
        """A reversed payment's money left M-PESA: its money out is booked and meets
        the money in, or the journal no longer equals M-PESA's balance."""
        found = super()._mpesa_books_applied()
        rows = self._mpesa_books_query(
            """SELECT r.name, o.id IS NULL,
                      NOT (l.is_reconciled AND coalesce(ol.is_reconciled, FALSE))
                 FROM mpesa_receipt r
                 JOIN account_bank_statement_line l ON l.mpesa_receipt_id = r.id
            LEFT JOIN mpesa_receipt o ON o.kind = 'reversal'
                      AND o.linked_receipt = r.name AND o.company_id = r.company_id
                      AND o.shortcode = r.shortcode
            LEFT JOIN account_bank_statement_line ol ON ol.mpesa_receipt_id = o.id
                WHERE r.provider_id = %(provider)s AND r.kind = 'payment'
                  AND r.state = 'reversed'"""
        )
        return found + [
            (code, MONEY_OUT_UNBOOKED if unbooked else PAIR_IN_SUSPENSE)
            for code, unbooked, in_suspense in rows
            if unbooked or in_suspense
        ]
