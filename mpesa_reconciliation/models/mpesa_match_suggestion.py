from odoo import api, fields, models
from odoo.exceptions import UserError


class MpesaMatchSuggestion(models.Model):
    """A ranked candidate for an M-PESA statement line, with the reasons for it."""

    _name = "mpesa.match.suggestion"
    _description = "M-PESA Match Suggestion"
    _order = "statement_line_id, sequence, id"

    statement_line_id = fields.Many2one(
        "account.bank.statement.line", required=True, ondelete="cascade", index=True
    )
    receipt_id = fields.Many2one(related="statement_line_id.mpesa_receipt_id")
    sequence = fields.Integer(string="Rank")
    res_model = fields.Selection(
        [("account.move", "Invoice"), ("sale.order", "Sales Order")],
        string="Document Type",
        required=True,
    )
    res_id = fields.Integer(required=True)
    name = fields.Char(string="Document", required=True)
    # What the accountant compares before accepting, read from the document now:
    # whose it is and what it still asks.
    partner_id = fields.Many2one(
        "res.partner", string="Customer", compute="_compute_document_figures"
    )
    currency_id = fields.Many2one(related="statement_line_id.currency_id")
    amount_due = fields.Monetary(string="Due", compute="_compute_document_figures")
    score = fields.Float(digits=(5, 1))
    reasons = fields.Char()
    amount_match = fields.Selection(
        [
            ("exact", "Exact"),
            ("within_tolerance", "Within Tolerance"),
            ("partial", "Partial"),
            ("over", "Over"),
            ("none", "None"),
        ]
    )

    @api.depends("name", "score")
    def _compute_display_name(self):
        """Override of the ORM to show the score beside the document's name."""
        for s in self:
            s.display_name = f"{s.name} ({s.score:.0f}%)"

    @api.depends("res_model", "res_id")
    def _compute_document_figures(self):
        receipts = self.env["mpesa.receipt"]
        # sudo: an accountant may rank an order without reading sales
        documents = self.sudo()._targets()
        for suggestion in self:
            document = documents.get((suggestion.res_model, suggestion.res_id))
            suggestion.partner_id = (
                document.partner_id.commercial_partner_id if document else False
            )
            suggestion.amount_due = (
                (receipts._amount_due(document) or 0.0) if document else 0.0
            )

    def _targets(self):
        """Each suggestion's document that still exists, by (model, id): one query a
        model for a whole list of suggestions, not one a row."""
        documents = {}
        for model, suggestions in self.grouped("res_model").items():
            existing = self.env[model].browse(suggestions.mapped("res_id")).exists()
            documents.update({(model, document.id): document for document in existing})
        return documents

    def _target(self):
        self.ensure_one()
        return self.env[self.res_model].browse(self.res_id).exists()

    def _accept(self):
        """Apply the receipt to the document, then reconcile the statement line."""
        self.ensure_one()
        line = self.statement_line_id
        receipt = line.mpesa_receipt_id
        target = self._target()
        if not target or line.is_reconciled:
            return False
        if receipt._mpesa_left():
            receipt._mpesa_release_push(
                self.env._("Settled by finance: matched to %s.", self.name)
            )
            receipt._mpesa_apply(target)
        receipt.application_ids.filtered(
            lambda tx: not tx.is_post_processed
        )._post_process()
        receipt._mpesa_reconcile_with_payment()
        for exception in receipt.exception_ids.filtered(lambda e: e.state == "open"):
            exception._resolve(
                "allocated",
                self.env._(
                    "Matched to %(doc)s from a suggestion (%(reasons)s).",
                    doc=self.name,
                    reasons=self.reasons,
                ),
            )
        return line.is_reconciled

    def action_accept(self):
        self.ensure_one()
        if not self._accept():
            raise UserError(
                self.env._(
                    "%s could not be reconciled: the statement line or the document changed. "
                    "Refresh the suggestions.",
                    self.name,
                )
            )
        return {"type": "ir.actions.client", "tag": "soft_reload"}
