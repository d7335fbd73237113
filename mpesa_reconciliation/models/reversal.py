"""The books of a reversal asked for from the exception queue: M-PESA sent a
payment's money back, so it left the paybill. The money out is a ledger record of its
own (kind 'reversal', named by the reversal's TransactionID, as M-PESA's statement
lists it), with one negative statement line in the same journal: the journal stays
equal to M-PESA's balance. With a known customer the two lines meet on the
customer's receivable; without one, on the company's liquidity transfer account:
nothing is left in suspense."""

import logging

from odoo import fields, models
from odoo.exceptions import UserError

_logger = logging.getLogger(__name__)


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
        known = self.search(
            [("name", "=", reversal_code), ("company_id", "=", self.company_id.id)]
        )
        if known:
            return known  # already booked (a repeated result, or the statement)
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
        try:
            with self.env.cr.savepoint():
                self.with_company(self.company_id)._mpesa_settle_reversal(money_out)
        except UserError:
            # The money out is booked either way; the accountant clears the pair.
            _logger.warning("M-PESA reversal %s left in suspense", reversal_code)
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


class MpesaApiRequest(models.Model):
    _inherit = "mpesa.api.request"  # pylint: disable=consider-merging-classes-inherited

    def _apply_reversal(self, result):
        """A reversal from the exception queue that M-PESA made: its money out is
        booked (a refund's reversal is booked by the refund)."""
        res = super()._apply_reversal(result)
        receipt = self.receipt_id
        if (
            result.is_success
            and not self._refund_transaction()
            and receipt.state == "reversed"
        ):
            params = result.parameters
            receipt._mpesa_book_reversal(
                str(result.transaction_id or ""),
                float(params.get("Amount") or 0.0),
                self._result_time(params.get("TransCompletedTime")),
            )
        return res
