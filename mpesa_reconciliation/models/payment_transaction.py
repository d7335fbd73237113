from datetime import timedelta

from odoo import api, fields, models


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    def _post_process(self):
        """Once a payment exists, its M-PESA statement line can meet it."""
        res = super()._post_process()
        done = self.filtered(
            lambda t: t.provider_code == "mpesa" and t.state == "done" and t.payment_id
        )
        if done:
            receipts = done.mpesa_source_receipt_id.sudo()
            for receipt in receipts:
                receipt._mpesa_reconcile_with_payment()
        return res

    def _mpesa_register_receipt(self, paid_at, applied=False, confirmed=True):
        """Extends mpesa_payment: a receipt applied to a payment that is booked
        already (its code came after the status query confirmed it) meets that
        payment at once; post-processing, which does it otherwise, is over."""
        res = super()._mpesa_register_receipt(
            paid_at, applied=applied, confirmed=confirmed
        )
        if applied and self.is_post_processed and self.payment_id:
            for receipt in self.mpesa_source_receipt_id.sudo():
                receipt._mpesa_reconcile_with_payment()
        return res

    def _mpesa_receipts(self):
        codes = [c for c in self.mapped("mpesa_receipt_code") if c]
        return self.env["mpesa.receipt"].sudo().search([("name", "in", codes)])

    def _mpesa_flag_review(self, message):
        """Money that needs a person becomes an exception in the queue."""
        res = super()._mpesa_flag_review(message)
        for receipt in self._mpesa_receipts():
            receipt.write(
                {
                    "state": "review",
                    "review_reason": message,
                    "review_cause": False,
                    "transaction_id": receipt.transaction_id.id or self.id,
                }
            )
        return res

    def _mpesa_unbook_for_review(self, why):
        """Extends mpesa_payment: the review is an exception in the queue, opened
        before the receipt goes to review so that it is the only one and says why."""
        for receipt in self.mpesa_source_receipt_id.sudo():
            self.env["mpesa.exception"].sudo()._open_for_receipt(
                receipt, kind="review", reason=why
            )
        return super()._mpesa_unbook_for_review(why)

    def _mpesa_apply_success(self, amount, receipt, phone, paid_at, verify):
        """Extends mpesa_payment's success with the exception queue: money paid from
        another phone than the one prompted is booked, and reviewed."""
        requested = self.mpesa_phone
        res = super()._mpesa_apply_success(amount, receipt, phone, paid_at, verify)
        if phone and requested and phone != requested and self.state == "done":
            ledger = self._mpesa_receipts()
            for rec in ledger:
                self.env["mpesa.exception"].sudo()._open_for_receipt(
                    rec,
                    kind="other_phone",
                    reason=self.env._(
                        "The payment request went to %(asked)s but %(paid)s paid.",
                        asked=requested,
                        paid=phone,
                    ),
                )
        return res

    @api.model
    def _cron_mpesa_not_applied(self):
        """Paid, but the order/invoice was still not updated after a while."""
        half_hour_ago = fields.Datetime.now() - timedelta(minutes=30)
        late = self.search(
            [
                ("provider_code", "=", "mpesa"),
                ("state", "=", "done"),
                ("is_post_processed", "=", False),
                ("last_state_change", "<", half_hour_ago),
            ]
        )
        why = self.env._(
            "M-PESA confirmed the payment but the order or invoice was not "
            "updated (post-processing did not finish)."
        )
        for receipt in late._mpesa_receipts():
            self.env["mpesa.exception"].sudo()._open_for_receipt(
                receipt, kind="not_applied", reason=why
            )
