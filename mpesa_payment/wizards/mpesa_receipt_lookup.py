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

    # Only administrators read payment providers (core's rule): staff choose among
    # their companies' M-PESA accounts by label, as core's payment link wizard did
    # (payment_provider_selection, Odoo 17).
    provider_choice = fields.Selection(
        selection="_selection_provider_choice",
        string="Paid To",
        compute="_compute_provider_choice",
        inverse="_inverse_provider_choice",
    )

    @api.model
    def _default_provider(self):
        return self.env["payment.provider"]._mpesa_providers(active=False)[:1].id

    @api.model
    def _selection_provider_choice(self):
        providers = self.env["payment.provider"]._mpesa_providers(active=False)
        return [
            (str(p.id), f"{p._mpesa_shortcode_label()} ({p.name})") for p in providers
        ]

    @api.depends("provider_id")
    def _compute_provider_choice(self):
        for wizard in self:
            wizard.provider_choice = str(wizard.provider_id.id or "") or False

    def _inverse_provider_choice(self):
        for wizard in self.filtered("provider_choice"):
            wizard.provider_id = int(wizard.provider_choice)

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
        # sudo: staff may not read providers. The choices offered are only the form's:
        # the credentials used must be those of one of the user's own companies.
        provider = self.provider_id.sudo()
        if provider.company_id not in self.env.user.company_ids:
            raise AccessError(
                self.env._("You cannot use the M-PESA account of another company.")
            )
        # Not in our books: ask Safaricom (sudo: the request uses admin-only credentials).
        request = self.env["mpesa.api.request"].sudo()._send(provider, "status", code)
        return request.with_env(self.env)._action_open()
