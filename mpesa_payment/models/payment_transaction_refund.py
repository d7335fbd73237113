import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_compare, float_is_zero

from ..amounts import shillings
from ..references import phone_kind

_logger = logging.getLogger(__name__)


class PaymentTransaction(models.Model):
    """Refunds of M-PESA payments (Odoo's Refund button, payment.refund.wizard).

    A refund is a child transaction (operation 'refund', negative amount), pending
    until M-PESA's result reaches our signed result URL: then it is done and its
    outgoing payment is posted (reconciled with the credit note it pays), or it
    fails (error) and nothing is booked. A refund is never booked before M-PESA
    says the money left."""

    _inherit = "payment.transaction"  # pylint: disable=consider-merging-classes-inherited

    mpesa_refund_method = fields.Selection(
        [("reversal", "Reversal"), ("b2c", "B2C Payment")],
        string="Refunded By",
        readonly=True,
    )
    mpesa_refund_request_ids = fields.One2many(
        "mpesa.api.request", "transaction_id", string="M-PESA Requests", readonly=True
    )

    # === PLANNING (also shown by the refund wizard before anything is sent) === #

    def _mpesa_refund_receipt(self):
        """The ledger receipt whose money this payment is."""
        self.ensure_one()
        receipt = self.mpesa_source_receipt_id
        if not receipt and self.mpesa_receipt_code:
            receipt = (
                self.env["mpesa.receipt"]
                .sudo()
                .search(
                    [
                        ("name", "=", self.mpesa_receipt_code),
                        ("provider_id", "=", self.provider_id.id),
                    ],
                    limit=1,
                )
            )
        return receipt.sudo()

    def _mpesa_refund_phone(self):
        """The phone to send a B2C refund to: the receipt's, when M-PESA gave it in
        full (paybill payments come masked or hashed), else the STK prompt's. A
        transaction made from a paybill receipt carries the receipt's phone as
        given, masked or hashed: never a number to send money to."""
        self.ensure_one()
        receipt = self._mpesa_refund_receipt()
        if receipt.phone and receipt.phone_kind == "plain":
            return receipt.phone
        if self.mpesa_phone and phone_kind(self.mpesa_phone) == "plain":
            return self.mpesa_phone
        return False

    def _mpesa_refund_method_for(self, amount):
        """'reversal' when the whole receipt goes back (M-PESA reverses whole
        transactions only), 'b2c' otherwise."""
        self.ensure_one()
        receipt = self._mpesa_refund_receipt()
        rounding = self.currency_id.rounding
        whole = (
            receipt
            and not self.env.context.get("mpesa_refund_by_b2c")
            and float_compare(amount, receipt.amount, precision_rounding=rounding) == 0
            and receipt.application_ids <= self
            and not self.child_transaction_ids.filtered(
                lambda tx: tx.operation == "refund" and tx.state != "error"
            )
        )
        return "reversal" if whole else "b2c"

    def _mpesa_check_refund(self, amount, method):
        self.ensure_one()
        if self.child_transaction_ids.filtered(
            lambda tx: tx.operation == "refund" and tx.state in ("draft", "pending")
        ):
            # Its money may be leaving M-PESA right now: no second one meanwhile.
            raise UserError(
                self.env._(
                    "A refund of this payment is waiting for M-PESA's answer: wait "
                    "for it (or for its timeout) before refunding again."
                )
            )
        if not self._mpesa_refund_receipt():
            raise UserError(
                self.env._("This payment has no M-PESA receipt: it cannot be refunded.")
            )
        if not float_is_zero(amount % 1, precision_digits=2):
            raise UserError(
                self.env._("M-PESA sends whole shillings only: refund a whole amount.")
            )
        if method == "b2c" and not self._mpesa_refund_phone():
            raise UserError(
                self.env._(
                    "M-PESA gave this payment's phone number masked: a partial refund "
                    "cannot be sent by B2C. Refund the whole payment (reversal)."
                )
            )

    # === SENDING === #

    def _send_refund_request(self, amount_to_refund=None):
        """Override of `payment`: ask M-PESA to send the money back."""
        if self.provider_code != "mpesa":
            return super()._send_refund_request(amount_to_refund=amount_to_refund)
        self.ensure_one()
        amount = amount_to_refund or self.amount
        method = self._mpesa_refund_method_for(amount)
        self._mpesa_check_refund(amount, method)
        receipt = self._mpesa_refund_receipt()
        credit_notes = self.env["account.move"].browse(
            self.env.context.get("mpesa_refund_credit_note_ids") or []
        )
        refund = self._create_child_transaction(
            amount,
            is_refund=True,
            invoice_ids=[Command.set(credit_notes.ids)],
            mpesa_refund_method=method,
            mpesa_phone=self._mpesa_refund_phone() if method == "b2c" else False,
        )
        sent = self.env["mpesa.api.request"]._send(
            self.provider_id,
            method,
            receipt.name,
            amount=amount,
            remarks=self.env._("Refund %s", self.reference),
            receipt_id=receipt.id,
            refund_reference=refund.reference,
            phone=refund.mpesa_phone,
        )
        if sent.env.context.get("mpesa_unanswered"):
            refund._set_pending(
                self.env._(
                    "M-PESA did not answer our refund request: the money may still be "
                    "sent. Waiting for M-PESA's result; do not refund again meanwhile."
                )
            )
        else:
            refund._set_pending(self.env._("Waiting for M-PESA to send the refund."))
        refund._log_sent_message()
        return refund

    # === RESULTS === #

    def _mpesa_refund_paid(self, receipt_code, amount, paid_at):
        """M-PESA sent the money back: book the refund (its outgoing payment,
        reconciled with the credit note) and tell the customer."""
        self.ensure_one()
        self._mpesa_lock()
        if self.state == "done":
            return False
        if float_compare(
            amount, -self.amount, precision_rounding=self.currency_id.rounding
        ):
            # Money left, but not what we asked: a person decides (nothing booked).
            self._mpesa_refund_failed(
                self.env._(
                    "M-PESA sent KES %(paid)s for a refund of KES %(asked)s (receipt "
                    "%(code)s): check it before booking anything.",
                    paid=shillings(amount),
                    asked=shillings(-self.amount),
                    code=receipt_code,
                )
            )
            return False
        self.sudo().write(
            {"mpesa_receipt_code": receipt_code, "provider_reference": receipt_code}
        )
        self._set_done(self.env._("Refunded on M-PESA, receipt %s.", receipt_code))
        self._post_process()
        self._mpesa_refund_reconcile_source()
        self._mpesa_refund_tell_customer()
        return True

    def _mpesa_refund_failed(self, why):
        """M-PESA refused the refund, or never answered: nothing is booked."""
        self.ensure_one()
        if self.state in ("done", "error"):
            return False
        self._set_error(self.env._("The refund was not paid: %s", why))
        return True

    def _create_payment(self, **extra_create_values):
        """A B2C refund leaves the B2C shortcode's own M-PESA account: its payment
        is in that account's journal."""
        if (
            self.provider_code == "mpesa"
            and self.operation == "refund"
            and self.mpesa_refund_method == "b2c"
        ):
            journal = self.provider_id._mpesa_b2c_journal()
            if journal != self.provider_id.journal_id:
                line = journal.outbound_payment_method_line_ids[:1]
                extra_create_values = {
                    "journal_id": journal.id,
                    "payment_method_line_id": line.id,
                    **extra_create_values,
                }
        return super()._create_payment(**extra_create_values)

    def _mpesa_refund_reconcile_source(self):
        """Without a credit note, the refund pays back what the source payment left
        on the customer's account (e.g. an overpayment kept as credit)."""
        payment = self.payment_id
        source = self.source_transaction_id.payment_id
        if self.invoice_ids or not (payment and source):
            return
        lines = (payment.move_id.line_ids + source.move_id.line_ids).filtered(
            lambda aml: (
                aml.account_id == payment.destination_account_id and not aml.reconciled
            )
        )
        if len(lines) > 1:
            lines.reconcile()

    def _mpesa_refund_tell_customer(self):
        """The customer reads it by email, from the credit note's (or the refunded
        document's) chatter."""
        documents = self.invoice_ids or self.source_transaction_id.invoice_ids
        body = Markup("<p>%s</p>") % self.env._(
            "We have refunded KES %(amount)s to your M-PESA (%(phone)s). M-PESA "
            "receipt: %(code)s.",
            amount=shillings(-self.amount),
            phone=self.mpesa_phone or self.env._("the phone that paid"),
            code=self.mpesa_receipt_code,
        )
        for document in documents[:1] or self.partner_id:
            document.sudo().message_post(
                body=body,
                partner_ids=self.partner_id.ids,
                subtype_xmlid="mail.mt_comment",
                message_type="comment",
            )

    @api.model
    def _cron_mpesa_refund_overdue(self):
        """A refund M-PESA never answered: not paid as far as we know; a person
        checks (an exception). A late result still books it."""
        now = fields.Datetime.now()
        refunds = self.search(
            [
                ("provider_code", "=", "mpesa"),
                ("operation", "=", "refund"),
                ("state", "=", "pending"),
            ]
        )
        for refund in refunds:
            timeout = refund.provider_id.mpesa_refund_timeout
            if refund.last_state_change > now - timedelta(minutes=timeout):
                continue
            refund._mpesa_refund_failed(
                self.env._(
                    "M-PESA has not answered after %s minutes. Nothing was booked: "
                    "check the shortcode's M-PESA statement before refunding again.",
                    timeout,
                )
            )
