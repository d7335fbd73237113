import logging

import psycopg2

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import const
from ..daraja.phone import PhoneError, normalize_msisdn
from ..references import (
    is_hashed_msisdn,
    is_masked_msisdn,
    normalize_reference,
)

_logger = logging.getLogger(__name__)

CHANNELS = [
    ("stk", "STK Push"),
    ("c2b", "Paybill / Till (C2B)"),
    ("query", "Status Query"),
    ("import", "Statement Import"),
]


class MpesaReceipt(models.Model):
    """One record per M-PESA receipt code, whatever channel(s) reported it."""

    _name = "mpesa.receipt"
    _description = "M-PESA Receipt"
    _order = "paid_at desc, id desc"
    _inherit = ["mail.thread"]

    name = fields.Char(string="Receipt Code", required=True, readonly=True, index=True)
    provider_id = fields.Many2one("payment.provider", required=True, readonly=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        default=lambda self: self.env.company,
    )
    shortcode = fields.Char(required=True, readonly=True)
    currency_id = fields.Many2one(
        "res.currency", readonly=True, default=lambda self: self.env.ref("base.KES")
    )
    amount = fields.Monetary(required=True, readonly=True)
    phone = fields.Char(
        readonly=True, help="As given by M-PESA: plain, masked or hashed."
    )
    customer_name = fields.Char(readonly=True)
    reference = fields.Char(string="Account Reference", readonly=True)
    paid_at = fields.Datetime(string="Paid On", readonly=True)
    partner_id = fields.Many2one("res.partner", readonly=True, index=True)
    transaction_id = fields.Many2one("payment.transaction", readonly=True, index=True)
    channel = fields.Selection(CHANNELS, string="First Seen By", readonly=True)
    channels = fields.Char(string="Seen By", readonly=True)
    callback_ids = fields.One2many("mpesa.callback", "receipt_id", readonly=True)
    state = fields.Selection(
        [
            ("received", "Received"),
            ("applied", "Applied"),
            ("review", "Awaiting Review"),
            ("reversed", "Reversed"),
        ],
        default="received",
        required=True,
        readonly=True,
        index=True,
    )
    review_reason = fields.Char(readonly=True)
    phone_kind = fields.Selection(
        [("plain", "Plain"), ("masked", "Masked"), ("hashed", "Hashed")],
        compute="_compute_phone_kind",
        store=True,
    )
    invoice_id = fields.Many2one("account.move", readonly=True, index="btree_not_null")
    sale_order_id = fields.Many2one("sale.order", readonly=True, index="btree_not_null")
    subscription_id = fields.Many2one(
        "sale.subscription", readonly=True, index="btree_not_null"
    )

    _sql_constraints = [
        (
            "receipt_unique",
            "UNIQUE(company_id, shortcode, name)",
            "An M-PESA receipt code is unique per company and shortcode.",
        ),
    ]

    @api.model
    def _record(self, vals, channel, callback=None, lock=False):
        """Get or create the receipt, merging what this channel adds. Safe under
        concurrency: a racing insert of the same code falls back to the existing row."""
        provider = self.env["payment.provider"].browse(vals["provider_id"]).sudo()
        key = {
            "name": vals["name"].strip().upper(),
            "company_id": provider.company_id.id,
            "shortcode": vals.get("shortcode") or provider.mpesa_shortcode,
        }
        receipt = self._find(key)
        if not receipt:
            try:
                with self.env.cr.savepoint():
                    receipt = self.create(
                        {**vals, **key, "channel": channel, "channels": channel}
                    )
            except psycopg2.IntegrityError:
                receipt = self._find(key)
                if not receipt:
                    # A concurrent transaction inserted it after our snapshot began
                    # (REPEATABLE READ): only a retry on a new snapshot can use it.
                    self.env.cr.execute(
                        "DO $$ BEGIN RAISE EXCEPTION 'M-PESA receipt inserted "
                        "concurrently' USING ERRCODE = '40001'; END $$"
                    )
        else:
            updates = {
                f: v
                for f, v in vals.items()
                if v
                and not receipt[f]
                and f
                in (
                    "phone",
                    "customer_name",
                    "reference",
                    "paid_at",
                    "partner_id",
                    "transaction_id",
                )
            }
            seen = set((receipt.channels or "").split(",")) - {""}
            if channel not in seen:
                updates["channels"] = ",".join(sorted(seen | {channel}))
            if updates:
                receipt.write(updates)
        if lock:  # serialize the workers handling the same receipt code
            self.env.cr.execute(
                "SELECT id FROM mpesa_receipt WHERE id = %s FOR UPDATE", [receipt.id]
            )
            receipt.invalidate_recordset()
        if callback:
            callback.receipt_id = receipt
        return receipt

    def _find(self, key):
        return self.search([(k, "=", v) for k, v in key.items()], limit=1)

    @api.depends("phone")
    def _compute_phone_kind(self):
        for receipt in self:
            phone = receipt.phone or ""
            receipt.phone_kind = (
                "hashed"
                if is_hashed_msisdn(phone)
                else "masked"
                if is_masked_msisdn(phone)
                else "plain"
                if phone
                else False
            )

    # === C2B === #

    @api.model
    def _resolve_reference(self, reference, company):
        """Which record a customer-typed account number names.

        Returns (record, reason): exactly one invoice, order or customer, or no record
        and why. Never guesses between several.
        """
        ref = normalize_reference(reference)
        if not ref:
            return None, self.env._("The payment has no account number.")
        cr = self.env.cr
        found = []
        cr.execute(
            """SELECT id FROM account_move
                WHERE company_id = %s AND move_type = 'out_invoice' AND state = 'posted'
                  AND regexp_replace(upper(name), '[^A-Z0-9]', '', 'g') = %s""",
            [company.id, ref],
        )
        found += self.env["account.move"].browse([r[0] for r in cr.fetchall()])
        cr.execute(
            """SELECT id FROM sale_order
                WHERE company_id = %s AND state IN ('draft', 'sent', 'sale')
                  AND regexp_replace(upper(name), '[^A-Z0-9]', '', 'g') = %s""",
            [company.id, ref],
        )
        found += self.env["sale.order"].browse([r[0] for r in cr.fetchall()])
        found += self.env["sale.subscription"].search([("mpesa_account_ref", "=", ref)])
        found += self.env["res.partner"].search([("mpesa_account_ref", "=", ref)])
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, self.env._(
                "No invoice, order, subscription or customer has the account number %s.",
                reference,
            )
        return None, self.env._(
            "The account number %s matches several records.", reference
        )

    @api.model
    def _c2b_validation_answer(self, payment, provider):
        """Accept or reject a paybill payment before M-PESA completes it."""
        if not (
            provider.mpesa_c2b_validate_reference or provider.mpesa_c2b_validate_amount
        ):
            return const.C2B_ACCEPT
        target, _reason = self._resolve_reference(payment.bill_ref, provider.company_id)
        if target is None:
            return (
                const.C2B_INVALID_ACCOUNT
                if provider.mpesa_c2b_validate_reference
                else const.C2B_ACCEPT
            )
        if provider.mpesa_c2b_validate_amount:
            due = self._amount_due(target)
            if due is not None and float(payment.amount) > due + 0.001:
                return const.C2B_INVALID_AMOUNT
        return const.C2B_ACCEPT

    @api.model
    def _amount_due(self, target):
        if target._name == "account.move":
            return target.amount_residual
        if target._name == "sale.order":
            return target.amount_total - target.amount_paid
        return None

    @api.model
    def _partner_from_msisdn(self, msisdn):
        Partner = self.env["res.partner"]
        if is_hashed_msisdn(msisdn):
            partners = Partner.search([("mpesa_msisdn_hash", "=", msisdn)], limit=2)
        elif is_masked_msisdn(msisdn) or not msisdn:
            return Partner
        else:
            try:
                partners = Partner.search(
                    [("mpesa_msisdn", "=", normalize_msisdn(msisdn))], limit=2
                )
            except PhoneError:
                return Partner
        return partners if len(partners) == 1 else Partner

    @api.model
    def _apply_c2b(self, payment, provider, callback):
        """Record a C2B confirmation once and apply it to what it names.

        Returns the callback state: "processed" or "duplicate".
        """
        receipt = self._record(
            {
                "name": payment.trans_id,
                "provider_id": provider.id,
                "shortcode": payment.shortcode,
                "amount": float(payment.amount),
                "phone": payment.msisdn,
                "customer_name": payment.customer_name,
                "reference": payment.bill_ref,
                "paid_at": payment.trans_time,
            },
            channel="c2b",
            callback=callback,
            lock=True,
        )
        seen_by_c2b = receipt.callback_ids.filtered(
            lambda c: (
                c.kind == "c2b_confirmation"
                and c != callback
                and c.state in ("processed", "duplicate")
            )
        )
        if seen_by_c2b or receipt.state in ("applied", "reversed"):
            return "duplicate"
        if receipt.transaction_id.state == "done":
            receipt.state = "applied"  # the STK callback got here first: one payment
            return "processed"
        if not receipt._apply_to_pending_push():
            receipt._apply_by_reference(self._partner_from_msisdn(payment.msisdn))
        return "processed"

    def _apply_to_pending_push(self):
        """The confirmation of an STK push still waiting for its callback (same
        account reference and amount): complete that transaction. True if it was."""
        self.ensure_one()
        pending = (
            self.env["payment.transaction"]
            .sudo()
            ._mpesa_pending_push_for(self.reference, self.amount)
        )
        if not pending:
            return False
        pending._mpesa_lock()
        pending._mpesa_apply_success(
            self.amount, self.name, None, self.paid_at, verify=True
        )
        self.write(
            {
                "transaction_id": pending.id,
                "partner_id": pending.partner_id.id,
                "state": "applied" if pending.state == "done" else "review",
            }
        )
        return True

    def _apply_by_reference(self, partner=None):
        """Pay what the account number names, or wait for review: never a guess, and
        never a second payment of a paid invoice. True if applied."""
        self.ensure_one()
        target, reason = self._resolve_reference(self.reference, self.company_id)
        if (
            target is not None
            and target._name == "account.move"
            and (target.payment_state in ("paid", "in_payment", "reversed"))
        ):
            target, reason = (
                None,
                self.env._(
                    "Invoice %s is already paid: possibly a duplicate payment.",
                    target.name,
                ),
            )
        if target is None:
            self.write(
                {
                    "state": "review",
                    "review_reason": reason,
                    "partner_id": (partner or self.partner_id).id,
                }
            )
            return False
        self._pay(target, partner, self.provider_id)
        return True

    def _pay(self, target, partner, provider):
        """Turn this receipt into a done payment transaction for ``target``."""
        self.ensure_one()
        values = {}
        if target._name == "res.partner":
            partner = target
        elif target._name == "sale.subscription":
            # A subscription payment settles its oldest open invoice first.
            partner = target.partner_id
            self.subscription_id = target
            invoice = target._mpesa_open_invoices()[:1]
            if invoice:
                values["invoice_ids"] = [Command.set(invoice.ids)]
                self.invoice_id = invoice
        else:
            partner = target.partner_id
            if target._name == "account.move":
                values["invoice_ids"] = [Command.set(target.ids)]
                self.invoice_id = target
            else:
                values["sale_order_ids"] = [Command.set(target.ids)]
                self.sale_order_id = target
        values["partner_id"] = partner.id
        tx = self.env["payment.transaction"]._mpesa_create_from_receipt(
            self, provider, values
        )
        self.write(
            {
                "transaction_id": tx.id,
                "partner_id": partner.id,
                "state": "applied",
                "review_reason": False,
            }
        )
        return tx

    # === STATUS AND REVERSAL === #

    def _mark_reversed(self):
        """M-PESA reversed this money: undo its payment so the invoice reopens."""
        for receipt in self:
            receipt.state = "reversed"
            payment = receipt.transaction_id.payment_id
            if payment and payment.state not in ("draft", "canceled"):
                payment.action_draft()
                payment.action_cancel()
            receipt.message_post(
                body=self.env._(
                    "Reversed on M-PESA. %s",
                    self.env._("The payment was cancelled and the invoice reopened.")
                    if payment
                    else "",
                )
            )

    def action_request_reversal(self):
        self.ensure_one()
        if not self.env.user.has_group("mpesa_payment.group_mpesa_manager"):
            raise AccessError(self.env._("Only M-PESA managers can request reversals."))
        if self.state == "reversed":
            raise UserError(self.env._("This receipt is already reversed."))
        request = self.env["mpesa.api.request"]._send(
            self.provider_id,
            "reversal",
            self.name,
            amount=self.amount,
            remarks=self.env._("Reversal requested by %s", self.env.user.name),
        )
        request.receipt_id = self
        self.message_post(body=self.env._("Reversal requested from M-PESA."))
        return request._action_open()

    def action_query_status(self):
        self.ensure_one()
        request = self.env["mpesa.api.request"]._send(
            self.provider_id, "status", self.name
        )
        request.receipt_id = self
        return request._action_open()
