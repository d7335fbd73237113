from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        """An order paid by M-PESA and invoiced afterwards: its invoice takes the
        payments. Odoo's ``sale`` links only payments still ``in_process``, but an
        M-PESA payment is matched with its bank line as soon as it exists (``paid``),
        while its receivable side still waits for the invoice."""
        posted = super()._post(soft)
        for invoice in posted.filtered(lambda move: move.is_sale_document()):
            payments = invoice.transaction_ids.filtered(
                lambda tx: tx.provider_code == "mpesa"
            ).payment_id.filtered(lambda pay: pay.state == "paid")
            open_lines = payments.move_id.line_ids.filtered(
                lambda line: (
                    line.account_type in ("asset_receivable", "liability_payable")
                    and not line.reconciled
                )
            )
            for line in open_lines:
                invoice.js_assign_outstanding_line(line.id)
        return posted
