from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.mpesa_payment.amounts import shillings

KINDS = [
    ("underpaid", "Underpaid"),
    ("overpaid", "Overpaid"),
    ("other_phone", "Paid From Another Phone"),
    ("no_reference", "Reference Missing"),
    ("unknown_reference", "Reference Unknown"),
    ("slip", "Reference of Another Customer"),
    ("ambiguous", "Reference Matches Several"),
    ("duplicate", "Duplicate Payment"),
    ("not_applied", "Received, Document Not Updated"),
    ("review", "Awaiting Review"),
    ("claim", "Customer Claims Payment"),
]
RESOLUTIONS = [
    ("allocated", "Allocated"),
    ("credit", "Kept as Customer Credit"),
    ("reversed", "Refunded / Reversed"),
    ("duplicate", "Marked Duplicate"),
    ("dismissed", "Dismissed"),
]
# Fields the resolution itself writes; anything else is frozen once resolved.
RESOLUTION_FIELDS = {
    "state",
    "resolution",
    "resolution_note",
    "resolved_by",
    "resolved_on",
}
# Written only by the code that opens an exception and by its actions (as superuser,
# once the caller's right to write it was checked): readonly in the form is not
# enough against RPC writes. A person chooses the customer (partner_id). The stored
# name, salesperson and branch follow the receipt (written, they would show the
# exception to another branch's users: their record rule reads them).
ACTION_FIELDS = RESOLUTION_FIELDS | {
    "kind",
    "receipt_id",
    "company_id",
    "refund_transaction_id",
    "name",
    "user_id",
    "branch_id",
}


class MpesaException(models.Model):
    """Money finance must decide on: everything needed to decide, and the actions."""

    _name = "mpesa.exception"
    _description = "M-PESA Exception"
    _inherit = ["mail.thread"]
    _order = "state, create_date desc, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    kind = fields.Selection(KINDS, required=True, readonly=True, tracking=True)
    state = fields.Selection(
        [("open", "Open"), ("resolved", "Resolved")],
        default="open",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
    )
    receipt_id = fields.Many2one(
        "mpesa.receipt", ondelete="restrict", readonly=True, index=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(related="receipt_id.currency_id")
    amount = fields.Monetary(related="receipt_id.amount", string="Amount Paid")
    expected_amount = fields.Monetary(related="receipt_id.expected_amount")
    difference = fields.Monetary(compute="_compute_difference")
    receipt_code = fields.Char(related="receipt_id.name", string="Receipt Code")
    phone = fields.Char(related="receipt_id.phone")
    customer_name = fields.Char(related="receipt_id.customer_name")
    reference = fields.Char(related="receipt_id.reference")
    review_document = fields.Reference(related="receipt_id.review_document")
    suggestion_ids = fields.One2many(
        related="receipt_id.suggestion_ids", string="Suggested Matches"
    )
    paid_at = fields.Datetime(related="receipt_id.paid_at")
    partner_id = fields.Many2one("res.partner", tracking=True)
    suggested_partner_id = fields.Many2one(
        related="receipt_id.suggested_partner_id",
        help="The one customer whose phone number is the payer's: a hint to check, "
        "never applied by itself (anybody can type any phone on their account).",
    )
    transaction_id = fields.Many2one(related="receipt_id.transaction_id")
    reason = fields.Char(help="Why the money could not be applied by itself.")
    claim_code = fields.Char(help="The receipt code a customer quoted.")
    user_id = fields.Many2one(related="receipt_id.user_id", store=True)
    branch_id = fields.Many2one(related="receipt_id.branch_id", store=True)
    age_days = fields.Integer(compute="_compute_age")
    resolution = fields.Selection(RESOLUTIONS, readonly=True, tracking=True)
    resolution_note = fields.Text(readonly=True)
    resolved_by = fields.Many2one("res.users", readonly=True)
    resolved_on = fields.Datetime(readonly=True)

    @api.depends("kind", "receipt_id.name", "claim_code")
    def _compute_name(self):
        labels = dict(KINDS)
        for exc in self:
            exc.name = (
                f"{labels.get(exc.kind)}: {exc.receipt_id.name or exc.claim_code or ''}"
            )

    @api.depends("amount", "expected_amount")
    def _compute_difference(self):
        for exc in self:
            exc.difference = exc.amount - exc.expected_amount

    def _compute_age(self):
        now = fields.Datetime.now()
        for exc in self:
            exc.age_days = (now - exc.create_date).days if exc.create_date else 0

    def write(self, vals):
        """Override of the ORM: what the actions decide (the resolution, the money it
        is about) changes only through them, whatever the role; and a resolved
        exception stays as it was resolved: only its resolution (and reopening) may
        change it."""
        decided = ACTION_FIELDS.intersection(vals)
        if decided and not self.env.su:
            raise AccessError(
                self.env._(
                    "An M-PESA exception's %s change only through its actions.",
                    ", ".join(sorted(decided)),
                )
            )
        frozen = set(vals) - RESOLUTION_FIELDS - {"message_main_attachment_id"}
        if frozen and self.filtered(lambda e: e.state != "open"):
            raise UserError(
                self.env._(
                    "A resolved exception cannot be changed. Reopen it first: the "
                    "reopening is logged."
                )
            )
        return super().write(vals)

    @api.model
    def _open_for_receipt(self, receipt, kind=None, reason=None):
        """Open (once) the exception describing why ``receipt`` waits for a person."""
        open_ = self.search([("receipt_id", "=", receipt.id), ("state", "=", "open")])
        if open_:
            return open_
        kind = kind or self._classify(receipt)
        return self.create(
            {
                "kind": kind,
                "receipt_id": receipt.id,
                "company_id": receipt.company_id.id,
                "partner_id": receipt.partner_id.id,
                "reason": reason or receipt.review_reason,
            }
        )

    @api.model
    def _classify(self, receipt):
        tx = receipt.transaction_id
        if tx and tx.mpesa_needs_review:
            if receipt.amount < tx.amount:
                return "underpaid"
            if receipt.amount > tx.amount:
                return "overpaid"
            return "review"
        if receipt.channel == "query":
            return "claim"
        ref = (receipt.reference or "").strip()
        if not ref:
            return "no_reference"
        if receipt.review_cause in ("ambiguous", "duplicate", "overpaid", "slip"):
            return receipt.review_cause
        return "unknown_reference"

    # === ACTIONS (each logged in the chatter with user and time) === #

    def _resolve(self, resolution, note):
        """Close these exceptions with ``resolution``, by the current user, who must
        be allowed to write them (the resolution itself is written as superuser:
        see write)."""
        self.check_access("write")
        for exc in self:
            exc.sudo().write(
                {
                    "state": "resolved",
                    "resolution": resolution,
                    "resolution_note": note,
                    "resolved_by": self.env.user.id,
                    "resolved_on": fields.Datetime.now(),
                }
            )
            exc.message_post(body=note)

    def _check_open(self):
        self.check_access("write")
        if self.filtered(lambda e: e.state != "open"):
            raise UserError(self.env._("This exception is already resolved."))

    def _check_nothing_left(self):
        """Closing an exception without moving money is for money already applied or
        reversed: money still unapplied would be stranded behind a closed exception."""
        for exc in self:
            left = exc.receipt_id._mpesa_left() if exc.receipt_id else 0.0
            if left:
                raise UserError(
                    self.env._(
                        "KES %(left)s of receipt %(code)s is not applied yet: allocate "
                        "it, keep it as credit or reverse it.",
                        left=shillings(left),
                        code=exc.receipt_id.name,
                    )
                )

    def action_use_suggested_partner(self):
        """Finance agrees that the customer whose phone paid is the customer."""
        for exc in self:
            exc._check_open()
            exc.partner_id = exc.suggested_partner_id
        return True

    def action_keep_as_credit(self):
        self._check_open()
        for exc in self:
            partner = exc.partner_id or exc.receipt_id.partner_id
            if not partner:
                raise UserError(self.env._("Choose the customer who keeps the credit."))
            receipt = exc.receipt_id
            left = receipt._mpesa_left()
            if not left:
                raise UserError(
                    self.env._(
                        "Receipt %s is already applied in full: nothing is left to keep "
                        "as credit.",
                        receipt.name,
                    )
                )
            note = self.env._(
                "KES %(amount)s kept as credit on %(partner)s's account.",
                amount=shillings(left),
                partner=partner.display_name,
            )
            receipt._mpesa_release_push(note)
            receipt._mpesa_apply(partner)
            receipt.application_ids.filtered(
                lambda tx: not tx.is_post_processed
            )._post_process()
            receipt._mpesa_reconcile_with_payment()
            exc._resolve("credit", note)
        return True

    def action_request_reversal(self):
        """Ask M-PESA to reverse the money. The exception stays open until M-PESA's
        result says it is reversed (see mpesa.api.request._apply_reversal)."""
        self._check_open()
        self.ensure_one()
        action = self.receipt_id.action_request_reversal()
        self.message_post(
            body=self.env._("Reversal requested from M-PESA; waiting for its result.")
        )
        return action

    def action_mark_duplicate(self):
        self._check_open()
        self._check_nothing_left()
        self._resolve("duplicate", self.env._("Marked as a duplicate payment."))
        return True

    def action_dismiss(self):
        self._check_open()
        note = self.env.context.get("dismiss_reason")
        if not note:
            raise UserError(self.env._("Say why this exception is dismissed."))
        self._check_nothing_left()
        self._resolve("dismissed", self.env._("Dismissed: %s", note))
        return True

    def _moved_money(self):
        """The payments this exception's resolution made and that still stand."""
        self.ensure_one()
        if self.resolution not in ("allocated", "credit"):
            return self.env["account.payment"]
        return self.receipt_id.application_ids.payment_id.filtered(
            lambda pay: pay.state != "canceled"
        )

    def action_reopen(self):
        self.check_access("write")
        for exc in self.filtered(lambda e: e.state != "open"):
            if exc._moved_money():
                raise UserError(
                    self.env._(
                        "This resolution paid %s: undo it first (Undo and Reopen), "
                        "which cancels those payments.",
                        ", ".join(exc._moved_money().mapped("name")),
                    )
                )
            exc.sudo().write(
                {
                    "state": "open",
                    "resolution": False,
                    "resolution_note": False,
                    "resolved_by": False,
                    "resolved_on": False,
                }
            )
            exc.message_post(body=self.env._("Reopened."))
        return True

    def action_undo_and_reopen(self):
        """Unwind what the resolution paid (its payments are cancelled, the invoices
        reopen, the money is the receipt's again), then reopen. The exception reopens
        before the receipt is back in review: a receipt in review without an open
        exception gets a new one, and the money would have two."""
        self.check_access("write")
        for exc in self.filtered(lambda e: e.state != "open"):
            receipt = exc.receipt_id
            moved = exc._moved_money()
            if moved:
                receipt._mpesa_unapply(
                    self.env._("%s undid the resolution.", self.env.user.name)
                )
            exc.action_reopen()
            if moved:
                receipt.sudo().write({"state": "review"})
        return True

    def action_allocate(self):
        return self._open_wizard("mpesa.exception.allocate")

    def action_find_matches(self):
        """Rank the open invoices and orders for this payment now, as the matching
        job does every half hour; nothing is applied until a suggestion is accepted."""
        self._check_open()
        self.ensure_one()
        line = self.receipt_id.statement_line_id
        if not line:
            raise UserError(
                self.env._(
                    "Receipt %s has no bank statement line yet (M-PESA has not "
                    "confirmed it): there is nothing to match.",
                    self.receipt_id.name,
                )
            )
        # sudo: ranking reads every open invoice and order of the company, which a
        # reconciler may not read one by one; the suggestions are theirs to read.
        line.sudo()._mpesa_refresh_suggestions(auto=False)
        if not self.suggestion_ids:
            raise UserError(
                self.env._(
                    "No open invoice or order is close enough to this payment: "
                    "allocate it by hand, keep it as credit or send it back."
                )
            )
        return True

    def _open_wizard(self, res_model):
        """The dialog of an action on this open exception (allocation, return of an
        overpayment): the exception is the wizard's default."""
        self._check_open()
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": res_model,
            "view_mode": "form",
            "target": "new",
            "context": {"default_exception_id": self.id},
        }
