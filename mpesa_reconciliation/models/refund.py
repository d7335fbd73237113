"""The books of a refund: the money that left M-PESA is a ledger record of its own
(kind 'refund', the reversal's or B2C payment's receipt code), with one negative
statement line in the journal of the account it left (the paybill's for a
reversal, the B2C shortcode's for a B2C payment), reconciled with the refund's
outgoing payment. A refund M-PESA refused or never answered books nothing and opens
an exception."""

from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.mpesa_payment.amounts import shillings


class MpesaReceipt(models.Model):
    _inherit = "mpesa.receipt"  # pylint: disable=consider-merging-classes-inherited

    kind = fields.Selection(
        selection_add=[("refund", "Refund Out")], ondelete={"refund": "cascade"}
    )

    def _mpesa_statement_journal(self):
        """A refund's line goes where its payment was booked."""
        if self.kind == "refund" and self.transaction_id.payment_id:
            return self.transaction_id.payment_id.journal_id
        return super()._mpesa_statement_journal()

    def _mpesa_reconcile_with_payment(self):
        """A refund's (negative) bank line meets its outgoing payment."""
        if self.kind != "refund":
            return super()._mpesa_reconcile_with_payment()
        line = self.statement_line_id
        payment = self.transaction_id.payment_id
        if not (payment and line) or line.is_reconciled:
            return False
        outstanding = payment.move_id.line_ids.filtered(
            lambda aml: (
                aml.account_id == payment.outstanding_account_id and not aml.reconciled
            )
        )
        return bool(outstanding) and line._mpesa_reconcile_with(outstanding)

    def _mpesa_sync_exceptions(self):
        """While an overpayment is being sent back, its exception stays open."""
        if self.env.context.get("mpesa_refund_keep_open"):
            return None
        return super()._mpesa_sync_exceptions()


class PaymentProvider(models.Model):
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    def _mpesa_books_journal(self):
        """A refund's receipt is in the journal of its payment (the B2C shortcode's
        for a B2C refund), once."""
        found = super()._mpesa_books_journal()
        rows = self._mpesa_books_query(
            """SELECT r.name FROM mpesa_receipt r
                 JOIN account_bank_statement_line l ON l.mpesa_receipt_id = r.id
                 JOIN payment_transaction tx ON tx.id = r.transaction_id
                 JOIN account_payment p ON p.id = tx.payment_id
                WHERE r.provider_id = %(provider)s AND r.kind = 'refund'
             GROUP BY r.id, r.name
               HAVING count(l.id) = 1 AND bool_and(l.journal_id = p.journal_id)"""
        )
        in_place = {code for (code,) in rows}
        return [(code, problem) for code, problem in found if code not in in_place]

    def _mpesa_books_applied(self):
        """No refund booked without M-PESA's payment in the ledger."""
        found = super()._mpesa_books_applied()
        rows = self._mpesa_books_query(
            """SELECT tx.reference FROM payment_transaction tx
                WHERE tx.provider_id = %(provider)s AND tx.operation = 'refund'
                  AND tx.state = 'done'
                  AND NOT EXISTS (SELECT 1 FROM mpesa_receipt r
                                   WHERE r.transaction_id = tx.id
                                     AND r.kind = 'refund')"""
        )
        return found + [
            ("", f"refund {ref} booked, but M-PESA's payment is not in the ledger")
            for (ref,) in rows
        ]


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"  # pylint: disable=consider-merging-classes-inherited

    def _mpesa_refund_paid(self, receipt_code, amount, paid_at):
        """Extends mpesa_payment's refund booking with the ledger: the money sent back
        leaves the shortcode's M-PESA account as a receipt of its own."""
        paid = super()._mpesa_refund_paid(receipt_code, amount, paid_at)
        if not paid:
            return paid
        self._mpesa_book_refund_out(receipt_code, amount, paid_at)
        self._mpesa_refund_exceptions().filtered(lambda e: e.state == "open")._resolve(
            "reversed",
            self.env._(
                "Refunded on M-PESA: KES %(amount)s, receipt %(code)s.",
                amount=shillings(amount),
                code=receipt_code,
            ),
        )
        return paid

    def _mpesa_book_refund_out(self, receipt_code, amount, paid_at):
        """The refund's money out, met with its outgoing payment. A reversal's
        statement row imported before this result (a withdrawal under the same
        receipt code) is that money out: taken, not booked twice."""
        source = self.source_transaction_id._mpesa_refund_receipt()
        partner = self.partner_id.commercial_partner_id
        imported = source._mpesa_reversal_out(kind="withdrawal").filtered(
            lambda out: out.name == receipt_code
        )
        if imported:
            source._mpesa_take_money_out(
                imported, "refund", transaction_id=self.id, partner_id=partner.id
            )._mpesa_reconcile_with_payment()
            return imported
        provider = self.provider_id.sudo()
        shortcode = (
            provider.mpesa_b2c_shortcode
            if self.mpesa_refund_method == "b2c"
            else source.shortcode or provider.mpesa_shortcode
        )
        return (
            self.env["mpesa.receipt"]
            .sudo()
            .create(
                {
                    "name": receipt_code,
                    "kind": "refund",
                    "provider_id": provider.id,
                    "company_id": self.company_id.id,
                    "shortcode": shortcode,
                    "amount": amount,
                    "phone": self.mpesa_phone,
                    "paid_at": paid_at,
                    "partner_id": partner.id,
                    "transaction_id": self.id,
                    "linked_receipt": source.name,
                    "state": "applied",
                }
            )
        )

    def _mpesa_refund_failed(self, why):
        """Extends mpesa_payment's refund failure with the exception queue: the money
        not sent back waits there for a decision."""
        failed = super()._mpesa_refund_failed(why)
        if not failed:
            return failed
        open_ = self._mpesa_refund_exceptions().filtered(lambda e: e.state == "open")
        if open_:
            open_.message_post(body=self.env._("The refund was not paid: %s", why))
            return failed
        receipt = self.source_transaction_id._mpesa_refund_receipt()
        self.env["mpesa.exception"].sudo().create(
            {
                "kind": "refund_failed",
                "receipt_id": receipt.id,
                "company_id": self.company_id.id,
                "partner_id": self.partner_id.commercial_partner_id.id,
                "refund_transaction_id": self.id,
                "reason": why,
            }
        )
        return failed

    def _mpesa_refund_exceptions(self):
        return (
            self.env["mpesa.exception"]
            .sudo()
            .search([("refund_transaction_id", "=", self.id)])
        )


class MpesaException(models.Model):
    _inherit = "mpesa.exception"  # pylint: disable=consider-merging-classes-inherited

    kind = fields.Selection(
        selection_add=[("refund_failed", "Refund Not Paid")],
        ondelete={"refund_failed": "cascade"},
    )
    refund_transaction_id = fields.Many2one(
        "payment.transaction",
        string="Refund",
        readonly=True,
        index="btree_not_null",
        help="The refund this exception is about: sent back by M-PESA, refused, or "
        "never answered.",
    )
    refund_state = fields.Selection(related="refund_transaction_id.state")

    def action_return_overpayment(self):
        """The confirmation step: amount and phone, before anything is sent."""
        return self._open_wizard("mpesa.exception.return")

    def _mpesa_overpayment_split(self):
        """(document, amount it is owed, amount to send back): an overpaid payment
        request first pays what it asked for, a paybill payment what the document
        its account number names has left to pay; the rest goes back."""
        self.ensure_one()
        receipt = self.receipt_id.sudo()
        push = receipt.transaction_id
        left = receipt._mpesa_left()
        no_document = self.env["account.move"]
        if self.kind != "overpaid":
            return no_document, 0.0, left
        if push:
            document = push.invoice_ids[:1] or push.sale_order_ids[:1]
            asked = receipt.expected_amount or push.amount
        else:
            document = (receipt.review_document or no_document).exists()
            asked = receipt._amount_due(document) if document else 0.0
        due = min(left, asked) if document else 0.0
        return document, due, receipt.currency_id.round(left - due)

    def _mpesa_return_overpayment(self):
        """Pay the document what it asked (the one money path), keep the rest as
        the customer's credit and send that back by B2C. The exception stays open
        until M-PESA answers: resolved when paid, left open with the reason when
        not (the customer keeps the credit)."""
        self._check_open()
        self.ensure_one()
        receipt = self.receipt_id.with_context(mpesa_refund_keep_open=True)
        partner = self.partner_id or receipt.partner_id
        document, due, rest = self._mpesa_overpayment_split()
        if not partner:
            raise UserError(self.env._("Choose the customer whose money goes back."))
        if rest <= 0:
            raise UserError(
                self.env._("Receipt %s has nothing left to send back.", receipt.name)
            )
        receipt._mpesa_release_push(self.env._("Settled by finance: overpaid."))
        if due:
            receipt._mpesa_apply(document, due)
        credit = receipt._mpesa_apply(partner)
        receipt.application_ids.filtered(
            lambda tx: not tx.is_post_processed
        )._post_process()
        receipt._mpesa_reconcile_with_payment()
        refund = credit.with_context(mpesa_refund_by_b2c=True)._send_refund_request(
            rest
        )
        self.refund_transaction_id = refund
        self.message_post(
            body=self.env._(
                "KES %(amount)s sent back by B2C to %(phone)s; waiting for M-PESA.",
                amount=shillings(rest),
                phone=refund.mpesa_phone,
            )
        )
        return refund
