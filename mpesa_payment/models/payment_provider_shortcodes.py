from odoo import api, models


class PaymentProvider(models.Model):
    """Several M-PESA shortcodes per company: a paybill and a till are two providers
    (code ``mpesa``), each with its own bank journal. The one lookup of a company's
    M-PESA providers, used wherever an M-PESA account must be found or listed."""

    # One file per feature: the Daraja fields and flows live in payment_provider.py.
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    def copy_data(self, default=None):
        """A second shortcode is added by duplicating the M-PESA provider (Odoo lists
        no New provider). A copy in the same company is named apart: its payment
        method line takes the provider's name, and core refuses two lines of one name
        on a journal, so the copy could not be enabled on the original's journal (the
        default one). Copies for a new company (core's) keep the name."""
        vals_list = super().copy_data(default=default)
        default = default or {}
        if "name" in default:
            return vals_list
        return [
            {**vals, "name": self.env._("%s (copy)", provider.name)}
            if provider.code == "mpesa"
            and default.get("company_id", provider.company_id.id)
            == provider.company_id.id
            else vals
            for provider, vals in zip(self, vals_list, strict=True)
        ]

    @api.model
    def _mpesa_providers(self, companies=None, active=True):
        """The M-PESA providers of ``companies`` (default: the user's companies), in
        the order of the payment form: when a company has several, the checkout and
        the staff's payment requests take the first (set the order with Sequence).
        ``active``: only those taking payments (enabled or test mode). As superuser:
        the caller decides what the user may see of them."""
        companies = self.env.companies if companies is None else companies
        domain = [("code", "=", "mpesa"), ("company_id", "in", companies.ids)]
        if active:
            domain.append(("state", "in", ("enabled", "test")))
        return self.sudo().search(domain)

    @api.model
    def _mpesa_paybill_provider(self, company):
        """The paybill customers pay ``company`` to with an account number, as printed
        on invoices and reminders. A till (Buy Goods) takes no account number, so it
        is never the one printed: its payments cannot name the invoice."""
        return self._mpesa_providers(company).filtered(
            lambda p: p.mpesa_shortcode_type != "till"
        )[:1]

    def _mpesa_shortcode_label(self):
        """How finance knows this shortcode: 'Paybill 174379' or 'Till 5123456'
        (the till number the customer types, not the store number Daraja uses)."""
        self.ensure_one()
        sudo = self.sudo()
        if sudo.mpesa_shortcode_type == "till":
            return self.env._("Till %s", sudo.mpesa_till_number or sudo.mpesa_shortcode)
        return self.env._("Paybill %s", sudo.mpesa_shortcode)
