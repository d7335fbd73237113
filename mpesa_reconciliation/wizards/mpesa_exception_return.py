from odoo import api, fields, models


class MpesaExceptionReturn(models.TransientModel):
    """Send an overpayment back to the customer's phone by B2C: what, to whom."""

    _name = "mpesa.exception.return"
    _description = "Return an M-PESA Overpayment"

    exception_id = fields.Many2one("mpesa.exception", required=True, readonly=True)
    currency_id = fields.Many2one(related="exception_id.currency_id")
    partner_id = fields.Many2one(
        "res.partner", compute="_compute_return", string="Customer"
    )
    document = fields.Char(compute="_compute_return", string="First Pays")
    amount_due = fields.Monetary(compute="_compute_return")
    amount = fields.Monetary(compute="_compute_return", string="Amount to Send")
    phone = fields.Char(compute="_compute_return", string="To Phone")

    @api.depends("exception_id")
    def _compute_return(self):
        for wizard in self:
            exc = wizard.exception_id
            receipt = exc.receipt_id.sudo()
            tx = receipt.transaction_id
            document, due, rest = exc._mpesa_overpayment_split()
            wizard.partner_id = exc.partner_id or receipt.partner_id
            wizard.document = document.display_name if due else False
            wizard.amount_due = due
            wizard.amount = rest
            wizard.phone = (
                receipt.phone if receipt.phone_kind == "plain" else tx.mpesa_phone
            )

    def action_confirm(self):
        self.ensure_one()
        self.exception_id.check_access("write")
        self.exception_id.sudo()._mpesa_return_overpayment()
        return {"type": "ir.actions.act_window_close"}
