from werkzeug import urls

from odoo import models
from odoo.tools import float_compare
from odoo.tools.misc import hmac


class SaleOrder(models.Model):
    _inherit = "sale.order"

    def action_mpesa_request_payment(self):
        """Staff push a payment prompt to the customer's phone (mpesa.collection)."""
        return self.env["mpesa.collection"]._action_request(self)

    def _mpesa_printed_reference(self):
        """The account number printed on this order (mpesa_how_to_pay.py)."""
        self.ensure_one()
        return self.env["mpesa.receipt"]._mpesa_printed_reference(self)

    def _mpesa_how_to_pay(self):
        """How to pay this order by paybill or till, as printed; or False."""
        self.ensure_one()
        if self.state not in ("draft", "sent", "sale"):
            return False
        return self.env["payment.provider"]._mpesa_how_to_pay(self)

    def _send_order_confirmation_mail(self):
        if self.env.context.get("mpesa_receipt_is_the_message"):
            return  # confirmed by an M-PESA payment: its receipt email says it
        return super()._send_order_confirmation_mail()

    def _send_payment_succeeded_for_order_mail(self):
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
