from werkzeug import urls

from odoo import models
from odoo.tools import float_compare
from odoo.tools.misc import hmac


class SaleOrder(models.Model):
    _name = "sale.order"
    _inherit = ["sale.order", "mpesa.payable.mixin"]

    def _mpesa_payable(self):
        """A quotation or a confirmed order may be paid; a cancelled one may not."""
        return self.state in ("draft", "sent", "sale")

    def _send_order_confirmation_mail(self):
        """Override of `sale` to send nothing for an order confirmed by an M-PESA payment:
        its receipt email says it."""
        if self.env.context.get("mpesa_receipt_is_the_message"):
            return  # confirmed by an M-PESA payment: its receipt email says it
        return super()._send_order_confirmation_mail()

    def _send_payment_succeeded_for_order_mail(self):
        """Override of `sale` to send nothing for an M-PESA payment: its receipt email is
        the customer's one message."""
        if self.env.context.get("mpesa_receipt_is_the_message"):
            return  # the M-PESA receipt email is the customer's one message
        return super()._send_payment_succeeded_for_order_mail()

    def _mpesa_balance_due(self):
        """What is left to pay on a confirmed order after its deposit (core shows no
        Pay button once the order is confirmed)."""
        self.ensure_one()
        if self.state != "sale" or not self.amount_paid:
            return 0.0
        left = self.currency_id.round(self.amount_total - self.amount_paid)
        return left if float_compare(left, 0, precision_digits=2) > 0 else 0.0

    def _mpesa_balance_payment_url(self):
        """A payment link for the balance, like the one staff would generate."""
        self.ensure_one()
        amount = self._mpesa_balance_due()
        params = {
            "amount": amount,
            # payment.utils.generate_access_token, which needs a request to run; for
            # the invoice address, as sale's /payment/pay checks it
            "access_token": hmac(
                self.env(su=True),
                "generate_access_token",
                f"{self.partner_invoice_id.id}|{amount}|{self.currency_id.id}",
            ),
            "sale_order_id": self.id,
        }
        return f"/payment/pay?{urls.url_encode(params)}"
