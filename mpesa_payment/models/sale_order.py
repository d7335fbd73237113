from werkzeug import urls

from odoo import api, models
from odoo.tools import float_compare
from odoo.tools.misc import hmac

from ..kenya_time import kenya_today
from .account_move import OPEN_INVOICE_DOMAIN


class SaleOrder(models.Model):
    _name = "sale.order"
    _inherit = ["sale.order", "mpesa.payable.mixin"]

    def _mpesa_payable(self):
        """A quotation or a confirmed order may be paid; a cancelled one may not."""
        return self.state in ("draft", "sent", "sale")

    # === IN THE ORDER'S CURRENCY === #

    @api.depends("transaction_ids")
    def _compute_amount_paid(self):
        """Override of `sale`, which adds up the transactions' amounts as they are:
        right for its payment form, which pays an order in the order's currency, but
        M-PESA pays in KES whatever the order's currency. Half of a $10 order paid KES
        645 read as $645 paid: the quotation was confirmed, the second half taken for a
        duplicate and the matcher left the order out. Each amount in the order's."""
        for order in self:
            order.amount_paid = sum(
                order._mpesa_in_order_currency(tx.amount, tx.currency_id)
                for tx in order.transaction_ids
                if tx.state in ("authorized", "done")
            )

    def _mpesa_in_order_currency(self, amount, currency):
        """``amount`` of ``currency`` (M-PESA's KES, say) in the order's currency, at
        the company's rate of Kenya's day: mpesa.receipt._in_kes the other way."""
        self.ensure_one()
        return currency._convert(
            amount, self.currency_id, self.company_id, kenya_today()
        )

    def _mpesa_residual_in_order_currency(self, line):
        """What a payment's receivable ``line`` has still to pay, in the order's
        currency: its own amount if the payment is in it, else its value in the books
        (what it pays of an invoice in the company's currency), converted when the
        order is in yet another currency."""
        if line.currency_id == self.currency_id:
            return line.amount_residual_currency
        return self._mpesa_in_order_currency(
            line.amount_residual, line.company_currency_id
        )

    # === WHAT A PAYMENT OF THE ORDER PAYS === #

    def _mpesa_open_invoices(self):
        """The order's posted invoices still to pay, oldest due first: what a payment
        quoting the order settles first."""
        self.ensure_one()
        return self.invoice_ids.filtered_domain(OPEN_INVOICE_DOMAIN).sorted(
            lambda move: (move.invoice_date_due or move.date, move.id)
        )

    def _mpesa_invoices_to_pay(self, amount):
        """The open invoices ``amount`` paid on this order (in the order's currency)
        settles: the oldest ones, as many as it reaches."""
        invoices = self.env["account.move"]
        for invoice in self._mpesa_open_invoices():
            if self.currency_id.compare_amounts(amount, 0) <= 0:
                break
            invoices |= invoice
            amount -= invoice.amount_residual
        return invoices

    def _mpesa_amount_due(self):
        """What the order still asks. Before any invoice: its total less what its
        payments paid. Once invoiced: what its open invoices ask, and the part not
        invoiced yet less the order's payments no invoice took (a payment of another
        invoice, or by bank, paid the order without passing through it). Read as
        superuser: portal pages and emails print it."""
        self.ensure_one()
        order = self.sudo()
        invoiced = order.invoice_ids.filtered(
            lambda move: move.state == "posted" and move.is_sale_document()
        )
        if not invoiced:
            return order.amount_total - order.amount_paid
        asked = sum(order._mpesa_open_invoices().mapped("amount_residual"))
        asked += max(order.amount_total - order.amount_invoiced, 0.0)
        return order.currency_id.round(max(asked - order._mpesa_unapplied_paid(), 0.0))

    def _mpesa_unapplied_paid(self):
        """The money of the order's done payments that no invoice took yet, in the
        order's currency (an M-PESA payment is in KES, the order may not be): a
        payment not made yet (post-processing to come) counts whole."""
        left = 0.0
        for tx in self.transaction_ids.filtered(lambda tx: tx.state == "done"):
            payment = tx.payment_id
            if not payment:
                left += self._mpesa_in_order_currency(tx.amount, tx.currency_id)
            elif payment.state != "canceled":
                receivable = payment.move_id.line_ids.filtered(
                    lambda line: line.account_type == "asset_receivable"
                )
                left -= sum(map(self._mpesa_residual_in_order_currency, receivable))
        return left

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
