import json
import logging

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY, retrying

from .. import const
from ..daraja.payloads import PayloadError, parse_c2b
from .payment_transaction import MpesaNoTransactionYet

_logger = logging.getLogger(__name__)

RETRYABLE_STATES = ("received", "unmatched", "error")
# Kinds whose money is applied by the inbox job after Safaricom has had its answer. A
# C2B validation is not: its answer (accept or refuse the payment) is the processing.
APPLIED_LATER = ("stk", "c2b_confirmation", "result", "timeout")
INBOX_BATCH = 50


class MpesaCallback(models.Model):
    """The raw inbox: every body Safaricom POSTs, stored before it is processed.

    Processing is idempotent and can be replayed (button, recovery job), so a crash
    between storing and processing loses nothing.
    """

    _name = "mpesa.callback"
    _description = "M-PESA Callback"
    _order = "id desc"
    _rec_name = "display_name"

    kind = fields.Selection(
        [
            ("stk", "STK Push Result"),
            ("c2b_validation", "C2B Validation"),
            ("c2b_confirmation", "C2B Confirmation"),
            ("result", "API Result"),
            ("timeout", "API Queue Timeout"),
        ],
        required=True,
        readonly=True,
    )
    provider_id = fields.Many2one("payment.provider", readonly=True, index=True)
    company_id = fields.Many2one(
        related="provider_id.company_id", store=True, readonly=True
    )
    transaction_id = fields.Many2one(
        "payment.transaction", readonly=True, index=True, ondelete="set null"
    )
    body = fields.Text(readonly=True, help="The request body exactly as received.")
    remote_addr = fields.Char(string="Sender Address", readonly=True)
    checkout_request_id = fields.Char(
        string="CheckoutRequestID", readonly=True, index=True
    )
    receipt_code = fields.Char(readonly=True, index=True)
    result_code = fields.Char(readonly=True, help="The STK ResultCode reported.")
    receipt_id = fields.Many2one("mpesa.receipt", readonly=True, index=True)
    api_request_id = fields.Many2one(
        "mpesa.api.request", readonly=True, index="btree_not_null", ondelete="set null"
    )
    url_request_number = fields.Integer(
        string="Request No. in the URL",
        readonly=True,
        help="The API request our signed result URL names. M-PESA may answer before "
        "the request is committed: the request is then looked up when processed.",
    )
    state = fields.Selection(
        [
            ("received", "Received"),
            ("processed", "Processed"),
            ("duplicate", "Duplicate"),
            ("unmatched", "Unmatched"),
            ("error", "Error"),
        ],
        default="received",
        required=True,
        readonly=True,
        index=True,
    )
    error = fields.Text(readonly=True)
    answer = fields.Char(readonly=True, help="What we answered (C2B validation).")
    attempts = fields.Integer(readonly=True)
    processed_at = fields.Datetime(readonly=True)

    @api.depends("kind", "create_date")
    def _compute_display_name(self):
        """Override of `base`: the kind and number, as the inbox list shows them."""
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for cb in self:
            cb.display_name = f"{labels.get(cb.kind, cb.kind)} #{cb.id}"

    @api.model
    def _store(
        self,
        kind,
        body,
        provider=None,
        transaction=None,
        remote_addr=None,
        request_number=None,
        kept_because=None,
    ):
        """Keep the raw body. Callers commit this before any processing. A body
        ``kept_because`` of a reason is kept for a person, never processed; any other
        body of a kind applied later wakes the inbox job. ``request_number``: the API
        request a result URL names."""
        callback = self.create(
            {
                "kind": kind,
                "body": self._storable_text(body),
                "provider_id": provider.id if provider else False,
                "transaction_id": transaction.id if transaction else False,
                "remote_addr": remote_addr,
                "api_request_id": self._request_named(request_number, provider).id,
                "url_request_number": request_number or False,
                "state": "error" if kept_because else "received",
                "error": kept_because or False,
            }
        )
        if not kept_because and kind in APPLIED_LATER:
            self.env.ref("mpesa_payment.cron_apply_inbox").sudo()._trigger()
        return callback

    @api.model
    def _storable_text(self, body):
        """``body`` as a text column keeps it: UTF-8 text (as Daraja's JSON always
        is) exactly as received; what the column cannot hold visible rather than lost,
        or refused by PostgreSQL with the whole body: an invalid UTF-8 byte as
        ``\\xNN``, a lone surrogate as ``\\udNNN``, a NUL as ``\\x00`` (such a body is
        not Daraja's JSON anyway)."""
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="backslashreplace")
        if isinstance(body, str):
            body = body.encode("utf-8", errors="backslashreplace").decode("utf-8")
            body = body.replace("\x00", "\\x00")
        return body

    def _payload(self):
        try:
            data = json.loads(self.body or "")
        except (ValueError, RecursionError) as error:
            raise PayloadError(self.env._("The body is not valid JSON.")) from error
        if not isinstance(data, dict):
            raise PayloadError(self.env._("The body is not a JSON object."))
        return data

    def _process(self):
        """Process each callback once; failures are recorded, never raised."""
        for cb in self:
            if cb.state not in RETRYABLE_STATES:
                continue
            cb.attempts += 1
            try:
                with self.env.cr.savepoint():
                    state = getattr(cb, f"_process_{cb.kind}")()
                cb.write(
                    {
                        "state": state,
                        "error": False,
                        "processed_at": fields.Datetime.now(),
                    }
                )
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                raise  # a concurrent duplicate: the caller retries on a new snapshot
            except (PayloadError, UserError) as error:  # ValidationError included
                cb.write({"state": "error", "error": cb._storable_text(str(error))})
                _logger.warning("M-PESA callback %s rejected: %s", cb.id, error)
            except Exception as error:  # kept for the recovery job; never lose the body
                cb.write({"state": "error", "error": cb._storable_text(repr(error))})
                _logger.exception("M-PESA callback %s failed", cb.id)
        return self

    def _process_stk(self):
        """Through the payment framework, as core providers do, once the body is
        stored. The inbox itself only tells a repeated outcome from a new one."""
        data = self._payload()
        parsed = self.env["payment.transaction"]._mpesa_parse_stk(data)
        self.write(
            {
                "checkout_request_id": parsed.checkout_request_id,
                "receipt_code": parsed.receipt,
                "result_code": str(parsed.result_code),
            }
        )
        earlier = self._same_outcome_processed()
        if earlier:
            self.transaction_id = earlier.transaction_id
            return "duplicate"
        Tx = self.env["payment.transaction"].with_context(
            mpesa_url_tx_id=self.transaction_id.id
        )
        try:
            tx = Tx._handle_notification_data("mpesa", data)
        except MpesaNoTransactionYet as error:
            self.error = str(error)
            return "unmatched"
        self.transaction_id = tx
        return "processed"

    def _same_outcome_processed(self):
        """An earlier callback of this prompt with this outcome, already processed.
        Concurrent copies are serialized by the transaction's row lock: the copy
        that waited is retried on a new snapshot, where it finds the first one."""
        return self.search(
            [
                ("id", "!=", self.id),
                ("kind", "=", "stk"),
                ("state", "in", ("processed", "duplicate")),
                ("checkout_request_id", "=", self.checkout_request_id),
                ("result_code", "=", self.result_code),
                ("receipt_code", "=", self.receipt_code),
                # A copy sent to another payment's URL is not a repeat: it fails.
                *(
                    [("transaction_id", "=", self.transaction_id.id)]
                    if self.transaction_id
                    else []
                ),
            ],
            limit=1,
        )

    def _process_c2b_validation(self):
        payment = parse_c2b(self._payload())
        self.receipt_code = payment.trans_id
        answer = self.env["mpesa.receipt"]._c2b_validation_answer(
            payment, self.provider_id
        )
        self.answer = json.dumps(answer)
        return "processed"

    def _process_c2b_confirmation(self):
        payment = parse_c2b(self._payload())
        self.receipt_code = payment.trans_id
        return self.env["mpesa.receipt"]._apply_c2b(payment, self.provider_id, self)

    @api.model
    def _request_named(self, request_number, provider):
        """The API request of ``provider`` a result URL names, if this transaction
        sees it: M-PESA's Result can come before the transaction that sent the request
        (the inbox job asking about a paybill payment, a clerk's button) commits."""
        if not request_number:
            return self.env["mpesa.api.request"]
        return (
            self.env["mpesa.api.request"]
            .sudo()
            .browse(request_number)
            .exists()
            .filtered(lambda api_request: api_request.provider_id == provider)
        )

    def _api_request(self):
        if not self.api_request_id:
            self.api_request_id = self._request_named(
                self.url_request_number, self.provider_id
            )
        if not self.api_request_id:
            raise UserError(
                self.env._(
                    "Not processed: the request this result answers is not in Odoo. "
                    "If it was being sent at that moment, the recovery job finds it in "
                    "a few minutes. If this stays, check with M-PESA what it did, and "
                    "book it by hand."
                )
            )
        return self.api_request_id

    def _process_result(self):
        request = self._api_request()
        if request.refund_reference and not request._refund_transaction():
            # Not committed yet (our call is still waiting for Daraja), or never (that
            # call failed and its refund was undone): retried by the recovery job.
            raise UserError(
                self.env._(
                    "The refund %(ref)s this result pays is not in Odoo. If it stays "
                    "so, M-PESA may have sent money that Odoo did not book: check the "
                    "result and the shortcode's statement, and book it by hand.",
                    ref=request.refund_reference,
                )
            )
        return request._apply_result(self._payload())

    def _process_timeout(self):
        return self._api_request()._apply_timeout()

    def _c2b_validation_answer(self):
        """The answer owed to M-PESA; a body we cannot read is not ours to refuse."""
        return json.loads(self.answer) if self.answer else const.C2B_ACCEPT

    @api.model
    def _waiting_for(self, transaction):
        """The callbacks of this transaction's prompt that arrived before Daraja
        answered our push: kept waiting (unmatched), or not reached yet by the inbox
        job."""
        return self.search(
            [
                ("kind", "=", "stk"),
                ("state", "in", ("received", "unmatched")),
                "|",
                ("transaction_id", "=", transaction.id),
                ("checkout_request_id", "=", transaction.mpesa_checkout_request_id),
            ],
            order="id",
        )

    @api.model
    def _apply_received_of(self, transaction):
        """Someone is watching this payment (the customer's status page, the clerk's
        dialog): apply its M-PESA result now if it arrived, rather than when the
        inbox job reaches it. A concurrent application of the same callback by the
        job is a serialization failure: Odoo retries the watcher's request on a new
        snapshot, where the callback is done."""
        if transaction.provider_code != "mpesa" or not (
            transaction.state in ("draft", "pending")
            # failed as unreachable: its late success is awaited
            or transaction._mpesa_being_rechecked()
        ):
            return self.browse()
        received = self.sudo().search(
            [
                ("transaction_id", "=", transaction.id),
                ("kind", "=", "stk"),
                ("state", "=", "received"),
            ],
            order="id",
        )
        return received._claimed()._process()

    def _claimed(self):
        """Those of these callbacks no one else is applying right now, locked until
        this transaction ends: the inbox job, the recovery job and a status page never
        apply one callback at once; the later one skips it rather than wait for the
        books of the first."""
        if not self:
            return self
        self.env.cr.execute(
            "SELECT id FROM mpesa_callback WHERE id IN %s"
            " FOR NO KEY UPDATE SKIP LOCKED",
            [tuple(self.ids)],
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    def action_retry(self):
        """Process Again, for the M-PESA managers who watch the callbacks: they read
        the inbox, only the system writes it. Once the caller is shown to read these
        callbacks, they are processed as the system, as the recovery job does: nobody
        edits a body, the button only runs again what Safaricom sent."""
        self.check_access("read")
        if not self.env.user.has_group(
            "mpesa_payment.group_mpesa_manager"
        ) and not self.env.user.has_group("base.group_system"):
            raise AccessError(
                self.env._("Only M-PESA managers can process a callback again.")
            )
        self.sudo()._process()
        return True

    @api.model
    def _waiting_since(self, moment, provider):
        """How many of ``provider``'s callbacks stored before ``moment`` the inbox
        job has still not applied."""
        return self.search_count(
            [
                ("provider_id", "=", provider.id),
                ("kind", "in", APPLIED_LATER),
                ("state", "=", "received"),
                ("create_date", "<", moment),
            ]
        )

    @api.model
    def _cron_apply_inbox(self):
        """Apply what Safaricom sent, oldest first, each callback in its own
        transaction: the routes only store and answer (Safaricom waits for nobody's
        books), and this job, woken by each stored body, applies the money."""
        waiting = self.search(
            [("kind", "in", APPLIED_LATER), ("state", "=", "received")],
            order="id",
            limit=INBOX_BATCH,
        )
        for callback in waiting:
            callback._process_committed()
        remaining = self.search_count(
            [("kind", "in", APPLIED_LATER), ("state", "=", "received")]
        )
        self.env["ir.cron"]._notify_progress(done=len(waiting), remaining=remaining)

    def _process_committed(self):
        """Process and commit, retried on a new snapshot after a concurrency error
        (a copy of the same callback applied by the status page at the same time).
        Under test mode the test's one transaction stands for all of them."""
        self.ensure_one()
        if self.env.registry.in_test_mode():
            return self._process()
        # Read on this transaction's snapshot: a batch's cache may say "received" of
        # a callback that another job or a status page has applied and committed since.
        self.invalidate_recordset()
        try:
            return retrying(lambda: self._claimed()._process(), self.env)
        except psycopg2.Error:
            _logger.warning(
                "M-PESA callback %s: processing left to the recovery job",
                self.id,
                exc_info=True,
            )
            return self

    @api.model
    def _cron_process_stuck(self):
        """Process what a crashed worker left behind, and callbacks that waited."""
        stuck = self.search(
            [
                ("state", "in", ("received", "unmatched", "error")),
                ("attempts", "<", 5),
                (
                    "create_date",
                    "<=",
                    fields.Datetime.subtract(fields.Datetime.now(), minutes=1),
                ),
            ],
            order="id",
            limit=500,
        )
        # One by one, each committed apart: the inbox job or a status page may be
        # applying the same payment right now; a concurrency error then retries
        # only that callback, on a new snapshot where it is done.
        for callback in stuck:
            callback._process_committed()
