from odoo import models
from odoo.exceptions import AccessError


class MpesaReceipt(models.Model):
    """The PDF receipt and its email are mpesa_payment's (one message per payment);
    here: its portal page and the button that sends it again."""

    _inherit = "mpesa.receipt"

    # === PORTAL === #

    def _mpesa_portal_url(self):
        self.ensure_one()
        return f"/my/mpesa/{self.id}/receipt"

    # === ISSUING === #

    def action_issue_receipt(self):
        """The button: send the receipt now, even when it was already sent."""
        if not self.env.user.has_group("mpesa_payment.group_mpesa_user"):
            raise AccessError(self.env._("Only M-PESA users can issue receipts."))
        self.check_access("read")
        issued = self._mpesa_issue_receipt(force=True)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Receipt sent"),
                "message": ", ".join(issued.mapped("receipt_sent_to")),
                "sticky": False,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
