import logging

import psycopg2

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, float_compare

from .. import const
from ..amounts import shillings
from ..daraja.phone import PhoneError, normalize_msisdn
from ..kenya_time import kenya_today
from ..references import normalize_reference, phone_kind, within_one_typo
from .account_move import OPEN_INVOICE_DOMAIN

_logger = logging.getLogger(__name__)

CHANNELS = [
    ("stk", "STK Push"),
    ("c2b", "Paybill / Till (C2B)"),
    ("query", "Status Query"),
    ("import", "Statement Import"),
]


def seen_by_string(channel):
    """The label of the Seen By flag of ``channel``, from CHANNELS."""
    return f"Seen by {dict(CHANNELS)[channel]}"


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
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        readonly=True,
        index=True,
        help="Whose payment this is: the customer of the document it pays or names. "
        "Customers see their receipts in the portal.",
    )
    suggested_partner_id = fields.Many2one(
        "res.partner",
        string="Phone Matches",
        readonly=True,
        help="The one customer whose phone number is the payer's. Only a hint for "
        "finance: anybody can type any phone number on their portal account, so it "
        "never shows the payment to that customer nor applies money by itself.",
    )
    transaction_id = fields.Many2one("payment.transaction", readonly=True, index=True)
    channel = fields.Selection(CHANNELS, string="First Seen By", readonly=True)
    # One flag per channel of CHANNELS (see _seen_by_field), set once that channel
    # has reported the receipt: a receipt seen only by the statement is one no
    # callback brought.
    seen_by_stk = fields.Boolean(string=seen_by_string("stk"), readonly=True)
    seen_by_c2b = fields.Boolean(string=seen_by_string("c2b"), readonly=True)
    seen_by_query = fields.Boolean(string=seen_by_string("query"), readonly=True)
    seen_by_import = fields.Boolean(string=seen_by_string("import"), readonly=True)
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
    # Why a paybill payment was not applied by its account number, for code to read
    # (review_reason is the same for a person, in the language of whoever applied it).
    review_cause = fields.Selection(
        [
            ("no_reference", "No Account Number"),
            ("unknown_reference", "Unknown Account Number"),
            ("ambiguous", "Several Records"),
            ("duplicate", "Already Paid"),
            ("slip", "Another Customer's Document"),
            ("overpaid", "More Than Is Due"),
        ],
        readonly=True,
    )
    review_document = fields.Reference(
        [("account.move", "Invoice"), ("sale.order", "Sales Order")],
        string="Account Number Names",
        readonly=True,
        help="The document the account number names, which this payment could not "
        "pay by itself (already paid, another customer's, or more than is due).",
    )
    review_due = fields.Monetary(
        string="Due When Paid",
        readonly=True,
        help="What that document had left to pay when the money came.",
    )
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
    verification = fields.Selection(
        [
            ("verified", "Confirmed by M-PESA"),
            ("pending", "Being Confirmed"),
            ("unverified", "Unconfirmed"),
            ("refused", "Unknown to M-PESA"),
        ],
        default="verified",
        required=True,
        readonly=True,
        index=True,
        help="A paybill confirmation is only a POST to our URL: with initiator "
        "credentials, Transaction Status confirms it before it is booked; without, it "
        "is booked unconfirmed until a statement or Pull API row confirms it. STK "
        "payments are confirmed by the STK query, statement rows come from M-PESA.",
    )
    unconfirmed_flagged = fields.Boolean(
        readonly=True, copy=False, help="Sent to a person for not being confirmed."
    )
    applied_amount = fields.Monetary(
        string="Applied",
        readonly=True,
        copy=False,
        help="How much of this receipt pays invoices, orders or customer credit. "
        "Written only by the money path, under the receipt's row lock; the database "
        "refuses more than the receipt's amount.",
    )
    application_ids = fields.One2many(
        "payment.transaction",
        "mpesa_source_receipt_id",
        string="Applied To",
        readonly=True,
        help="The payments this receipt's money made (one, or several when split).",
    )

    # Written by the money path only (as superuser, once the caller's own access was
    # checked): readonly in the views is not enough against RPC writes. What M-PESA
    # said, what the money pays, why it waits for a person, whom it was sent to: every
    # field but the assignment (salesperson, team, branch: mpesa_reconciliation),
    # which adds its own to this list.
    _money_fields = frozenset(
        {
            "name",
            "provider_id",
            "company_id",
            "shortcode",
            "currency_id",
            "amount",
            "phone",
            "phone_kind",
            "customer_name",
            "reference",
            "paid_at",
            "partner_id",
            "suggested_partner_id",
            "transaction_id",
            "application_ids",
            "callback_ids",
            "channel",
            "seen_by_stk",
            "seen_by_c2b",
            "seen_by_query",
            "seen_by_import",
            "state",
            "review_reason",
            "review_cause",
            "review_document",
            "review_due",
            "invoice_id",
            "sale_order_id",
            "subscription_id",
            "verification",
            "unconfirmed_flagged",
            "applied_amount",
            "receipt_issued_on",
            "receipt_issued_by",
            "receipt_sent_to",
            "receipt_issue_error",
        }
    )

    _sql_constraints = [
        (
            "receipt_unique",
            "UNIQUE(company_id, shortcode, name)",
            "An M-PESA receipt code is unique per company and shortcode.",
        ),
        (
            "applied_within_amount",
            "CHECK(applied_amount >= 0 AND applied_amount <= amount + 0.005)",
            "An M-PESA receipt cannot be applied for more than its amount.",
        ),
    ]

    def write(self, vals):
        """Money fields only through the money path: refused to every role over RPC."""
        written = self._money_fields.intersection(vals)
        if written and not self.env.su:
            raise AccessError(
                self.env._(
                    "The M-PESA ledger's money fields (%s) change only through M-PESA "
                    "and the reconciliation actions.",
                    ", ".join(sorted(written)),
                )
            )
        return super().write(vals)

    # What a later channel may fill in on a known receipt (only while still empty).
    _MERGED_DETAILS = frozenset(
        {
            "customer_name",
            "paid_at",
            "partner_id",
            "phone",
            "reference",
            "transaction_id",
        }
    )

    @api.model
    def _record(self, vals, channel, callback=None, lock=False):
        """Get or create the receipt, merging what this channel adds. Safe under
        concurrency: a racing insert of the same code falls back to the existing row."""
        provider = self.env["payment.provider"].browse(vals["provider_id"]).sudo()
        key = {
            "name": vals["name"].strip().upper(),
            "company_id": provider.company_id.id,
            # The provider's, whatever the channel: a C2B body names its own
            # BusinessShortCode (checked against the provider's before booking).
            "shortcode": provider.mpesa_shortcode,
        }
        receipt = self._find(key)
        if not receipt:
            receipt = self._create_once(key, {**vals, "channel": channel})
        else:
            receipt._merge_channel(vals, channel)
        if lock:  # serialize the workers handling the same receipt code
            receipt._mpesa_lock()
        if callback:
            callback.receipt_id = receipt
        return receipt

    @api.model
    def _create_once(self, key, vals):
        """Create the receipt of ``key``; a racing insert of the same code (two
        channels reporting one payment at once) falls back to the existing row."""
        try:
            with self.env.cr.savepoint():
                return self.create(
                    {**vals, **key, **self._seen_by_vals(vals["channel"])}
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
            return receipt

    def _merge_channel(self, vals, channel):
        """What another channel adds to a known receipt: only the details still
        empty (the first report of a fact stands) and the channel among those seen."""
        updates = {
            f: v
            for f, v in vals.items()
            if v and not self[f] and f in self._MERGED_DETAILS
        }
        updates.update(self._seen_by_vals(channel))
        if updates:
            self.sudo().write(updates)

    @api.model
    def _seen_by_field(self, channel):
        """The Seen By flag of ``channel`` (one of CHANNELS)."""
        if channel not in dict(CHANNELS):
            raise ValueError(f"Unknown M-PESA channel: {channel!r}")
        return f"seen_by_{channel}"

    def _seen_by_vals(self, channel):
        """The values that mark this receipt (or the one being created, on an empty
        recordset) seen by ``channel``, empty when it already was: the one rule,
        whichever way a code arrives."""
        field = self._seen_by_field(channel)
        return {} if self and self[field] else {field: True}

    def _find(self, key):
        return self.search([(k, "=", v) for k, v in key.items()], limit=1)

    @api.depends("phone")
    def _compute_phone_kind(self):
        for receipt in self:
            receipt.phone_kind = phone_kind(receipt.phone) or False

    # === C2B === #

    @api.model
    def _resolve_reference(self, reference, company):
        """Which record a customer-typed account number names.

        Returns (record, why): exactly one invoice, order or customer, or no record
        and why, a (review_cause, text) pair. Never guesses between several.
        """
        ref = normalize_reference(reference)
        if not ref:
            return None, (
                "no_reference",
                self.env._("The payment has no account number."),
            )
        found = self._documents_by_reference(ref, company)
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, (
                "unknown_reference",
                self.env._(
                    "No invoice, order, subscription or customer has the account "
                    "number %s.",
                    reference,
                ),
            )
        return None, (
            "ambiguous",
            self.env._("The account number %s matches several records.", reference),
        )

    @api.model
    def _documents_by_reference(self, ref, company):
        """Every open document of ``company`` a normalized reference names: invoices
        by number or payment reference, orders by number or customer reference,
        subscriptions and customers by their M-PESA account number. The same fields
        the matcher ranks as exact references (mpesa_reconciliation)."""
        cr = self.env.cr
        squash = "regexp_replace(upper(coalesce({}, '')), '[^A-Z0-9]', '', 'g')"
        cr.execute(
            f"""SELECT id FROM account_move
                 WHERE company_id = %(company)s AND move_type = 'out_invoice'
                   AND state = 'posted'
                   AND %(ref)s IN ({squash.format("name")},
                                   {squash.format("payment_reference")})""",
            {"company": company.id, "ref": ref},
        )
        found = list(self.env["account.move"].browse([r[0] for r in cr.fetchall()]))
        cr.execute(
            f"""SELECT id FROM sale_order
                 WHERE company_id = %(company)s AND state IN ('draft', 'sent', 'sale')
                   AND %(ref)s IN ({squash.format("name")},
                                   {squash.format("client_order_ref")})""",
            {"company": company.id, "ref": ref},
        )
        found += self.env["sale.order"].browse([r[0] for r in cr.fetchall()])
        subscriptions = self.env["sale.subscription"].search(
            [("mpesa_account_ref", "=", ref), ("company_id", "=", company.id)]
        )
        # A subscription's invoices carry its account number: the subscription
        # decides which of them is paid (the oldest open one).
        found = [
            doc
            for doc in found
            if doc._name != "account.move" or doc.subscription_id not in subscriptions
        ] + list(subscriptions)
        found += self.env["res.partner"].search(
            [
                ("mpesa_account_ref", "=", ref),
                ("company_id", "in", (False, company.id)),
            ]
        )
        return found

    @api.model
    def _c2b_validation_answer(self, payment, provider):
        """Accept or reject a paybill payment before M-PESA completes it."""
        if not (
            provider.mpesa_c2b_validate_reference or provider.mpesa_c2b_validate_amount
        ):
            return const.C2B_ACCEPT
        target, _why = self._resolve_reference(payment.bill_ref, provider.company_id)
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
        """What ``target`` has left to pay, in KES (what M-PESA pays), or None for
        a record that asks no amount."""
        if target._name == "account.move":
            due = target.amount_residual
        elif target._name == "sale.order":
            due = target._mpesa_amount_due()
        else:
            return None
        due = self._in_kes(target, due)
        if target._name == "account.move":
            due -= self._paid_not_yet_booked(target)
        return due

    @api.model
    def _in_kes(self, document, amount):
        """``amount`` of ``document`` (an invoice or order, in its own currency) in
        KES: an invoice in dollars, say, is compared with M-PESA money in shillings."""
        kes = self.env.ref("base.KES")
        if document.currency_id == kes:
            return amount
        return document.currency_id._convert(
            amount, kes, document.company_id, kenya_today()
        )

    @api.model
    def _paid_not_yet_booked(self, invoice):
        """What done payments of ``invoice`` still owe its residual, in KES: the
        framework's post-processing job books them (account.payment) moments later,
        and until then a second payment of the invoice would read it as unpaid."""
        unbooked = invoice.sudo().transaction_ids.filtered(
            lambda tx: tx.state == "done" and not tx.is_post_processed
        )
        kes = self.env.ref("base.KES")
        return sum(
            tx.currency_id._convert(tx.amount, kes, tx.company_id, kenya_today())
            for tx in unbooked
        )

    @api.model
    def _partner_from_msisdn(self, msisdn, company):
        """The one customer of ``company`` (or shared by all companies) whose phone
        paid. A contact another company keeps to itself was suggested to this one's
        reconcilers, who read its name and could not book to it."""
        Partner = self.env["res.partner"]
        kind = phone_kind(msisdn)
        if kind == "hashed":
            phone = [("mpesa_msisdn_hash", "=", msisdn.strip().lower())]
        elif kind != "plain":
            return Partner
        else:
            try:
                phone = [("mpesa_msisdn", "=", normalize_msisdn(msisdn))]
            except PhoneError:
                return Partner
        partners = Partner.search(
            [*phone, ("company_id", "in", (False, company.id))], limit=2
        )
        return partners if len(partners) == 1 else Partner

    @api.model
    def _c2b_check(self, payment, provider):
        """Refuse to book a confirmation for another shortcode or an insane amount."""
        ours = {provider.mpesa_shortcode, provider._mpesa_party_b()}
        if payment.shortcode not in ours:
            raise ValidationError(
                self.env._(
                    "Confirmation for shortcode %(theirs)s, not this provider's "
                    "(%(ours)s): not booked.",
                    theirs=payment.shortcode,
                    ours=provider.mpesa_shortcode,
                )
            )
        amount = payment.amount
        if not (0 < amount <= const.AMOUNT_MAX) or amount != round(amount, 2):
            raise ValidationError(
                self.env._("Implausible amount %s: not booked.", payment.amount)
            )

    @api.model
    def _apply_c2b(self, payment, provider, callback):
        """Record a C2B confirmation once and apply it to what it names.

        Returns the callback state: "processed" or "duplicate".
        """
        self._c2b_check(payment, provider)
        verify = provider._mpesa_can_verify()
        receipt = self._record(
            {
                "name": payment.trans_id,
                "provider_id": provider.id,
                "amount": float(payment.amount),
                "phone": payment.msisdn,
                "customer_name": payment.customer_name,
                "reference": payment.bill_ref,
                "paid_at": payment.trans_time,
                "verification": "pending" if verify else "unverified",
            },
            channel="c2b",
            callback=callback,
            lock=True,
        )
        earlier_c2b = receipt.callback_ids.filtered(
            lambda c: (
                c.kind == "c2b_confirmation"
                and c != callback
                and c.state in ("processed", "duplicate")
            )
        )
        if earlier_c2b or receipt.state in ("applied", "reversed"):
            return "duplicate"
        if receipt.application_ids:
            return "processed"  # the STK callback got here first: one payment
        if receipt.verification == "pending":
            receipt._mpesa_ask_confirmation()
            return "processed"
        receipt._apply_c2b_money()
        return "processed"

    def _apply_c2b_money(self):
        """Apply a paybill payment: the push it confirms, else what it names."""
        self.ensure_one()
        if not self._apply_to_pending_push():
            self._apply_by_reference(
                payer=self._partner_from_msisdn(self.phone, self.company_id)
            )

    def _mpesa_ask_confirmation(self):
        """Ask M-PESA (Transaction Status) whether this paybill payment happened; its
        result books it (_mpesa_confirmed) or refuses it (_mpesa_unknown)."""
        self.ensure_one()
        # Still waiting for an answer? (A lost answer is asked for again later.)
        recently = fields.Datetime.subtract(fields.Datetime.now(), minutes=10)
        waiting = [
            ("receipt_id", "=", self.id),
            ("kind", "=", "status"),
            ("state", "=", "sent"),
            ("create_date", ">", recently),
        ]
        if self.env["mpesa.api.request"].sudo().search_count(waiting, limit=1):
            return
        self.env["mpesa.api.request"].sudo()._send(
            self.provider_id, "status", self.name, receipt_id=self.id
        )

    def _mpesa_try_ask_confirmation(self):
        """Ask M-PESA now where initiator credentials allow; otherwise (or if Daraja
        fails) the confirmation job asks again, and a statement or Pull row confirms."""
        self.ensure_one()
        if not self.provider_id._mpesa_can_verify():
            return
        try:
            with self.env.cr.savepoint():
                self._mpesa_ask_confirmation()
        except UserError:
            _logger.info("M-PESA could not be asked about %s yet", self.name)

    def _mpesa_same_amount(self, amount):
        return not float_compare(
            amount, self.amount, precision_rounding=self.currency_id.rounding
        )

    def _mpesa_confirmed(self, amount):
        """M-PESA confirmed this receipt: book it, when it says the same amount."""
        self.ensure_one()
        self._mpesa_lock()
        if self.verification != "pending":
            return
        if not self._mpesa_same_amount(amount):
            self._mpesa_unknown(
                self.env._("M-PESA says KES %s for this receipt.", shillings(amount))
            )
            return
        self._mpesa_confirmed_by_prompt()
        # Money already applied (its prompt) or waiting for a person (a prompt paid
        # with another amount) is not applied again by its account number.
        if self.state == "received" and not self.application_ids:
            self._apply_c2b_money()

    def _mpesa_confirmed_by_prompt(self):
        """Confirmed (by Transaction Status, a statement, or the verified prompt that
        carried the same amount): the money enters the books."""
        self.sudo().verification = "verified"
        self._mpesa_feed()

    def _mpesa_unknown(self, why):
        """M-PESA does not confirm this paybill notification: never booked."""
        self.ensure_one()
        self.sudo().write(
            {"verification": "refused", "review_reason": why, "review_cause": False}
        )
        _logger.warning(
            "M-PESA paybill notification %s not confirmed by M-PESA: %s", self.name, why
        )

    def _mpesa_feed(self):
        """Hook: the receipt's money enters the books (mpesa_reconciliation)."""
        return True

    def _mpesa_flag_unconfirmed(self, why):
        """Hook: a paybill notification M-PESA has not confirmed for a day needs a
        person (mpesa_reconciliation opens an exception)."""
        _logger.warning("M-PESA receipt %s: %s", self.name, why)

    @api.model
    def _cron_mpesa_confirm_paybill(self):
        """Ask again where M-PESA's answer never came (queue timeout); after a day,
        what is still not confirmed goes to a person."""
        day_ago = fields.Datetime.subtract(fields.Datetime.now(), days=1)
        pending = self.search([("verification", "=", "pending")], limit=200)
        for receipt in pending.filtered(lambda r: r.create_date > day_ago):
            try:
                with self.env.cr.savepoint():
                    receipt._mpesa_ask_confirmation()
            except UserError:
                _logger.info("M-PESA could not be asked about %s yet", receipt.name)
        stale = self.search(
            [
                ("verification", "in", ("pending", "unverified")),
                ("create_date", "<", day_ago),
                ("unconfirmed_flagged", "=", False),
            ],
            limit=500,
        )
        stale.sudo().write({"unconfirmed_flagged": True})
        for receipt in stale:
            receipt._mpesa_flag_unconfirmed(
                self.env._(
                    "Payment not confirmed by M-PESA after a day: check "
                    "it against the statement."
                )
            )

    def _apply_to_pending_push(self, by_phone=False):
        """The confirmation of an STK push still waiting for its callback (same
        account reference and amount; or, for a status query that names no reference,
        the same plain phone and amount): complete that transaction. True if it was."""
        self.ensure_one()
        pending = (
            self.env["payment.transaction"]
            .sudo()
            ._mpesa_pending_push_for(
                self.reference,
                self.amount,
                phone=self.phone if by_phone else None,
                provider=self.provider_id,
            )
        )
        if not pending:
            return False
        pending._mpesa_lock()
        self.sudo().write(
            {"transaction_id": pending.id, "partner_id": pending.partner_id.id}
        )
        # The push's own path applies the money (or sends it to review with a reason).
        # Money M-PESA already confirmed (Transaction Status, a statement row) pays
        # at once: the STK query speaks of the prompt, not of this receipt (a prompt
        # that timed out answers 1037 while the paybill paid). Matched by phone
        # alone, only the prompt's query ties the two: the receipt waits on it.
        confirmed = self.verification == "verified" and not by_phone
        pending._mpesa_apply_success(
            self.amount, self.name, None, self.paid_at, verify=not confirmed
        )
        return True

    def _mpesa_release_from_push(self, push):
        """``push`` failed (declined, timed out, or its query says so) while this
        money waited on it: paid by paybill while the prompt was open, it was never
        the prompt's. It leaves the prompt and pays what its account number names,
        once: under the receipt's row lock, and only while nothing of it is applied.
        True if it was released."""
        self.ensure_one()
        self._mpesa_lock()
        if (
            self.transaction_id != push
            or self.state != "received"
            or self.application_ids
            or self.verification in ("pending", "refused")
        ):
            return False
        if push.mpesa_receipt_code == self.name:
            # The prompt never paid: the code (unique) goes to the payment it makes.
            push.sudo().write({"mpesa_receipt_code": False, "mpesa_paid_amount": 0.0})
        self.sudo().transaction_id = False
        self.message_post(
            body=self.env._(
                "Payment request %s failed: this payment is applied by its account "
                "number instead.",
                push.reference,
            )
        )
        self._apply_by_reference(
            payer=self._partner_from_msisdn(self.phone, self.company_id)
        )
        return True

    def _apply_by_reference(self, payer=None):
        """Pay what the account number names, or wait for review: never a guess, and
        never a second payment of a paid invoice. ``payer``: the customer the phone
        number suggests, a hint only (see suggested_partner_id). True if applied."""
        self.ensure_one()
        target, why = self._resolve_reference(self.reference, self.company_id)
        customer, named = self.partner_id, None
        if target is not None:
            self._mpesa_claim_document(target)
            why = self._why_not_apply_to(target, payer)
            if why:
                customer, named, target = target.partner_id, target, None
        if target is None:
            cause, reason = why
            self.sudo().write(
                {
                    "state": "review",
                    "review_cause": cause,
                    "review_reason": reason,
                    **self._review_document_values(named),
                    "partner_id": customer.id,
                    "suggested_partner_id": (payer or self.suggested_partner_id).id,
                }
            )
            return False
        self._mpesa_apply(target)
        return True

    def _mpesa_claim_document(self, target):
        """Serialize the payments of one document across workers, before what it has
        left to pay is read. A write, not a row lock: under REPEATABLE READ a second
        payment that only waited for a lock would go on with a snapshot that does not
        hold the first one's transaction, and pay the document again. Updating the
        row makes PostgreSQL refuse the second one (could not serialize access), and
        the callback is processed again on a snapshot that sees the first payment
        (mpesa.callback's retry on concurrency errors)."""
        if target._name in ("account.move", "sale.order"):
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET write_date = write_date WHERE id = %s",
                    SQL.identifier(target._table),
                    target.id,
                )
            )

    def _review_document_values(self, named):
        """Keep the document the account number named, and what it had left to pay,
        for whoever reviews the payment (expected amount, what an overpayment pays
        first before the rest goes back)."""
        due = self._amount_due(named) if named else None
        if due is None:
            return {"review_document": False, "review_due": 0.0}
        return {"review_document": f"{named._name},{named.id}", "review_due": due}

    def _why_not_apply_to(self, target, payer):
        """Why this payment must wait for a person rather than pay ``target`` (the
        document its account number names), a (review_cause, text) pair, or None."""
        due = self._amount_due(target)
        if target._name == "account.move" and (
            target.payment_state in ("paid", "in_payment", "reversed")
            or float_compare(due, 0, precision_rounding=self.currency_id.rounding) <= 0
        ):
            return "duplicate", self.env._(
                "Invoice %s is already paid: possibly a duplicate payment.", target.name
            )
        if self._mpesa_order_paid(target, due):
            return "duplicate", self.env._(
                "Order %s is already paid: possibly a duplicate payment.", target.name
            )
        slip = payer and self._own_document_one_typo_away(target, payer)
        if slip:
            return "slip", self.env._(
                "Paid from %(payer)s's phone for %(doc)s of another customer; "
                "%(own)s of the payer, one typo away, asks the same amount.",
                payer=payer.display_name,
                doc=target.name,
                own=slip.name,
            )
        if due is not None and (
            float_compare(
                self.amount, due, precision_rounding=self.currency_id.rounding
            )
            > 0
        ):
            return "overpaid", self.env._(
                "Paid KES %(paid)s for %(doc)s, of which KES %(due)s is due: more "
                "than is due.",
                paid=shillings(self.amount),
                doc=target.name,
                due=shillings(due),
            )
        return None

    # === THE MONEY PATH === #
    # Every way a receipt's money is applied (STK success, paybill by reference,
    # allocation, credit, accepted suggestion, recovered statement row) ends in
    # _mpesa_take, under the receipt's row lock; _mpesa_unapply is the only undo.

    def _mpesa_lock(self):
        """Serialize every change of this receipt's money across workers.

        NO KEY UPDATE, not UPDATE: rows that merely reference the receipt may still be
        inserted meanwhile. A money request is committed on a cursor of its own before
        Daraja is called (mpesa.api.request._commit_new), naming this receipt; under
        FOR UPDATE its insert waited for this very transaction, and Send Back by B2C
        hung until the worker was killed (live test). Odoo's test cursor is shared,
        so no Odoo test can see that wait."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT id FROM mpesa_receipt WHERE id = %s FOR NO KEY UPDATE", [self.id]
        )
        self.invalidate_recordset()

    def _mpesa_left(self):
        """What of this receipt's money is not applied yet."""
        self.ensure_one()
        if self.state == "reversed":
            return 0.0
        return self.currency_id.round(self.amount - self.applied_amount)

    def _mpesa_take(self, tx):
        """Record that ``tx`` pays ``tx.amount`` of this receipt's money. Refuses what
        the receipt no longer holds; the CHECK constraint refuses it in the database
        should a caller skip this method."""
        self.ensure_one()
        self._mpesa_lock()
        self._mpesa_check_confirmed()
        left = self._mpesa_left()
        if (
            float_compare(tx.amount, left, precision_rounding=self.currency_id.rounding)
            > 0
        ):
            raise UserError(
                self.env._(
                    "Receipt %(code)s has KES %(left)s left to apply: it cannot pay "
                    "KES %(amount)s. Undo what it already paid first.",
                    code=self.name,
                    left=shillings(left),
                    amount=shillings(tx.amount),
                )
            )
        self.sudo().write({"applied_amount": self.applied_amount + tx.amount})
        tx.sudo().mpesa_source_receipt_id = self

    def _mpesa_check_confirmed(self):
        """Money M-PESA has not confirmed (or does not know) pays nothing."""
        if self.verification in ("pending", "refused"):
            raise UserError(
                self.env._(
                    "M-PESA has not confirmed receipt %s: it cannot pay anything yet.",
                    self.name,
                )
            )

    def _mpesa_apply(self, target, amount=None):
        """Pay ``target`` (invoice, order, subscription, or a customer: credit) with
        ``amount`` of this receipt (default: all that is left), as one done
        transaction; post-processing makes its payment. Returns the transaction."""
        self.ensure_one()
        self._mpesa_lock()
        left = self._mpesa_left()
        amount = left if amount is None else amount
        if (
            amount <= 0
            or float_compare(amount, left, precision_rounding=self.currency_id.rounding)
            > 0
        ):
            raise UserError(
                self.env._(
                    "Receipt %(code)s has KES %(left)s left to apply: it cannot pay "
                    "KES %(amount)s.",
                    code=self.name,
                    left=shillings(left),
                    amount=shillings(amount),
                )
            )
        Tx = self.env["payment.transaction"].sudo()
        code_free = not Tx.search_count([("mpesa_receipt_code", "=", self.name)])
        values = {
            **self._mpesa_target_values(target),
            "amount": amount,
            "mpesa_receipt_code": self.name if code_free else False,
        }
        tx = Tx._mpesa_create_from_receipt(self, self.provider_id, values)
        self._mpesa_take(tx)
        self.sudo().write(
            {
                "transaction_id": self.transaction_id.id or tx.id,
                "partner_id": tx.partner_id.id,
                "state": "applied" if not self._mpesa_left() else self.state,
                "review_reason": False,
                "review_cause": False,
            }
        )
        return tx

    def _own_document_one_typo_away(self, target, payer):
        """The payer's own open invoice or order that the typed reference misses by
        one typo and whose amount due is this payment, when ``target`` is another
        customer's: paying someone else's bill stays possible, but not on a slip."""
        commercial = payer.commercial_partner_id
        if target._name not in ("account.move", "sale.order") or (
            target.partner_id.commercial_partner_id == commercial
        ):
            return None
        typed = normalize_reference(self.reference)
        invoices = self.env["account.move"].search(
            [
                ("commercial_partner_id", "=", commercial.id),
                ("company_id", "=", self.company_id.id),
                *OPEN_INVOICE_DOMAIN,
            ]
        )
        orders = self.env["sale.order"].search(
            [
                ("partner_id", "child_of", commercial.id),
                ("company_id", "=", self.company_id.id),
                ("state", "in", ("draft", "sent", "sale")),
            ]
        )
        for document in [*invoices, *orders]:
            due = self._amount_due(document)
            if within_one_typo(typed, normalize_reference(document.name)) and not (
                float_compare(
                    due, self.amount, precision_rounding=self.currency_id.rounding
                )
            ):
                return document
        return None

    def _mpesa_order_paid(self, target, due):
        """Whether ``target`` is an order with something to pay and ``due``, what it
        has left, nothing: its invoices, or its own payments, paid it already."""
        if target._name != "sale.order":
            return False
        return not target.currency_id.is_zero(target.amount_total) and (
            float_compare(due, 0, precision_rounding=self.currency_id.rounding) <= 0
        )

    def _mpesa_target_values(self, target):
        """The transaction values that pay ``target`` with this receipt's money;
        links it on the receipt. An order already invoiced: the transaction pays its
        open invoices too (payment.transaction.create)."""
        if target._name == "res.partner":
            return {"partner_id": target.id}
        values = {"partner_id": target.partner_id.id}
        if target._name == "sale.subscription":
            # A subscription payment settles its oldest open invoice first.
            self.sudo().subscription_id = target
            target = target._mpesa_open_invoices()[:1]
        if target._name == "account.move":
            values["invoice_ids"] = [Command.set(target.ids)]
            self.sudo().invoice_id = target
        elif target._name == "sale.order":
            values["sale_order_ids"] = [Command.set(target.ids)]
            self.sudo().sale_order_id = target
        return values

    def _mpesa_unapply(self, reason):
        """Undo every payment this receipt's money made: each payment is cancelled
        (its invoice reopens) and the money is the receipt's again. The one undo:
        reversals and finance undoing an allocation both come here."""
        for receipt in self:
            receipt._mpesa_lock()
            applied = receipt.application_ids.filtered(
                lambda tx: tx.state == "done" and tx.payment_id.state != "canceled"
            )
            applied.filtered(lambda tx: not tx.is_post_processed)._post_process()
            # Cancelled, not deleted: the entries keep their numbers (audit trail).
            applied.payment_id.move_id.button_cancel()
            receipt.sudo().write({"applied_amount": 0.0})
            if applied:
                receipt.message_post(
                    body=self.env._(
                        "%(reason)s Cancelled: %(payments)s.",
                        reason=reason,
                        payments=", ".join(applied.payment_id.mapped("name")),
                    )
                )
        return True

    def _mpesa_release_push(self, note):
        """An STK push paid with another amount waits in review, pending: finance now
        settles its receipt, so the push itself ends (cancelled) with ``note``."""
        push = self.transaction_id
        if push.state == "pending" and push.mpesa_needs_review:
            push.sudo().write({"mpesa_needs_review": False})
            push.sudo()._set_canceled(note)

    # === STATUS AND REVERSAL === #

    def _mark_reversed(self):
        """M-PESA reversed this money: undo every payment it made (a split one too),
        so their invoices reopen."""
        self._mpesa_unapply(self.env._("Reversed on M-PESA."))
        for receipt in self:
            receipt.sudo().state = "reversed"
            receipt.message_post(body=self.env._("Reversed on M-PESA."))

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
            receipt_id=self.id,
        )
        self.message_post(body=self.env._("Reversal requested from M-PESA."))
        return request._action_open()

    def action_query_status(self):
        self.ensure_one()
        request = self.env["mpesa.api.request"]._send(
            self.provider_id, "status", self.name, receipt_id=self.id
        )
        return request._action_open()
