from odoo import fields, models


class MpesaBranch(models.Model):
    """Where money was taken (shop, office): M-PESA users see their branches' records."""

    _name = "mpesa.branch"
    _description = "M-PESA Branch"
    _order = "name"

    name = fields.Char(required=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    active = fields.Boolean(default=True)
