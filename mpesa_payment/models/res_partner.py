from odoo import api, fields, models

from ..daraja.phone import PhoneError, normalize_msisdn
from ..references import msisdn_hash, normalize_reference
from .field_helpers import account_number_field


class ResPartner(models.Model):
    _inherit = "res.partner"

    mpesa_account_ref = account_number_field(
        help="What this customer types as the account number when paying the paybill. "
        "Print it on invoices and statements.",
    )
    mpesa_msisdn = fields.Char(
        string="M-PESA Number",
        compute="_compute_mpesa_msisdn",
        store=True,
        index=True,
        help="The mobile or phone number in M-PESA's 2547XXXXXXXX form.",
    )
    mpesa_msisdn_hash = fields.Char(
        compute="_compute_mpesa_msisdn", store=True, index=True
    )

    _sql_constraints = [
        (
            "mpesa_account_ref_unique",
            "UNIQUE(mpesa_account_ref)",
            "This M-PESA account number is already given to another customer.",
        ),
    ]

    @api.depends("mobile", "phone")
    def _compute_mpesa_msisdn(self):
        for partner in self:
            msisdn = False
            for number in (partner.mobile, partner.phone):
                try:
                    msisdn = normalize_msisdn(number) if number else False
                except PhoneError:
                    continue
                if msisdn:
                    break
            partner.mpesa_msisdn = msisdn
            partner.mpesa_msisdn_hash = msisdn_hash(msisdn)

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `base` to store the M-PESA account number normalised, as
        customer-typed references are compared."""
        for vals in vals_list:
            if vals.get("mpesa_account_ref"):
                vals["mpesa_account_ref"] = normalize_reference(
                    vals["mpesa_account_ref"]
                )
        return super().create(vals_list)

    def write(self, vals):
        """Override of `base` to store the M-PESA account number normalised, as
        customer-typed references are compared."""
        if vals.get("mpesa_account_ref"):
            vals["mpesa_account_ref"] = normalize_reference(vals["mpesa_account_ref"])
        return super().write(vals)

    def action_mpesa_generate_account_ref(self):
        for partner in self.filtered(lambda p: not p.mpesa_account_ref):
            partner.mpesa_account_ref = f"C{partner.id:05d}"
        return True
