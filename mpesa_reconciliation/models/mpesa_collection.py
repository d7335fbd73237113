from odoo import api, fields, models


class MpesaCollection(models.Model):
    _inherit = "mpesa.collection"

    branch_id = fields.Many2one(
        "mpesa.branch",
        compute="_compute_branch_id",
        store=True,
        index="btree_not_null",
        help="The branch of the requester's sales team, else the requester's own "
        "branch when they belong to one only. M-PESA users see their branches' "
        "requests.",
    )

    @api.depends("team_id", "user_id")
    def _compute_branch_id(self):
        for collection in self:
            branches = collection.user_id.mpesa_branch_ids
            collection.branch_id = collection.team_id.mpesa_branch_id or (
                branches if len(branches) == 1 else False
            )
