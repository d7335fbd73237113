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

    def _log_message_on_linked_documents(self, message):
        """Override of `account_payment` and `sale` to sign the note an M-PESA payment
        leaves on its invoices and orders as the staff member who applied the money
        (an allocation, a collection request, an accepted suggestion), as core does
        for its own backend actions (``payment_backend_action``). Core signs it as
        the customer otherwise and refuses a sender without email: M-PESA customers
        are often known by phone only, and the refusal undid the whole allocation."""
        tx = self
        if self.provider_code == "mpesa" and self.env.user._is_internal():
            tx = self.with_context(payment_backend_action=True)
        return super(PaymentTransaction, tx)._log_message_on_linked_documents(message)
