from odoo import api, fields, models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    mpesa_branch_id = fields.Many2one(
        "mpesa.branch",
        string="M-PESA Branch",
        index="btree_not_null",
        help="The branch (shop, office) this team sells for: M-PESA payments of its "
        "invoices and orders belong to that branch.",
    )

    # mpesa.branch.team_ids is computed from this field: recomputed when it changes.

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `sales_team` to refresh the branches' departments (a computed
        many2many the cache would keep stale)."""
        teams = super().create(vals_list)
        if any(vals.get("mpesa_branch_id") for vals in vals_list):
            self.env["mpesa.branch"].invalidate_model(["team_ids"])
        return teams

    def write(self, vals):
        """Override of `sales_team` to refresh the branches' departments (a computed
        many2many the cache would keep stale)."""
        res = super().write(vals)
        if "mpesa_branch_id" in vals:
            self.env["mpesa.branch"].invalidate_model(["team_ids"])
        return res


class CrmTeamMember(models.Model):
    _inherit = "crm.team.member"

    # M-PESA users see their sales team's receipts: the record rule reads the user's
    # team, and record rules are cached per user.

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `sales_team` to clear the rule cache: record rules read users'
        departments."""
        members = super().create(vals_list)
        self.env.registry.clear_cache()
        return members

    def write(self, vals):
        """Override of `sales_team` to clear the rule cache: record rules read users'
        departments."""
        res = super().write(vals)
        if {"user_id", "crm_team_id", "active"} & set(vals):
            self.env.registry.clear_cache()
        return res

    def unlink(self):
        """Override of `sales_team` to clear the rule cache: record rules read users'
        departments."""
        res = super().unlink()
        self.env.registry.clear_cache()
        return res
