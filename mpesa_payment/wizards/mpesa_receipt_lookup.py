from odoo import api, fields, models
from odoo.exceptions import AccessError


class MpesaReceiptLookup(models.TransientModel):
    """'I paid, here is my code': find the receipt, or ask M-PESA about it."""

    _name = "mpesa.receipt.lookup"
    _description = "Look Up an M-PESA Receipt"

    code = fields.Char(string="Receipt Code", required=True)
    provider_id = fields.Many2one(
        "payment.provider",
        string="M-PESA Account",
        required=True,
        domain=[("code", "=", "mpesa")],
        default=lambda self: self._default_provider(),
    )

    @api.model
    def _default_provider(self):
        return self.env["payment.provider"]._mpesa_providers(active=False)[:1].id

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
        # The form's provider domain is only the form's: the credentials used must be
        # those of one of the user's own companies.
        if self.provider_id.company_id not in self.env.user.company_ids:
            raise AccessError(
                self.env._("You cannot use the M-PESA account of another company.")
            )
        # Not in our books: ask Safaricom (sudo: the request uses admin-only credentials).
        request = (
            self.env["mpesa.api.request"].sudo()._send(self.provider_id, "status", code)
        )
        return request.with_env(self.env)._action_open()
