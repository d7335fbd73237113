from odoo import fields, models

from ..kenya_time import kenya_today

# Customer invoices still waiting for money: what a payment can settle.
OPEN_INVOICE_DOMAIN = [
    ("move_type", "=", "out_invoice"),
    ("state", "=", "posted"),
    ("payment_state", "in", ("not_paid", "partial")),
]


class AccountMove(models.Model):
    _name = "account.move"
    _inherit = ["account.move", "mpesa.payable.mixin"]

    mpesa_reminder_sent = fields.Date(readonly=True, copy=False)
    mpesa_overdue_notice_sent = fields.Date(readonly=True, copy=False)

    def _mpesa_payable(self):
        """Only a posted customer invoice prints how to pay by M-PESA."""
        return self.move_type == "out_invoice" and self.state == "posted"

    def _mpesa_paybill(self):
        """The paybill to print on this invoice's reminders, with its number as the
        account number (never a till: Buy Goods takes no account number)."""
        self.ensure_one()
        provider = self.env["payment.provider"]._mpesa_paybill_provider(self.company_id)
        return provider.mpesa_shortcode or ""

    def _mpesa_send_reminder(self, template_xmlid):
        template = self.env.ref(template_xmlid)
        field = (
            "mpesa_overdue_notice_sent"
            if template_xmlid.endswith("overdue")
            else "mpesa_reminder_sent"
        )
        for invoice in self.filtered(lambda i: i.partner_id.email):
            invoice.message_post_with_source(
                template,
                subtype_xmlid="mail.mt_comment",
                partner_ids=invoice.partner_id.ids,
            )
            invoice[field] = kenya_today()
