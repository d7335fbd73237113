from odoo import models


class AccountReconcileModel(models.Model):
    _inherit = "account.reconcile.model"

    def _apply_rules(self, st_line, partner):
        """No rule proposes, nor reconciles by itself, an invoice for an M-PESA line:
        its money is applied through the receipt (a payment), and a rule matching the
        line with the invoice would credit the receivable a second time. OCA applies
        the rules both on create and whenever the reconciliation screen computes its
        default data; our ranked suggestions take their place."""
        if st_line.mpesa_receipt_id:
            return {}
        return super()._apply_rules(st_line, partner)
