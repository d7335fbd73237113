from odoo import models


class PaymentTransaction(models.Model):
    """One message per payment: a done M-PESA payment's message is its receipt's
    (mpesa.receipt._mpesa_issue_receipt, with the PDF receipt). The order emails sale
    sends because of a payment (order confirmed by it, payment received on an order)
    would be a second message, so they are not sent for M-PESA payments."""

    # One file per feature: the M-PESA flows live in payment_transaction.py.
    _inherit = "payment.transaction"  # pylint: disable=consider-merging-classes-inherited

    def _post_process(self):
        """Override of `payment` to post-process paid M-PESA transactions with
        ``mpesa_receipt_is_the_message``: the receipt email is the customer's one
        message, so sale's confirmation and payment emails stay unsent."""
        paid = self.filtered(
            lambda tx: tx.provider_code == "mpesa" and tx.state == "done"
        )
        if paid:
            super(
                PaymentTransaction, paid.with_context(mpesa_receipt_is_the_message=True)
            )._post_process()
        return super(PaymentTransaction, self - paid)._post_process()
