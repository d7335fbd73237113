from odoo import models


class MpesaApiRequest(models.Model):
    _inherit = "mpesa.api.request"

    def _apply_reversal(self, result):
        """A refused reversal leaves its exception open, saying why."""
        res = super()._apply_reversal(result)
        if self.state == "failed":
            self.receipt_id.exception_ids.filtered(
                lambda e: e.state == "open"
            ).message_post(
                body=self.env._(
                    "M-PESA did not reverse the payment: %s", self.result_message
                )
            )
        return res
