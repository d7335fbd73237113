import logging
from datetime import timedelta
from decimal import Decimal

import psycopg2

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.osv import expression
from odoo.service.model import retrying
from odoo.tools import float_compare, float_is_zero, float_round
from odoo.tools.misc import format_datetime

from .. import const
from ..amounts import shillings, whole_shillings
from ..daraja.client import PATHS, DarajaError, kenya_timestamp, stk_password
from ..daraja.payloads import PayloadError, parse_stk_callback, parse_stk_query
from ..daraja.phone import PhoneError, mask_msisdn, normalize_msisdn
from ..kenya_time import KENYA_TZ_NAME
from ..references import prompt_reference

_logger = logging.getLogger(__name__)

# After this long without a final answer, an STK prompt has certainly expired.
PROMPT_EXPIRY = timedelta(minutes=30)
# A cancelled 1037 ("unreachable") may still turn into a success; keep checking this long.
RECHECK_WINDOW = timedelta(hours=2)
# No new prompt for the same documents this long after a 1037: a late success comes
# while the first prompt is still alive on the network, minutes, not hours. One that
# comes later still is never silent credit: the invoice is paid, so it waits for
# review (_mpesa_why_document_settled). Longer, a customer whose phone was off could
# not pay for hours.
UNREACHABLE_HOLD = timedelta(minutes=5)


class MpesaNoTransactionYet(ValidationError):
    """An STK callback whose prompt is not known (yet)."""


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    mpesa_phone = fields.Char(string="M-PESA Phone", readonly=True)
    mpesa_merchant_request_id = fields.Char(string="MerchantRequestID", readonly=True)
    mpesa_checkout_request_id = fields.Char(
        string="CheckoutRequestID", readonly=True, index="btree_not_null", copy=False
    )
    # The receipt code M-PESA gave this payment; the ledger row is mpesa.receipt.
    mpesa_receipt_code = fields.Char(string="M-PESA Receipt", readonly=True, copy=False)
    mpesa_paid_amount = fields.Monetary(string="Amount Paid on M-PESA", readonly=True)
    mpesa_source_receipt_id = fields.Many2one(
        "mpesa.receipt",
        string="Paid With Receipt",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The M-PESA receipt whose money this transaction applies (set by the "
        "money path, mpesa.receipt._mpesa_take).",
    )
    mpesa_result_code = fields.Char(string="M-PESA Result Code", readonly=True)
    mpesa_account_reference = fields.Char(
        string="M-PESA Account Reference", readonly=True, index="btree_not_null"
    )
    mpesa_needs_review = fields.Boolean(
        string="Awaiting Review",
        readonly=True,
        help="Money was received but does not match this payment: finance must decide.",
    )
    mpesa_recheck = fields.Boolean(
        readonly=True,
        help="Ended without a success that may still arrive (e.g. phone unreachable): "
        "the status job keeps checking for a while.",
    )
    mpesa_last_query = fields.Datetime(string="Last Status Query", readonly=True)
    mpesa_pushed_at = fields.Datetime(
        string="Prompt Sent",
        readonly=True,
        copy=False,
        help="Written (and the row locked) before Daraja is called: a callback that "
        "sees it, or waits on the lock, knows the push is still in flight.",
    )
    mpesa_collection_id = fields.Many2one(
        "mpesa.collection",
        string="Requested by Staff",
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="The staff member's payment request that sent this prompt.",
    )
    mpesa_callback_ids = fields.One2many(
        "mpesa.callback", "transaction_id", string="M-PESA Callbacks", readonly=True
    )

    _sql_constraints = [
        (
            "mpesa_checkout_request_id_unique",
            "UNIQUE(mpesa_checkout_request_id)",
            "An M-PESA payment request belongs to one transaction only.",
        ),
        (
            "mpesa_receipt_unique",
            "UNIQUE(mpesa_receipt_code)",
            "An M-PESA receipt pays one transaction only.",
        ),
    ]

    # What ties a transaction to M-PESA money: written by the payment flows (as
    # superuser), never over RPC, which core opens to every Billing user.
    _mpesa_money_fields = frozenset(
        {
            "mpesa_phone",
            "mpesa_merchant_request_id",
            "mpesa_checkout_request_id",
            "mpesa_receipt_code",
            "mpesa_paid_amount",
            "mpesa_source_receipt_id",
            "mpesa_result_code",
            "mpesa_account_reference",
        }
    )

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `payment` so that an M-PESA payment of an order already
        invoiced pays the order's open invoices, oldest first, whichever way it was
        asked for (staff request, payment link, paybill quoting the order): `sale`
        reconciles a payment only with its transaction's invoices, and the invoices
        would stay due beside the money."""
        txs = super().create(vals_list)
        for tx in txs:
            order = tx.sale_order_ids
            if tx.provider_code == "mpesa" and len(order) == 1 and not tx.invoice_ids:
                order = order.sudo()
                paid = order._mpesa_in_order_currency(tx.amount, tx.currency_id)
                invoices = order._mpesa_invoices_to_pay(paid)
                if invoices:
                    tx.invoice_ids = invoices
        return txs

    def write(self, vals):
        """Override of `payment` to refuse, except as superuser, writes to the fields
        M-PESA alone sets (the money path writes them with sudo)."""
        written = self._mpesa_money_fields.intersection(vals)
        if written and not self.env.su:
            raise AccessError(
                self.env._(
                    "The M-PESA fields of a payment (%s) change only through M-PESA.",
                    ", ".join(sorted(written)),
                )
            )
        return super().write(vals)

    # === PAYMENT FRAMEWORK HOOKS === #

    def _get_specific_processing_values(self, processing_values):
        """Override of `payment` to return M-PESA-specific processing values: the phone to
        prefill and the token the payment form's push request carries.

        Note: self.ensure_one() from `_get_processing_values`"""
        res = super()._get_specific_processing_values(processing_values)
        if self.provider_code != "mpesa":
            return res
        partner = self.partner_id
        return {
            **res,
            "mpesa_phone": partner.mobile or partner.phone or "",
            "mpesa_access_token": self._mpesa_access_token(),
        }

    def _mpesa_access_token(self):
        from odoo.addons.payment import utils as payment_utils

        return payment_utils.generate_access_token(self.reference, self.amount)

    def _mpesa_check_access_token(self, token):
        from odoo.addons.payment import utils as payment_utils

        # A token sent as a list, an object or non-ASCII text is refused, not
        # compared (consteq raises TypeError on those).
        return (
            isinstance(token, str)
            and token.isascii()
            and payment_utils.check_access_token(token, self.reference, self.amount)
        )

    def _mpesa_lost_its_request(self):
        """A push whose Daraja answer never reached us (timeout, dropped connection):
        draft, with no CheckoutRequestID, and no push in flight (a push in flight
        holds the row and has written ``mpesa_pushed_at``; a failed one rolled it
        back). Only a push makes the signed callback URL, so its prompt was sent."""
        if not (
            len(self) == 1
            and self.provider_code == "mpesa"
            and self.state == "draft"
            and not self.mpesa_checkout_request_id
            and not self.mpesa_pushed_at
        ):
            return False
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "SELECT id FROM payment_transaction WHERE id = %s FOR UPDATE NOWAIT",
                    [self.id],
                )
        except psycopg2.errors.LockNotAvailable:
            return False
        self.invalidate_recordset()
        return self.state == "draft" and not self.mpesa_checkout_request_id

    def _mpesa_adopt_request(self, parsed):
        """Take the CheckoutRequestID of the prompt we sent but never heard of."""
        self.ensure_one()
        self.sudo().write(
            {
                "mpesa_checkout_request_id": parsed.checkout_request_id,
                "mpesa_merchant_request_id": parsed.merchant_request_id,
                "provider_reference": parsed.checkout_request_id,
                "mpesa_account_reference": self._mpesa_account_reference(),
            }
        )
        self._set_pending()

    def _post_process(self):
        """An STK prompt still waiting on the phone is not a payment yet: sale would
        treat it like a pending wire transfer and turn the shop cart into a sent
        quotation, so a declined prompt would leave nothing to pay again.

        A paid one whose invoice was cancelled, or paid by other money, after M-PESA
        confirmed it and before this job booked it, cannot pay that invoice: core
        books it as the customer's credit and tells nobody. It waits for finance
        instead, as when that happens while the prompt is open
        (_mpesa_why_document_settled)."""
        waiting = self.filtered(
            lambda tx: (
                tx.provider_code == "mpesa"
                and tx.state == "pending"
                and not tx.mpesa_needs_review
            )
        )
        # Read before core books anything: afterwards the invoice shows paid by us.
        unpayable = {tx: tx._mpesa_why_invoice_gone() for tx in self - waiting}
        res = super(PaymentTransaction, self - waiting)._post_process()
        for tx, why in unpayable.items():
            if why and tx.payment_id:
                tx._mpesa_unbook_for_review(why)
        return res

    def _mpesa_why_invoice_gone(self):
        """Why this paid M-PESA transaction, not booked yet, can no longer pay its
        invoice (cancelled, or paid in full by other money), or None."""
        if not (
            self.provider_code == "mpesa"
            and self.state == "done"
            and self.operation != "refund"
            and not self.is_post_processed
            and self.mpesa_source_receipt_id
        ):
            return None
        gone = self.invoice_ids.sudo().filtered(
            lambda inv: (
                inv.state == "cancel"
                or inv.payment_state in ("paid", "in_payment", "reversed")
            )
        )
        if not gone:
            return None
        return self.env._(
            "Invoice %(doc)s was cancelled or paid by other money after M-PESA "
            "confirmed this payment of KES %(paid)s, and before it was booked: the "
            "money waits for review instead of becoming the customer's credit.",
            doc=", ".join(gone.mapped("name")),
            paid=shillings(self.amount),
        )

    def _mpesa_unbook_for_review(self, why):
        """Undo what post-processing booked (the one undo, mpesa.receipt
        _mpesa_unapply): the receipt's money is unapplied and waits for review."""
        receipt = self.mpesa_source_receipt_id.sudo()
        receipt._mpesa_unapply(why)
        receipt.write({"state": "review", "review_reason": why, "review_cause": False})

    def _invoice_sale_orders(self):
        """Override of `sale` (automatic invoicing): an M-PESA payment quoting an order
        already invoiced pays that order's invoices (mpesa.receipt
        _mpesa_target_values); sale would replace them with the invoice it makes of
        what is left to invoice, or with none, and the payment would pay nothing."""
        paying_invoices = self.filtered(
            lambda tx: (
                tx.provider_code == "mpesa"
                and tx.invoice_ids.filtered(lambda move: move.state == "posted")
            )
        )
        return super(PaymentTransaction, self - paying_invoices)._invoice_sale_orders()

    def _cron_post_process(self):
        """Core's job rolls back a payment whose post-processing meets a concurrency
        error (the inbox, recovery or matching job writing the same invoice at that
        moment) and leaves it to its next run, ten minutes on: the invoice shows
        unpaid meanwhile. M-PESA payments are post-processed first here, each
        retried at once on a new snapshot; core's loop then takes the rest."""
        if not self and not self.env.registry.in_test_mode():
            for tx in self.search(
                [
                    ("provider_code", "=", "mpesa"),
                    ("state", "=", "done"),
                    ("is_post_processed", "=", False),
                    # as core's job: not forever
                    (
                        "last_state_change",
                        ">=",
                        fields.Datetime.subtract(fields.Datetime.now(), days=4),
                    ),
                ]
            ):
                tx._mpesa_post_process_retrying()
        return super()._cron_post_process()

    def _mpesa_post_process_retrying(self):
        try:
            retrying(self._post_process, self.env)
        except Exception:  # noqa: BLE001 - core's loop tries it next, and logs why
            self.env.cr.rollback()

    def _get_tx_from_notification_data(self, provider_code, notification_data):
        """The transaction of an STK callback: the prompt with its CheckoutRequestID;
        else the one the signed callback URL names (context ``mpesa_url_tx_id``)
        when its push lost Daraja's answer. Raises MpesaNoTransactionYet while no
        prompt has this CheckoutRequestID: the inbox keeps the body until one does."""
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != "mpesa" or len(tx) == 1:
            return tx
        parsed = self._mpesa_parse_stk(notification_data)
        tx = self.search(
            [
                ("provider_code", "=", "mpesa"),
                ("mpesa_checkout_request_id", "=", parsed.checkout_request_id),
            ]
        )
        url_tx = self.browse(self.env.context.get("mpesa_url_tx_id") or [])
        if not tx and url_tx and url_tx._mpesa_lost_its_request():
            # Our push timed out after Daraja accepted it: the signed URL names the
            # transaction, the body its request (a success is still verified by a
            # status query before it counts).
            url_tx._mpesa_adopt_request(parsed)
            tx = url_tx
        if not tx:
            # The callback outran Daraja's answer to our push (it is picked up when
            # that answer is stored), or nobody asked for it.
            raise MpesaNoTransactionYet(
                self.env._("No payment request with this CheckoutRequestID (yet).")
            )
        if url_tx and url_tx != tx:
            raise ValidationError(
                self.env._("The callback URL belongs to another payment.")
            )
        return tx

    def _process_notification_data(self, notification_data):
        """Apply the outcome of an STK prompt, once: a repeated callback (Daraja
        retries, replays) changes nothing."""
        super()._process_notification_data(notification_data)
        if self.provider_code != "mpesa":
            return
        parsed = self._mpesa_parse_stk(notification_data)
        self._mpesa_lock()
        if self._mpesa_has_outcome(parsed):
            if self._mpesa_paid_again(parsed):
                self._mpesa_record_second_payment(parsed)
            elif self._mpesa_code_follows(parsed):
                self._mpesa_take_late_code(parsed)
            return
        if parsed.is_success:
            self._mpesa_apply_success(
                parsed.amount,
                parsed.receipt,
                parsed.phone,
                parsed.transaction_date,
                verify=True,
            )
        else:
            self._mpesa_apply_failure(parsed.result_code, parsed.result_desc)

    @api.model
    def _mpesa_parse_stk(self, notification_data):
        try:
            return parse_stk_callback(notification_data)
        except PayloadError as error:
            raise ValidationError(self.env._("M-PESA: %s", error)) from error

    def _mpesa_has_outcome(self, parsed):
        """Whether this outcome is already recorded: paid, the same success waiting
        for its verification, or the same failure."""
        return (
            self.state == "done"
            or (parsed.is_success and self.mpesa_receipt_code == parsed.receipt)
            or (
                self.state in ("cancel", "error")
                and self.mpesa_result_code == str(parsed.result_code)
            )
        )

    def _mpesa_code_follows(self, parsed):
        """Whether this success brings the receipt code of a payment the status query
        already confirmed: Daraja's STK query answers without one, so the payment
        is done with its code "to follow", and this late callback is where it comes."""
        return (
            self.state == "done"
            and parsed.is_success
            and bool(parsed.receipt)
            and not self.mpesa_receipt_code
            and (parsed.amount is None or self._mpesa_amount_matches(parsed.amount))
            and not self._mpesa_receipt_spent(parsed.receipt)
        )

    def _mpesa_take_late_code(self, parsed):
        """The payment's money goes on the ledger under the code that came late: a
        receipt applied to this payment, with its bank line."""
        self.sudo().write(
            {
                "mpesa_receipt_code": parsed.receipt,
                "mpesa_paid_amount": float(parsed.amount or self.amount),
                "mpesa_phone": parsed.phone or self.mpesa_phone,
            }
        )
        self._mpesa_register_receipt(parsed.transaction_date, applied=True)

    def _mpesa_paid_again(self, parsed):
        """Whether this success is a second payment: the prompt was paid on the phone
        after other money (a paybill payment quoting its reference, say) had paid
        this transaction under another receipt code."""
        return (
            self.state == "done"
            and parsed.is_success
            and bool(self.mpesa_receipt_code)
            and parsed.receipt != self.mpesa_receipt_code
        )

    def _mpesa_record_second_payment(self, parsed):
        """The customer paid twice: the prompt's money is a receipt of its own, never
        lost. Confirmed by Transaction Status like a paybill payment, it is then
        applied by the reference the prompt showed; the document is paid already,
        so it waits for review (a possible duplicate, to send back or keep)."""
        receipt = (
            self.env["mpesa.receipt"]
            .sudo()
            ._record(
                {
                    "name": parsed.receipt,
                    "provider_id": self.provider_id.id,
                    "amount": float(parsed.amount),
                    "phone": parsed.phone,
                    "paid_at": parsed.transaction_date or fields.Datetime.now(),
                    "partner_id": self.partner_id.id,
                    "reference": self._mpesa_account_reference(),
                    "verification": "pending",
                },
                channel="stk",
                lock=True,
            )
        )
        _logger.warning(
            "M-PESA transaction %s paid again (receipt %s)",
            self.reference,
            receipt.name,
        )
        if receipt.verification == "pending" and not receipt.application_ids:
            receipt._mpesa_try_ask_confirmation()

    # === STK PUSH === #

    def _mpesa_account_reference(self):
        """What the customer sees on the phone: the document number, <= 12 chars."""
        names = []
        for fname in ("invoice_ids", "sale_order_ids"):
            if fname in self._fields:
                names += self[fname].mapped("name")
        base = names[0] if names else self.reference
        return prompt_reference(base, const.ACCOUNT_REFERENCE_MAX) or "PAYMENT"

    def _mpesa_whole_amount(self):
        """The amount as whole shillings, or a clear error why one push cannot pay it."""
        amount = float_round(self.amount, precision_rounding=self.currency_id.rounding)
        if self.currency_id.name not in const.SUPPORTED_CURRENCIES:
            raise ValidationError(
                self.env._("M-PESA only takes payments in Kenyan Shillings (KES).")
            )
        if not float_is_zero(amount - round(amount), precision_digits=2):
            raise ValidationError(
                self.env._(
                    "M-PESA takes whole shillings only: %(amount)s has cents. "
                    "Please pay another way or ask us to round the amount.",
                    amount=amount,
                )
            )
        if amount < const.AMOUNT_MIN:
            raise ValidationError(
                self.env._("The amount to pay must be at least KES 1.")
            )
        if amount > const.AMOUNT_MAX:
            raise ValidationError(
                self.env._(
                    "M-PESA accepts at most KES %(max)s in one payment; this one is KES "
                    "%(amount)s. Please pay in several parts or by bank transfer.",
                    max=whole_shillings(const.AMOUNT_MAX),
                    amount=whole_shillings(amount),
                )
            )
        return round(amount)

    @api.model
    def _mpesa_normalize_phone(self, phone):
        if phone is not None and (
            not isinstance(phone, (str, int)) or isinstance(phone, bool)
        ):
            # A list or an object from a hostile client: its repr may hold a number.
            raise ValidationError(
                self.env._(
                    "Enter the Kenyan mobile number registered with M-PESA, for "
                    "example 0712 345 678."
                )
            )
        try:
            return normalize_msisdn(phone)
        except PhoneError as error:
            if not str(phone or "").strip():
                raise ValidationError(
                    self.env._("Enter the M-PESA phone number that will pay.")
                ) from error
            raise ValidationError(
                self.env._(
                    "%s is not a Kenyan mobile number. Enter the number registered with "
                    "M-PESA, for example 0712 345 678.",
                    phone,
                )
            ) from error

    @api.model
    def _mpesa_rechecking_domain(self, within=RECHECK_WINDOW):
        """Prompts that ended without a success that may still come (a result of
        const.RECOVERABLE_RESULT_CODES, such as 1037): the status job keeps asking
        M-PESA about them for RECHECK_WINDOW."""
        return [
            ("state", "=", "cancel"),
            ("mpesa_recheck", "=", True),
            ("last_state_change", ">=", fields.Datetime.now() - within),
        ]

    def _mpesa_being_rechecked(self):
        """Shown as failed, yet M-PESA may still complete it in the next minutes: the
        status page keeps polling, and no second prompt goes out meanwhile."""
        self.ensure_one()
        return bool(
            self.filtered_domain(self._mpesa_rechecking_domain(within=UNREACHABLE_HOLD))
        )

    def _mpesa_open_sibling(self):
        """Another payment request for the same documents still waiting on a phone,
        or one that failed but may still go through (being rechecked)."""
        self.ensure_one()
        domain = [
            ("id", "!=", self.id),
            ("provider_code", "=", "mpesa"),
            ("mpesa_checkout_request_id", "!=", False),
            ("mpesa_needs_review", "=", False),
            *expression.OR(
                [
                    [("state", "=", "pending")],
                    self._mpesa_rechecking_domain(within=UNREACHABLE_HOLD),
                ]
            ),
        ]
        docs = []
        for fname in ("invoice_ids", "sale_order_ids"):
            if fname in self._fields and self[fname]:
                docs.append((fname, "in", self[fname].ids))
        if not docs:
            return self.browse()
        return self.search(domain + docs[:1], order="id desc", limit=1)

    def _mpesa_send_stk_push(self, phone, client_address=None, requested_by=None):
        """Send the STK prompt to ``phone``; the transaction becomes pending. For the
        limits, who asked: ``client_address`` (a customer's internet address) or
        ``requested_by`` (a staff member)."""
        self.ensure_one()
        if self.provider_code != "mpesa":
            raise ValidationError(self.env._("This is not an M-PESA transaction."))
        self._mpesa_check_company()
        msisdn = self._mpesa_normalize_phone(phone)
        self._mpesa_check_not_sent()  # the telling refusal first; checked again locked
        self._mpesa_check_not_over_due(self._mpesa_whole_amount())
        self.env["mpesa.push.attempt"]._lock_for_push(self, msisdn)
        if not self._mpesa_admit_push(msisdn, client_address, requested_by):
            return {}
        return self._mpesa_push(msisdn)

    def _mpesa_check_company(self):
        """The prompt pays into this provider's shortcode and is booked in its
        company: only documents that company may take payments for, as the payment
        form offers (its company or a parent of it). Core's transaction routes take
        whatever provider the request names: for another company's invoice the money
        reached this shortcode, and its payment could never be made."""
        documents = self.env["mpesa.push.attempt"]._documents_of(self)
        if any(
            doc != self and self.company_id not in doc.company_id.parent_ids
            for doc in documents
        ):
            raise ValidationError(
                self.env._(
                    "This M-PESA account cannot pay %s: reload the page to pay it.",
                    ", ".join(doc.display_name for doc in documents),
                )
            )

    def _mpesa_check_not_over_due(self, amount):
        """A prompt never asks for more than the documents still owe: core lets the
        payment form choose the amount."""
        Receipt = self.env["mpesa.receipt"]
        documents = self.env["mpesa.push.attempt"]._documents_of(self)
        dues = [Receipt._amount_due(doc) for doc in documents if doc != self]
        dues = [due for due in dues if due is not None]
        if not dues:
            return
        due = sum(dues)
        if float_compare(amount, due, precision_rounding=self.currency_id.rounding) > 0:
            raise ValidationError(
                self.env._(
                    "This payment of KES %(amount)s is more than the KES %(due)s still "
                    "due: reload the page to pay the right amount.",
                    amount=whole_shillings(amount),
                    due=shillings(due),
                )
            )

    def _mpesa_check_not_sent(self):
        if self.state != "draft" or self.mpesa_checkout_request_id:
            raise ValidationError(self.env._("This payment request was already sent."))

    def _mpesa_admit_push(self, msisdn, client_address, requested_by=None):
        """Whether this push may go out (under the push locks): not sent yet, no
        prompt for the same document still waiting, within the limits. False when
        the document turned out to be paid already (this request is cancelled)."""
        self._mpesa_check_not_sent()
        sibling = self._mpesa_open_sibling()
        if sibling:
            # Ask Safaricom first: the earlier prompt may have ended meanwhile.
            sibling._mpesa_query_and_apply()
            if sibling.state == "done":
                # Not an error: commit what M-PESA said, and say so on the status page.
                self._set_canceled(
                    self.env._(
                        "This was paid already by the earlier payment request: no new "
                        "payment request was sent."
                    )
                )
                return False
            if sibling.state == "pending":
                raise ValidationError(
                    self.env._(
                        "A payment request for this document is already waiting on "
                        "%(phone)s. Complete it on the phone or wait a minute for it to "
                        "expire, then try again.",
                        phone=mask_msisdn(sibling.mpesa_phone),
                    )
                )
            if sibling._mpesa_being_rechecked():
                raise sibling._mpesa_may_still_succeed_error()
        self.env["mpesa.push.attempt"]._admit(
            self, msisdn, client_address, requested_by
        )
        return True

    def _mpesa_may_still_succeed_error(self):
        """Why no new prompt goes out while this one, failed as unreachable, may still
        be paid: a second prompt approved too would take the money twice."""
        until = self.last_state_change + UNREACHABLE_HOLD
        return ValidationError(
            self.env._(
                "The earlier payment request to %(phone)s could not reach the phone, "
                "but it may still go through: M-PESA is still checking it, so no new "
                "request was sent (you would pay twice). If you received an M-PESA "
                "confirmation SMS, it is paid: there is nothing more to do. "
                "Otherwise, try again after %(until)s (Kenya time).",
                phone=mask_msisdn(self.mpesa_phone),
                until=format_datetime(
                    self.env, until, tz=KENYA_TZ_NAME, dt_format="short"
                ),
            )
        )

    def _mpesa_push(self, msisdn):
        """Call Daraja's STK push for this transaction (admitted by the caller)."""
        amount = self._mpesa_whole_amount()
        # Marks (and locks) the push as in flight for a callback racing our answer.
        self.mpesa_pushed_at = fields.Datetime.now()
        self.env.flush_all()
        payload = self._mpesa_stk_payload(msisdn, amount)
        answer = self._mpesa_stk_send(payload)
        self.sudo().write(
            {
                "mpesa_phone": msisdn,
                "mpesa_account_reference": payload["AccountReference"],
                "mpesa_merchant_request_id": answer.get("MerchantRequestID"),
                "mpesa_checkout_request_id": answer.get("CheckoutRequestID"),
                "provider_reference": answer.get("CheckoutRequestID"),
            }
        )
        self._set_pending(
            self.env._(
                "We sent a payment request of KES %(amount)s to %(phone)s. Unlock your phone "
                "and enter your M-PESA PIN to pay.",
                amount=whole_shillings(amount),
                phone=mask_msisdn(msisdn),
            )
        )
        self._mpesa_process_early_callbacks()
        return answer

    def _mpesa_stk_payload(self, msisdn, amount):
        """The body of Daraja's STK push request; apart from the call so the push reads
        as its steps (mark in flight, send, record, look for early callbacks)."""
        provider = self.provider_id.sudo()
        timestamp = kenya_timestamp()
        token = provider._mpesa_make_token("stk", self.id)
        return {
            "BusinessShortCode": provider.mpesa_shortcode,
            "Password": stk_password(
                provider.mpesa_shortcode, provider.mpesa_passkey, timestamp
            ),
            "Timestamp": timestamp,
            "TransactionType": "CustomerBuyGoodsOnline"
            if provider.mpesa_shortcode_type == "till"
            else "CustomerPayBillOnline",
            "Amount": amount,
            "PartyA": msisdn,
            "PartyB": provider._mpesa_party_b(),
            "PhoneNumber": msisdn,
            "CallBackURL": provider._mpesa_callback_url(f"/payment/daraja/stk/{token}"),
            "AccountReference": self._mpesa_account_reference(),
            "TransactionDesc": (self.company_id.name or "Payment")[
                : const.TRANSACTION_DESC_MAX
            ],
        }

    def _mpesa_stk_send(self, payload):
        """Post the STK push; Daraja's refusal becomes the customer's error (the
        request was never sent, so the transaction stays a draft)."""
        provider = self.provider_id.sudo()
        try:
            return provider._mpesa_client().post(PATHS["stk_push"], payload)
        except DarajaError as error:
            _logger.warning("STK push for %s refused: %s", self.reference, error.code)
            raise ValidationError(
                self.env._(
                    "M-PESA could not send the payment request: %(msg)s",
                    msg=error.message,
                )
            ) from error

    def _mpesa_process_early_callbacks(self):
        """A callback may have arrived before Daraja answered us: it waits in the
        inbox, committed after this transaction began (so invisible to it, except
        under test mode's single transaction): look now, and again once we commit,
        rather than wait for the inbox job."""
        self.env["mpesa.callback"].sudo()._waiting_for(self)._process()
        tx_id, registry = self.id, self.env.registry

        @self.env.cr.postcommit.add
        def _process_waiting_after_commit():
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                tx = env["payment.transaction"].browse(tx_id)
                for callback in env["mpesa.callback"]._waiting_for(tx):
                    callback._process_committed()

    # === OUTCOMES === #

    def _mpesa_lock(self):
        """Serialize every state change of this transaction across workers."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT id FROM payment_transaction WHERE id = %s FOR UPDATE", [self.id]
        )
        self.invalidate_recordset()

    def _mpesa_amount_matches(self, amount):
        return (
            float_compare(
                float(amount), self.amount, precision_rounding=self.currency_id.rounding
            )
            == 0
        )

    def _mpesa_apply_success(self, amount, receipt, phone, paid_at, verify):
        """A success was reported (callback) or confirmed (status query)."""
        self.ensure_one()
        if self.state == "done":
            return  # idempotent: the same success again changes nothing
        if self._mpesa_receipt_conflict(receipt):
            return
        vals = {"mpesa_result_code": "0"}
        if receipt:
            vals["mpesa_receipt_code"] = receipt
        if amount is not None:
            vals["mpesa_paid_amount"] = float(amount)
        if phone:
            vals["mpesa_phone"] = phone
        self.sudo().write(vals)
        if amount is not None and not self._mpesa_amount_matches(amount):
            self._mpesa_hold_other_amount(amount, receipt, paid_at)
            return
        if verify and not self._mpesa_success_confirmed(receipt):
            return
        settled = self._mpesa_why_document_settled()
        if settled:
            self._mpesa_register_receipt(paid_at)
            self._mpesa_flag_review(settled)
            return
        self._mpesa_mark_paid(paid_at)

    def _mpesa_why_document_settled(self):
        """Why the invoice this prompt was for can no longer take its money, if it
        cannot: cancelled or back in draft, or paid by other money while the customer
        answered. Paid anyway, the money would be silent credit; it waits for
        finance instead. None when the invoice still asks for it."""
        receipts = self.env["mpesa.receipt"]
        for invoice in self.invoice_ids.sudo():
            if invoice.state != "posted":
                return self.env._(
                    "Invoice %s was cancelled or reset to draft before the payment "
                    "came. The payment is awaiting review by our team.",
                    invoice.name,
                )
            due = receipts._amount_due(invoice)
            if (
                float_compare(
                    due, self.amount, precision_rounding=self.currency_id.rounding
                )
                < 0
            ):
                return self.env._(
                    "Invoice %(doc)s had KES %(due)s left to pay when this payment of "
                    "KES %(paid)s came: it was paid meanwhile. The payment is awaiting "
                    "review by our team.",
                    doc=invoice.name,
                    due=shillings(max(due, 0.0)),
                    paid=shillings(self.amount),
                )
        return None

    def _mpesa_receipt_conflict(self, receipt):
        """Whether ``receipt`` cannot pay this transaction (it already has another
        receipt, or the receipt paid another payment): flagged for review, so that
        one receipt never books twice. True when flagged."""
        if receipt and self.mpesa_receipt_code and receipt != self.mpesa_receipt_code:
            self._mpesa_flag_review(
                self.env._(
                    "A second M-PESA receipt %(new)s was reported for this payment "
                    "(already %(old)s).",
                    new=receipt,
                    old=self.mpesa_receipt_code,
                )
            )
            return True
        if receipt and self._mpesa_receipt_spent(receipt):
            self._mpesa_flag_review(
                self.env._(
                    "Receipt %s already paid another payment: this one is awaiting review.",
                    receipt,
                )
            )
            return True
        return False

    def _mpesa_hold_other_amount(self, amount, receipt, paid_at):
        """Another amount than we asked for: the STK query cannot confirm an amount, so
        the receipt waits unconfirmed (not booked) until Transaction Status, a statement
        or a Pull row confirms it (a forged body books nothing)."""
        self._mpesa_register_receipt(paid_at, confirmed=False)
        self._mpesa_flag_review(
            self.env._(
                "Received KES %(paid)s on M-PESA (receipt %(receipt)s) for a payment of "
                "KES %(expected)s. The payment is awaiting review by our team.",
                paid=shillings(Decimal(amount)),
                receipt=receipt or "-",
                expected=shillings(self.amount),
            )
        )

    def _mpesa_success_confirmed(self, receipt):
        """Whether Safaricom's status query confirms a reported success (a callback is
        only believed once M-PESA says so): no answer leaves the payment pending, another
        result code sends it to review."""
        outcome = self._mpesa_query()
        if outcome is None or outcome.result_code is None:
            self._mpesa_set_pending(
                self.env._("Payment received, confirming it with M-PESA.")
            )
            return False
        if outcome.result_code != 0:
            if receipt and self._mpesa_waiting_receipts(receipt):
                # Money that came another way (paybill, statement) waited on this
                # prompt: the prompt failed, not that money, which is released.
                self._mpesa_apply_failure(outcome.result_code, outcome.result_desc)
                return False
            self._mpesa_flag_review(
                self.env._(
                    "M-PESA reported receipt %(receipt)s but its status query answers "
                    "%(code)s (%(desc)s). The payment is awaiting review.",
                    receipt=receipt or "-",
                    code=outcome.result_code,
                    desc=outcome.result_desc,
                )
            )
            return False
        return True

    def _mpesa_mark_paid(self, paid_at):
        """Book the receipt and close the transaction as paid; the framework's
        post-processing job then reconciles the document."""
        self._mpesa_register_receipt(paid_at, applied=True)
        # The customer reads it on the thank-you page: their language, not the callback's.
        customer_env = self.with_context(lang=self.partner_lang or self.env.lang).env
        message = (
            customer_env._("Paid by M-PESA, receipt %s.", self.mpesa_receipt_code)
            if (self.mpesa_receipt_code)
            else customer_env._(
                "Paid by M-PESA (confirmed by status query; receipt code to follow)."
            )
        )
        self.write({"mpesa_needs_review": False, "mpesa_recheck": False})
        self._set_done(message, extra_allowed_states=("cancel",))
        # The customer's one message for this payment is the receipt's
        # (mpesa.receipt._mpesa_issue_receipt, by a job once the money is applied).
        self.env.ref("payment.cron_post_process_payment_tx")._trigger()

    def _mpesa_apply_failure(self, result_code, result_desc):
        self.ensure_one()
        if self.state == "done" or self.mpesa_needs_review:
            return  # a late failure never undoes received money
        # The customer reads this on the status page: their language, not the callback's.
        target, message = self.with_context(
            lang=self.partner_lang or self.env.lang
        )._mpesa_result_message(result_code)
        self.sudo().write(
            {
                "mpesa_result_code": str(result_code),
                "mpesa_recheck": result_code in const.RECOVERABLE_RESULT_CODES,
            }
        )
        if target == "cancel":
            self._set_canceled(message, extra_allowed_states=("error",))
        else:
            self._set_error(message)
        for receipt in self._mpesa_waiting_receipts():
            receipt._mpesa_release_from_push(self)

    def _mpesa_waiting_receipts(self, code=None):
        """The money waiting on this prompt that is not the prompt's own: a paybill
        payment, a statement row or a status query result tied to it while it was
        open (mpesa.receipt._apply_to_pending_push), not applied yet. ``code``: only
        that receipt."""
        self.ensure_one()
        return (
            self.env["mpesa.receipt"]
            .sudo()
            .search(
                [
                    ("transaction_id", "=", self.id),
                    ("state", "=", "received"),
                    ("application_ids", "=", False),
                    *([("name", "=", code)] if code else []),
                ]
            )
        )

    @api.model
    def _mpesa_result_message(self, result_code):
        target, message = const.RESULT_CODES.get(result_code, const.UNKNOWN_RESULT)
        if result_code not in const.RESULT_CODES:
            # A lazy text takes no arguments once defined: format its translation.
            return target, self.env._(message) % result_code  # pylint: disable=translation-not-lazy
        return target, self.env._(message)

    def _mpesa_set_pending(self, message):
        if self.state == "pending":
            self.state_message = message
        else:
            self._set_pending(message, extra_allowed_states=("cancel", "error"))

    def _mpesa_flag_review(self, message):
        self.write({"mpesa_needs_review": True, "mpesa_recheck": False})
        self._mpesa_set_pending(message)
        _logger.warning("M-PESA transaction %s needs review", self.reference)

    def _mpesa_receipt_spent(self, code):
        """True when the ledger's receipt ``code`` can no longer pay this transaction:
        its money already paid something else."""
        ledger = (
            self.env["mpesa.receipt"]
            .sudo()
            .search([("name", "=", code), ("provider_id", "=", self.provider_id.id)])
        )
        return (
            bool(ledger)
            and self not in ledger.application_ids
            and (
                float_compare(
                    self.amount,
                    ledger._mpesa_left(),
                    precision_rounding=self.currency_id.rounding,
                )
                > 0
            )
        )

    def _mpesa_register_receipt(self, paid_at, applied=False, confirmed=True):
        """The money on the ledger; ``applied`` once it pays this transaction (the
        money path records it on the receipt). ``confirmed``: False when M-PESA has
        not confirmed the amount, which is then asked for."""
        if not self.mpesa_receipt_code:
            return
        receipt = (
            self.env["mpesa.receipt"]
            .sudo()
            ._record(
                {
                    "name": self.mpesa_receipt_code,
                    "provider_id": self.provider_id.id,
                    "amount": self.mpesa_paid_amount or self.amount,
                    "phone": self.mpesa_phone,
                    "paid_at": paid_at or fields.Datetime.now(),
                    "transaction_id": self.id,
                    "partner_id": self.partner_id.id,
                    "reference": self._mpesa_account_reference(),
                    "verification": "verified" if confirmed else "pending",
                },
                channel="stk",
            )
        )
        if not confirmed:
            receipt._mpesa_try_ask_confirmation()
            return
        if receipt.verification == "pending" and receipt._mpesa_same_amount(
            self.mpesa_paid_amount or self.amount
        ):
            receipt._mpesa_confirmed_by_prompt()
        if applied and self not in receipt.application_ids:
            receipt._mpesa_take(self)
            receipt.write(
                {"state": "applied", "review_reason": False, "review_cause": False}
            )

    # === STATUS QUERY (late or missing confirmations) === #

    def _mpesa_query(self):
        """Ask Daraja how the prompt ended. None if it could not say."""
        self.ensure_one()
        provider = self.provider_id.sudo()
        timestamp = kenya_timestamp()
        payload = {
            "BusinessShortCode": provider.mpesa_shortcode,
            "Password": stk_password(
                provider.mpesa_shortcode, provider.mpesa_passkey, timestamp
            ),
            "Timestamp": timestamp,
            "CheckoutRequestID": self.mpesa_checkout_request_id,
        }
        self.mpesa_last_query = fields.Datetime.now()
        try:
            answer = provider._mpesa_client().post(PATHS["stk_query"], payload)
        except DarajaError as error:
            if error.code == const.ERROR_STILL_PROCESSING:
                return parse_stk_query(
                    {"CheckoutRequestID": self.mpesa_checkout_request_id}
                )
            _logger.info("STK query for %s failed: %s", self.reference, error.code)
            return None
        try:
            return parse_stk_query(answer, const.QUERY_PENDING_RESULT_CODES)
        except PayloadError:
            _logger.warning("Unreadable STK query answer for %s", self.reference)
            return None

    def _mpesa_query_and_apply(self):
        """Query the prompt's status and apply a final answer. Returns the outcome."""
        self.ensure_one()
        if not self.mpesa_checkout_request_id or self.mpesa_needs_review:
            return None
        self._mpesa_lock()
        if self.state == "done":
            return None
        outcome = self._mpesa_query()
        if outcome is None:
            return None
        if outcome.result_code is None:
            if (
                self.create_date
                and self.create_date < fields.Datetime.now() - PROMPT_EXPIRY
            ):
                self._mpesa_apply_failure(1019, outcome.result_desc)
            return outcome
        if outcome.result_code == 0:
            self._mpesa_apply_success(
                Decimal(str(self.mpesa_paid_amount))
                if self.mpesa_paid_amount
                else None,
                self.mpesa_receipt_code,
                None,
                None,
                verify=False,
            )
        elif self.state in ("draft", "pending"):
            self._mpesa_apply_failure(outcome.result_code, outcome.result_desc)
        return outcome

    def action_mpesa_query_status(self):
        for tx in self.filtered(lambda t: t.provider_code == "mpesa"):
            tx._mpesa_query_and_apply()
        return True

    @api.model
    def _cron_mpesa_query_pending(self):
        now = fields.Datetime.now()
        for provider in self.env["payment.provider"].search([("code", "=", "mpesa")]):
            txs = self.search(
                [
                    ("provider_id", "=", provider.id),
                    ("mpesa_checkout_request_id", "!=", False),
                    ("mpesa_needs_review", "=", False),
                    "|",
                    "&",
                    ("state", "=", "pending"),
                    (
                        "last_state_change",
                        "<=",
                        now - timedelta(minutes=provider.mpesa_query_delay),
                    ),
                    "&",
                    "&",
                    ("state", "=", "cancel"),
                    ("mpesa_recheck", "=", True),
                    ("last_state_change", ">=", now - RECHECK_WINDOW),
                ],
                limit=200,
            )
            for tx in txs:
                try:
                    with self.env.cr.savepoint():
                        tx._mpesa_query_and_apply()
                except Exception:  # one bad transaction must not stop the others
                    _logger.exception("Status query of %s failed", tx.reference)

    # === C2B === #

    @api.model
    def _mpesa_pending_push_for(self, bill_ref, amount, phone=None, provider=None):
        """The STK push a confirmation belongs to (same reference, or else same plain
        phone, and same amount, still waiting for its callback), if exactly one.
        ``provider``: the shortcode the money reached; a push through another
        shortcode (the company's till, say) is another payment."""
        if bill_ref:
            # As the prompt showed it: the invoice number typed as printed
            # (INV/2026/00074) is the prompt's INV202600074.
            reference = prompt_reference(bill_ref, const.ACCOUNT_REFERENCE_MAX)
            match = [("mpesa_account_reference", "=", reference)]
        else:
            try:
                match = [("mpesa_phone", "=", normalize_msisdn(phone))]
            except PhoneError:  # none, masked or hashed: nothing to go by
                return self.browse()
        txs = self.search(
            [
                ("provider_code", "=", "mpesa"),
                *([("provider_id", "=", provider.id)] if provider else []),
                # A prompt the customer cancelled cannot turn into a payment; one that
                # did not reach the phone (1037) still can.
                "|",
                ("state", "=", "pending"),
                "&",
                ("state", "=", "cancel"),
                ("mpesa_recheck", "=", True),
                ("mpesa_receipt_code", "=", False),
                *match,
                ("mpesa_checkout_request_id", "!=", False),
                ("create_date", ">=", fields.Datetime.now() - RECHECK_WINDOW),
            ]
        )
        txs = txs.filtered(lambda t: t._mpesa_amount_matches(amount))
        return txs if len(txs) == 1 else self.browse()

    @api.model
    def _mpesa_create_from_receipt(self, receipt, provider, values):
        """A done transaction for money that came by paybill/till (no push)."""
        method = self.env.ref("payment.payment_method_mpesa")
        tx = self.create(
            {
                "provider_id": provider.id,
                "payment_method_id": method.id,
                "amount": receipt.amount,
                "currency_id": receipt.currency_id.id,
                "reference": self._compute_reference(
                    "mpesa", prefix=f"C2B-{receipt.name}"
                ),
                "operation": "online_direct",
                "mpesa_receipt_code": receipt.name,
                "mpesa_paid_amount": receipt.amount,
                "mpesa_phone": receipt.phone,
                "provider_reference": receipt.name,
                "mpesa_account_reference": receipt.reference,
                **values,
            }
        )
        tx._set_done(
            self.env._("Paid by M-PESA paybill/till, receipt %s.", receipt.name)
        )
        self.env.ref("payment.cron_post_process_payment_tx")._trigger()
        return tx
