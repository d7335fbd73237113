from odoo import fields, models


class MpesaReceiptLookup(models.TransientModel):
    """'I paid, here is my code': find the receipt, or ask M-PESA about it."""

    _name = "mpesa.receipt.lookup"
    _inherit = ["mpesa.account.choice.mixin"]
    _description = "Look Up an M-PESA Receipt"

    code = fields.Char(string="Receipt Code", required=True)
    provider_choice = fields.Selection(string="Paid To")

    def action_lookup(self):
        self.ensure_one()
        code = self.code.strip().upper()
        receipt = self.env["mpesa.receipt"].search([("name", "=", code)], limit=1)
        if receipt:
            return {
                "type": "ir.actions.act_window",
                "res_model": "mpesa.receipt",
                "res_id": receipt.id,
                "view_mode": "form",
            }
        # The credentials used must be those of one of the user's own companies.
        provider = self._mpesa_chosen_provider()
        # Not in our books: ask Safaricom (sudo: the request uses admin-only credentials).
        request = self.env["mpesa.api.request"].sudo()._send(provider, "status", code)
        return request.with_env(self.env)._action_open()
