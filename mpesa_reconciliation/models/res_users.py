from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    mpesa_branch_ids = fields.Many2many(
        "mpesa.branch",
        "mpesa_branch_res_users_rel",
        "res_users_id",
        "mpesa_branch_id",
        string="M-PESA Branches",
        help="M-PESA users see the receipts of these branches (and their own).",
    )

    def write(self, vals):
        """Override of `base` to clear the rule cache: record rules read users' branches."""
        res = super().write(vals)
        if "mpesa_branch_ids" in vals:
            self.env.registry.clear_cache()  # record rules read users' branches
        return res
