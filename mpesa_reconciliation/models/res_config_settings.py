from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    mpesa_auto_threshold = fields.Float(
        string="M-PESA Auto-Reconcile Confidence",
        config_parameter="mpesa_reconciliation.auto_threshold",
        default=90.0,
        help="Statement lines whose best suggestion scores at least this much (out of "
        "100), clearly ahead of the next one, are reconciled without a person.",
    )
