from odoo import api, fields, models


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
    user_ids = fields.Many2many(
        "res.users",
        "mpesa_branch_res_users_rel",
        "mpesa_branch_id",
        "res_users_id",
        string="Members",
        domain=[("share", "=", False)],
        help="The staff of this branch: as M-PESA users they see its payments.",
    )
    team_ids = fields.Many2many(
        "crm.team",
        string="Sales Teams",
        compute="_compute_team_ids",
        inverse="_inverse_team_ids",
        help="The sales teams selling for this branch: payments of their invoices and "
        "orders belong to it.",
    )

    def _compute_team_ids(self):
        teams = self.env["crm.team"].search([("mpesa_branch_id", "in", self.ids)])
        for branch in self:
            branch.team_ids = teams.filtered(lambda t, b=branch: t.mpesa_branch_id == b)

    def _inverse_team_ids(self):
        # Only M-PESA managers write branches (access rights); a team's branch is
        # theirs to set, though they may not manage sales teams.
        Team = self.env["crm.team"].sudo()
        for branch in self:
            branch.team_ids.check_access("read")  # teams of the manager's companies
            Team.search(
                [
                    ("mpesa_branch_id", "=", branch.id),
                    ("id", "not in", branch.team_ids.ids),
                ]
            ).mpesa_branch_id = False
            branch.team_ids.sudo().filtered(
                lambda t, b=branch: t.mpesa_branch_id != b
            ).mpesa_branch_id = branch

    @api.model_create_multi
    def create(self, vals_list):
        """Override of the ORM to clear the rule cache: record rules read users' branches."""
        branches = super().create(vals_list)
        if any(vals.get("user_ids") for vals in vals_list):
            self.env.registry.clear_cache()  # record rules read users' branches
        return branches

    def write(self, vals):
        """Override of the ORM to clear the rule cache: record rules read users' branches."""
        res = super().write(vals)
        if {"user_ids", "active"} & set(vals):
            self.env.registry.clear_cache()  # record rules read users' branches
        return res


# The branch of a shortcode lives with the branches (payment_provider.py holds the Pull
# API's fields).
class PaymentProvider(models.Model):
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    mpesa_branch_id = fields.Many2one(
        "mpesa.branch",
        string="M-PESA Branch",
        help="The branch this shortcode or till takes money for (a shop's till): its "
        "payments belong to that branch, unless what they pay is sold by a sales team "
        "of a branch.",
    )
