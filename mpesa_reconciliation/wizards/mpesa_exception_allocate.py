from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_compare

from odoo.addons.mpesa_payment.amounts import shillings
from odoo.addons.mpesa_payment.models.account_move import OPEN_INVOICE_DOMAIN


class MpesaExceptionAllocate(models.TransientModel):
    """Apply one M-PESA payment to one or several invoices (split)."""

    _name = "mpesa.exception.allocate"
    _description = "Allocate an M-PESA Payment"

    exception_id = fields.Many2one("mpesa.exception", required=True)
    currency_id = fields.Many2one(related="exception_id.currency_id")
    amount = fields.Monetary(related="exception_id.amount")
    partner_id = fields.Many2one("res.partner", string="Customer")
    line_ids = fields.One2many("mpesa.exception.allocate.line", "wizard_id")
    allocated = fields.Monetary(compute="_compute_allocated")

    @api.model
    def default_get(self, fields_list):
        """Override of the ORM to propose the customer's open invoices, each taking
        what is left of the payment: first the invoice the payment was for, then the
        others, oldest due first."""
        values = super().default_get(fields_list)
        exc = self.env["mpesa.exception"].browse(values.get("exception_id"))
        partner = exc.partner_id or exc.receipt_id.partner_id
        values["partner_id"] = partner.id
        if partner and "line_ids" in fields_list:
            invoices = self.env["account.move"].search(
                [
                    ("commercial_partner_id", "=", partner.commercial_partner_id.id),
                    ("company_id", "=", exc.company_id.id),
                    *OPEN_INVOICE_DOMAIN,
                ],
                order="invoice_date_due, id",
            )
            meant = invoices & self._invoices_meant(exc.receipt_id.sudo())
            invoices = meant + (invoices - meant)
            left = exc.receipt_id._mpesa_left()
            Receipt = self.env["mpesa.receipt"]
            lines = []
            for invoice in invoices:
                take = min(left, Receipt._in_kes(invoice, invoice.amount_residual))
                lines.append(Command.create({"invoice_id": invoice.id, "amount": take}))
                left -= take
            values["line_ids"] = lines
        return values

    @api.model
    def _invoices_meant(self, receipt):
        """The invoices a payment was for: its payment request's, or the invoice its
        account number names."""
        named = receipt.review_document
        if not named or named._name != "account.move":
            named = self.env["account.move"]
        return receipt.transaction_id.invoice_ids | named

    @api.depends("line_ids.amount")
    def _compute_allocated(self):
        for wizard in self:
            wizard.allocated = sum(wizard.line_ids.mapped("amount"))

    def action_allocate(self):
        self.ensure_one()
        exc = self.exception_id
        exc._check_open()
        receipt = exc.receipt_id
        lines = self.line_ids.filtered(lambda line: line.amount > 0)
        if not lines:
            raise UserError(self.env._("Allocate the payment to at least one invoice."))
        left = receipt._mpesa_left()
        if float_compare(self.allocated, left, precision_digits=2) > 0:
            raise UserError(
                self.env._(
                    "You allocated KES %(alloc)s but only KES %(left)s of this payment "
                    "is left to apply.",
                    alloc=shillings(self.allocated),
                    left=shillings(left),
                )
            )
        receipt._mpesa_release_push(self.env._("Settled by finance: allocated."))
        for line in lines:
            receipt._mpesa_apply(line.invoice_id, line.amount)
        left = receipt._mpesa_left()
        if left:
            receipt._mpesa_apply(self.partner_id or lines[0].invoice_id.partner_id)
        receipt.application_ids.filtered(
            lambda tx: not tx.is_post_processed
        )._post_process()
        receipt._mpesa_reconcile_with_payment()
        exc._resolve(
            "allocated",
            self.env._(
                "Allocated: %s",
                ", ".join(
                    line.invoice_id.name + " KES " + shillings(line.amount)
                    for line in lines
                )
                + (self.env._(", rest kept as credit") if left > 0.005 else ""),
            ),
        )
        return {"type": "ir.actions.act_window_close"}


class MpesaExceptionAllocateLine(models.TransientModel):
    _name = "mpesa.exception.allocate.line"
    _description = "M-PESA Allocation Line"
    _check_company_auto = True

    wizard_id = fields.Many2one(
        "mpesa.exception.allocate", required=True, ondelete="cascade"
    )
    # The receipt's company: its money pays none of another company's invoices.
    company_id = fields.Many2one(related="wizard_id.exception_id.company_id")
    invoice_id = fields.Many2one(
        "account.move",
        required=True,
        domain=OPEN_INVOICE_DOMAIN,
        check_company=True,
    )
    currency_id = fields.Many2one(related="wizard_id.currency_id")
    # In the payment's KES, whatever the invoice's currency.
    amount_residual = fields.Monetary(
        string="Amount Due", compute="_compute_amount_residual"
    )
    amount = fields.Monetary()

    @api.depends("invoice_id.amount_residual")
    def _compute_amount_residual(self):
        Receipt = self.env["mpesa.receipt"]
        for line in self:
            invoice = line.invoice_id
            line.amount_residual = (
                Receipt._in_kes(invoice, invoice.amount_residual) if invoice else 0.0
            )


class MpesaExceptionDismiss(models.TransientModel):
    _name = "mpesa.exception.dismiss"
    _description = "Dismiss an M-PESA Exception"

    exception_id = fields.Many2one("mpesa.exception", required=True)
    reason = fields.Text(required=True)

    def action_dismiss(self):
        self.exception_id.with_context(dismiss_reason=self.reason).action_dismiss()
        return {"type": "ir.actions.act_window_close"}
