import logging

from odoo import api, fields, models

from odoo.addons.mpesa_payment.kenya_time import kenya_date
from odoo.addons.mpesa_payment.models.mpesa_receipt import MpesaReceipt as Ledger

_logger = logging.getLogger(__name__)


class MpesaReceipt(models.Model):
    _inherit = "mpesa.receipt"

    kind = fields.Selection(
        [("payment", "Payment In"), ("charge", "Charge"), ("withdrawal", "Withdrawal")],
        default="payment",
        required=True,
        readonly=True,
        help="Charges and withdrawals come from statement imports.",
    )
    linked_receipt = fields.Char(
        readonly=True,
        help="For a charge: the receipt of the payment it was charged on.",
    )
    expected_amount = fields.Monetary(
        compute="_compute_expected_amount",
        store=True,
        help="What was asked: by the payment request or the invoice paid, else by "
        "the document the account number names (nothing when it was paid already), "
        "else the amount itself.",
    )
    statement_line_id = fields.Many2one(
        "account.bank.statement.line", readonly=True, index="btree_not_null", copy=False
    )
    reconcile_state = fields.Selection(
        [
            ("unreconciled", "To Reconcile"),
            ("reconciled", "Reconciled"),
            ("exception", "Exception"),
        ],
        string="Reconciliation",
        compute="_compute_reconcile_state",
        store=True,
        index=True,
    )
    exception_ids = fields.One2many("mpesa.exception", "receipt_id", readonly=True)
    recovered = fields.Boolean(
        readonly=True,
        help="Reached us only through a statement import or the Pull API: the "
        "callback never came.",
    )
    # Whose money this is (who sees it: the record rules of M-PESA users). Filled in
    # from what the money pays; a person's choice is never overwritten.
    user_id = fields.Many2one(
        "res.users",
        string="Owner",
        index=True,
        tracking=True,
        help="The salesperson of what this payment pays: the invoice, order or "
        "subscription, or the customer's.",
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Department",
        index="btree_not_null",
        help="The sales team of what this payment pays.",
    )
    branch_id = fields.Many2one(
        "mpesa.branch",
        index="btree_not_null",
        tracking=True,
        help="The branch of that sales team, else of the shortcode or till that took "
        "the money. M-PESA users see the payments of their branches.",
    )
    branch_is_default = fields.Boolean(
        readonly=True,
        copy=False,
        help="The branch is only the shortcode's: the sales team of what the money "
        "pays gives its own.",
    )
    suggestion_ids = fields.One2many(
        related="statement_line_id.mpesa_suggestion_ids", readonly=True
    )

    # The ledger's rule (mpesa_receipt.write): written by the bank feed, the
    # statement import and the exception queue, as superuser. branch_is_default is
    # not: choosing a branch by hand writes it (see write).
    _money_fields = Ledger._money_fields | {
        "kind",
        "linked_receipt",
        "expected_amount",
        "statement_line_id",
        "reconcile_state",
        "exception_ids",
        "recovered",
        "suggestion_ids",
    }

    _sql_constraints = [
        (
            "statement_line_unique",
            "UNIQUE(statement_line_id)",
            "A statement line belongs to one M-PESA receipt only.",
        ),
    ]

    @api.depends(
        "transaction_id.amount",
        "invoice_id.amount_total",
        "review_document",
        "review_due",
        "amount",
    )
    def _compute_expected_amount(self):
        """What was asked: by the payment request, else the invoice paid, else the
        document the account number named when the money came (nothing, for an
        invoice paid already), else the amount itself (nothing else asked)."""
        for receipt in self:
            receipt.expected_amount = (
                receipt.transaction_id.amount
                or receipt.invoice_id.amount_total
                or (receipt.review_due if receipt.review_document else receipt.amount)
            )

    @api.depends("statement_line_id.is_reconciled", "exception_ids.state")
    def _compute_reconcile_state(self):
        for receipt in self:
            if receipt.statement_line_id.is_reconciled:
                receipt.reconcile_state = "reconciled"
            elif any(e.state == "open" for e in receipt.exception_ids):
                receipt.reconcile_state = "exception"
            else:
                receipt.reconcile_state = "unreconciled"

    @api.model_create_multi
    def create(self, vals_list):
        """Override of the ORM to give a new receipt its shortcode's branch, its
        transaction's attribution and its statement line."""
        vals_list = [self._mpesa_shortcode_branch(vals) for vals in vals_list]
        receipts = super().create(vals_list)
        for receipt in receipts.filtered("transaction_id"):
            receipt._mpesa_attribute(receipt.transaction_id)
        receipts._mpesa_feed_statement()
        return receipts

    def write(self, vals):
        """Override of the ORM to keep attribution and the exception queue in step with
        the receipt (a branch chosen by hand is no longer the default)."""
        if "branch_id" in vals and "branch_is_default" not in vals:
            vals = {**vals, "branch_is_default": False}  # somebody chose it
        res = super().write(vals)
        if vals.get("transaction_id"):
            for receipt in self:
                receipt._mpesa_attribute(receipt.transaction_id)
        if vals.get("state") in ("review", "applied") or "transaction_id" in vals:
            self._mpesa_sync_exceptions()
        return res

    # === WHOSE MONEY (salesperson, sales team, branch) === #

    @api.model
    def _mpesa_shortcode_branch(self, vals):
        """A new receipt belongs to the branch of the shortcode or till that took it,
        until what it pays says otherwise."""
        if vals.get("branch_id") or not vals.get("provider_id"):
            return vals
        provider = self.env["payment.provider"].sudo().browse(vals["provider_id"])
        if not provider.mpesa_branch_id:
            return vals
        return {
            **vals,
            "branch_id": provider.mpesa_branch_id.id,
            "branch_is_default": True,
        }

    def _mpesa_seller(self, tx):
        """The salesperson and sales team of ``tx``: the staff member who requested
        the payment (and their team), else those of what it pays: its subscription,
        invoice or order, else its customer's salesperson (and their team)."""
        self.ensure_one()
        tx = tx.sudo()
        user, team = self._mpesa_document_seller(tx)
        collection = tx.mpesa_collection_id
        if collection.user_id:
            user, team = collection.user_id, collection.team_id or team
        return user, team

    def _mpesa_document_seller(self, tx):
        subscription = self.subscription_id.sudo()
        if subscription and (
            not tx.invoice_ids or tx.invoice_ids.subscription_id == subscription
        ):
            return subscription.user_id, subscription.crm_team_id
        if tx.invoice_ids:
            invoice = tx.invoice_ids[:1]
            return invoice.invoice_user_id, invoice.team_id
        if tx.sale_order_ids:
            order = tx.sale_order_ids[:1]
            return order.user_id, order.team_id
        partner = tx.partner_id
        user = partner.user_id or partner.commercial_partner_id.user_id
        # A customer has a sales team with CRM only; else their salesperson's.
        team = partner["team_id"] if "team_id" in partner._fields else None
        return user, team or user.sale_team_id

    def _mpesa_attribute(self, tx):
        """This money is the salesperson's, sales team's and branch of what ``tx``
        pays: what is empty is filled in (the first document it pays decides), the
        shortcode's branch gives way to the team's; a person's choice stays."""
        self.ensure_one()
        if not tx:
            return
        user, team = self._mpesa_seller(tx)
        vals = {}
        if user and not self.user_id:
            vals["user_id"] = user.id
        if team and not self.team_id:
            vals["team_id"] = team.id
        branch = (self.team_id or team).sudo().mpesa_branch_id
        if branch and (not self.branch_id or self.branch_is_default):
            vals.update(branch_id=branch.id, branch_is_default=False)
        elif not self.branch_id and self.provider_id.sudo().mpesa_branch_id:
            vals.update(
                branch_id=self.provider_id.sudo().mpesa_branch_id.id,
                branch_is_default=True,
            )
        if vals:
            self.sudo().write(vals)

    def _mpesa_take(self, tx):
        """Extends mpesa_payment's taking of a receipt by a transaction with the
        transaction's branch, department and staff owner."""
        res = super()._mpesa_take(tx)
        self._mpesa_attribute(tx)
        return res

    def _message_auto_subscribe_followers(self, updated_values, default_subtype_ids):
        """The salesperson owns the money, not a task: not made a follower (they would
        get every email of the receipt, the customer's too), nor notified."""
        return []

    # === BANK FEED === #

    def _mpesa_statement_date(self):
        """The day in Nairobi: a payment at 00:30 EAT belongs to that day."""
        paid = self.paid_at or fields.Datetime.now()
        return kenya_date(paid)

    def _mpesa_feed_statement(self):
        """Exactly one statement line per receipt, in the shortcode's journal."""
        # Not money until M-PESA confirms it (or if M-PESA does not know it).
        todo = self.filtered(
            lambda r: (
                not r.statement_line_id and r.verification not in ("pending", "refused")
            )
        )
        vals_list, receipts = [], []
        for receipt in todo:
            journal = receipt._mpesa_statement_journal()
            if not journal:
                _logger.warning(
                    "M-PESA provider %s has no journal: receipt %s not fed",
                    receipt.provider_id.name,
                    receipt.name,
                )
                continue
            signed = -receipt.amount if receipt.kind != "payment" else receipt.amount
            vals_list.append(
                {
                    "journal_id": journal.id,
                    "date": receipt._mpesa_statement_date(),
                    "payment_ref": " ".join(
                        filter(None, [receipt.name, receipt.reference])
                    ),
                    "amount": signed,
                    "partner_id": receipt.partner_id.id or False,
                    "mpesa_receipt_id": receipt.id,
                    "company_id": receipt.company_id.id,
                }
            )
            receipts.append(receipt)
        if not vals_list:
            return
        # Created as on a production server: Odoo's test mode would switch OCA's
        # automatic reconciliation off, and then no test sees what it does to our lines.
        lines = (
            self.env["account.bank.statement.line"]
            .sudo()
            .with_context(_test_account_reconcile_oca=True)
            .create(vals_list)
        )
        for receipt, line in zip(receipts, lines, strict=True):
            # sudo: a ledger field (_money_fields), written by the money path only
            receipt.sudo().statement_line_id = line
        for receipt in receipts:
            receipt._mpesa_reconcile_with_payment()

    def _mpesa_statement_journal(self):
        """The journal of this receipt's bank line: its shortcode's."""
        return self.provider_id.journal_id

    def _mpesa_reconcile_with_payment(self):
        """A receipt already paid online: its statement line meets the payment(s)."""
        self.ensure_one()
        line = self.statement_line_id
        payments = self.application_ids.payment_id.filtered(
            lambda p: p.state in ("in_process", "paid")
        )
        if not (payments and line) or line.is_reconciled:
            return False
        outstanding = payments.move_id.line_ids.filtered(
            lambda aml: (
                aml.account_id in payments.outstanding_account_id and not aml.reconciled
            )
        )
        if not outstanding:
            return False
        return line._mpesa_reconcile_with(outstanding)

    def _mpesa_apply_recovered(self):
        """A payment found only in a statement: the confirmation of a push that never
        got its callback, or a paybill payment applied by its account number."""
        for receipt in self:
            if not receipt._apply_to_pending_push():
                receipt._apply_by_reference()

    def _mpesa_feed(self):
        return self._mpesa_feed_statement()

    def _mpesa_flag_unconfirmed(self, why):
        """Extends mpesa_payment's unconfirmed receipt with the exception queue, where
        finance reviews it."""
        res = super()._mpesa_flag_unconfirmed(why)
        self.env["mpesa.exception"].sudo()._open_for_receipt(
            self, kind="review", reason=why
        )
        return res

    def _mpesa_unapply(self, reason):
        """The bank line goes back to suspense first: its money is unapplied again
        and must meet the next payment it makes."""
        for line in self.statement_line_id.filtered("is_reconciled"):
            line.unreconcile_bank_line()
        return super()._mpesa_unapply(reason)

    def _mark_reversed(self):
        """Once M-PESA says the money went back, its open exceptions are resolved."""
        res = super()._mark_reversed()
        for receipt in self:
            receipt.exception_ids.filtered(lambda e: e.state == "open")._resolve(
                "reversed", self.env._("Reversed on M-PESA: the money went back.")
            )
        return res

    # === EXCEPTIONS === #

    def _mpesa_sync_exceptions(self):
        """Money awaiting review has an open exception; money its own payment path
        applied after all (a late confirmation) closes the one it had."""
        Exception_ = self.env["mpesa.exception"].sudo()
        for receipt in self:
            # A refund's exception is about the money sent back, not this one's.
            open_ = receipt.exception_ids.filtered(
                lambda e: e.state == "open" and e.kind != "refund_failed"
            )
            if receipt.state == "applied" and open_ and not receipt._mpesa_left():
                open_._resolve(
                    "allocated",
                    self.env._(
                        "Applied by its payment: %s.",
                        ", ".join(receipt.application_ids.mapped("reference")),
                    ),
                )
                continue
            if receipt.state == "review" and not receipt.exception_ids.filtered(
                lambda e: e.state == "open"
            ):
                Exception_._open_for_receipt(receipt)
