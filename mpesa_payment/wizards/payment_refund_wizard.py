from odoo import api, fields, models

from ..amounts import shillings


class PaymentRefundWizard(models.TransientModel):
    """The refund wizard of an M-PESA payment is its confirmation step: it says how
    the money goes back (reversal or B2C), how much and to which phone, and which
    credit note the refund pays."""

    _inherit = "payment.refund.wizard"

    provider_code = fields.Selection(related="transaction_id.provider_code")
    mpesa_refund_method = fields.Selection(
        [("reversal", "Reversal"), ("b2c", "B2C Payment")],
        string="Sent By",
        compute="_compute_mpesa_refund",
    )
    mpesa_refund_phone = fields.Char(string="To Phone", compute="_compute_mpesa_refund")
    mpesa_refund_summary = fields.Char(
        string="M-PESA Will", compute="_compute_mpesa_refund"
    )
    mpesa_credit_note_id = fields.Many2one(
        "account.move",
        string="Credit Note",
        compute="_compute_mpesa_credit_note_id",
        store=True,
        readonly=False,
        domain="[('move_type', '=', 'out_refund'), ('state', '=', 'posted'),"
        " ('payment_state', 'in', ('not_paid', 'partial')),"
        " ('commercial_partner_id', '=', mpesa_partner_id)]",
        help="The credit note this refund pays: its outgoing payment is reconciled "
        "with it. Empty: the refund is booked on the customer's account.",
    )
    mpesa_partner_id = fields.Many2one(
        "res.partner", related="transaction_id.partner_id.commercial_partner_id"
    )

    @api.depends("transaction_id", "amount_to_refund")
    def _compute_mpesa_refund(self):
        for wizard in self:
            tx = wizard.transaction_id.sudo()
            if tx.provider_code != "mpesa" or wizard.amount_to_refund <= 0:
                wizard.update(
                    {
                        "mpesa_refund_method": False,
                        "mpesa_refund_phone": False,
                        "mpesa_refund_summary": False,
                    }
                )
                continue
            method = tx._mpesa_refund_method_for(wizard.amount_to_refund)
            phone = tx._mpesa_refund_phone() if method == "b2c" else False
            amount = f"KES {shillings(wizard.amount_to_refund)}"
            if method == "reversal":
                summary = self.env._(
                    "Reverse the whole payment: %s back to the phone that paid.", amount
                )
            elif phone:
                summary = self.env._(
                    "Send %(amount)s by B2C to %(phone)s.", amount=amount, phone=phone
                )
            else:
                summary = self.env._(
                    "Nothing: the payer's phone is masked, only a full refund "
                    "(reversal) is possible."
                )
            wizard.update(
                {
                    "mpesa_refund_method": method,
                    "mpesa_refund_phone": phone,
                    "mpesa_refund_summary": summary,
                }
            )

    @api.depends("transaction_id")
    def _compute_mpesa_credit_note_id(self):
        for wizard in self:
            invoices = wizard.transaction_id.sudo().invoice_ids
            wizard.mpesa_credit_note_id = (
                self.env["account.move"].search(
                    [
                        ("move_type", "=", "out_refund"),
                        ("state", "=", "posted"),
                        ("payment_state", "in", ("not_paid", "partial")),
                        ("reversed_entry_id", "in", invoices.ids),
                    ],
                    limit=1,
                )
                if invoices
                else False
            )

    def action_refund(self):
        """Override of `payment` to pass the credit note chosen in the wizard to M-PESA
        refunds (the refund transaction pays it); others as core does."""
        mpesa = self.filtered(lambda w: w.provider_code == "mpesa")
        for wizard in mpesa:
            wizard.transaction_id.with_context(
                mpesa_refund_credit_note_ids=wizard.mpesa_credit_note_id.ids
            ).action_refund(amount_to_refund=wizard.amount_to_refund)
        return super(PaymentRefundWizard, self - mpesa).action_refund()
