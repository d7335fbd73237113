from odoo import models


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    def _mpesa_send_receipt_email(self):
        """One email per payment: when the PDF receipt already went out (issued as the
        receipt was applied), skip mpesa_payment's plain "payment received" email."""
        issued = (
            self.env["mpesa.receipt"]
            .sudo()
            .search_count(
                [
                    ("transaction_id", "=", self.id),
                    ("receipt_issued_on", "!=", False),
                ]
            )
        )
        if issued:
            return None
        return super()._mpesa_send_receipt_email()
