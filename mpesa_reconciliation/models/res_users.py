from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    mpesa_branch_ids = fields.Many2many(
        "mpesa.branch",
        string="M-PESA Branches",
        help="M-PESA users see the receipts of these branches (and their own).",
    )
