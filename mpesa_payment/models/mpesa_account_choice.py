from odoo import api, fields, models
from odoo.exceptions import UserError


class MpesaAccountChoice(models.AbstractModel):
    """The M-PESA account a staff form works with, chosen among the accounts of the
    user's companies. Only administrators read payment providers (core's rule), so a
    Many2one dropdown cannot open for staff: they choose by label, as core's payment
    link wizard did (payment_provider_selection, Odoo 17). A form or an RPC call may
    still name any provider: ``_mpesa_chosen_provider`` checks its company before
    the provider is used as superuser."""

    _name = "mpesa.account.choice.mixin"
    _description = "Choice of an M-PESA Account"

    provider_id = fields.Many2one(
        "payment.provider",
        string="M-PESA Account",
        required=True,
        domain=[("code", "=", "mpesa")],
        default=lambda self: self._default_provider(),
    )
    provider_choice = fields.Selection(
        selection="_selection_provider_choice",
        string="M-PESA Account",
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

    def _mpesa_chosen_provider(self):
        """The chosen M-PESA account, as superuser (staff may not read providers),
        once it is known to belong to one of the companies the user works in."""
        self.ensure_one()
        provider = self.provider_id.sudo()
        if provider.company_id not in self.env.companies:
            raise UserError(
                self.env._(
                    "You cannot use the M-PESA account %(account)s: it belongs to "
                    "another company (%(company)s). Choose an account of the company "
                    "you work in.",
                    account=provider._mpesa_shortcode_label(),
                    company=provider.company_id.name,
                )
            )
        return provider
