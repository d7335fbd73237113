import datetime as dt
import logging
import uuid

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import UserError
from odoo.service.model import retrying

from .. import const
from ..daraja.client import PATHS, DarajaError
from ..daraja.payloads import parse_initiator_result, parse_timestamp
from ..kenya_time import kenya_to_utc

_logger = logging.getLogger(__name__)

# Requests that move money: a call that got no answer may still have been taken.
MONEY_KINDS = ("reversal", "b2c")
# DarajaError codes of a call that got no answer (see daraja/client.py).
NO_ANSWER = ("timeout", "connection")
# Result codes of the initiator APIs that we explain in plain words.
RESULT_MEANINGS = {
    "R000001": "M-PESA says this transaction was already reversed.",
    "R000002": "M-PESA does not know this receipt code (or it is not ours).",
    "R000003": "The amount does not match the original transaction.",
}


class MpesaApiRequest(models.Model):
    """One call to an initiator API (status, reversal, balance) and its async result."""

    _name = "mpesa.api.request"
    _description = "M-PESA API Request"
    _order = "id desc"
    _inherit = ["mail.thread"]

    name = fields.Char(compute="_compute_name", store=True)
    kind = fields.Selection(
        [
            ("status", "Transaction Status"),
            ("reversal", "Reversal"),
            ("balance", "Account Balance"),
            ("b2c", "B2C Payment (Refund)"),
        ],
        required=True,
        readonly=True,
    )
    provider_id = fields.Many2one("payment.provider", required=True, readonly=True)
    company_id = fields.Many2one(related="provider_id.company_id", store=True)
    receipt_code = fields.Char(readonly=True, index=True)
    receipt_id = fields.Many2one("mpesa.receipt", readonly=True, index="btree_not_null")
    amount = fields.Float(readonly=True)
    phone = fields.Char(readonly=True, help="B2C: the phone the money is sent to.")
    transaction_id = fields.Many2one(
        "payment.transaction",
        string="Refund",
        readonly=True,
        index="btree_not_null",
        help="The refund this reversal or B2C payment pays.",
    )
    refund_reference = fields.Char(
        readonly=True,
        index="btree_not_null",
        help="The reference of the refund this request pays, linked when M-PESA "
        "answers. A Result whose refund was never saved in Odoo is kept for a person.",
    )
    remarks = fields.Char(readonly=True)
    user_id = fields.Many2one(
        "res.users", string="Requested By", readonly=True, default=lambda s: s.env.user
    )
    state = fields.Selection(
        [("sent", "Waiting for M-PESA"), ("done", "Done"), ("failed", "Failed")],
        default="sent",
        readonly=True,
        tracking=True,
    )
    conversation_id = fields.Char(readonly=True, index=True)
    originator_conversation_id = fields.Char(readonly=True)
    result_code = fields.Char(readonly=True)
    result_message = fields.Char(readonly=True)

    @api.depends("kind", "receipt_code")
    def _compute_name(self):
        labels = dict(self._fields["kind"].selection)
        for req in self:
            req.name = " ".join(filter(None, [labels.get(req.kind), req.receipt_code]))

    # === SENDING === #

    @api.model
    def _send(
        self, provider, kind, receipt_code=None, amount=0.0, remarks=None, **values
    ):
        """Send one initiator request; ``values``: more fields of the request
        (receipt_id, refund_reference, phone). Returns the request."""
        provider = provider.sudo()
        self._check_can_send(provider, kind)
        values = {
            "kind": kind,
            "provider_id": provider.id,
            "receipt_code": receipt_code,
            "amount": amount,
            "remarks": remarks,
            "user_id": self.env.user.id,
            "originator_conversation_id": uuid.uuid4().hex if kind == "b2c" else False,
            **values,
        }
        money = kind in MONEY_KINDS
        if money:
            request_id, payload = self._commit_new(values)
            request = self.browse(request_id)
        else:
            # Moves no money, and may name a receipt this transaction is creating
            # (a paybill confirmation asked at once): created here, as before.
            request = self.sudo().create(values)
            payload = request._payload(provider._mpesa_make_token("result", request.id))
            request._apply_early_results_after_commit()
        try:
            answer = provider._mpesa_client().post(PATHS[kind], payload)
        except DarajaError as error:
            if money:
                self._commit_answer(request.id, error=error)
                if error.code in NO_ANSWER:
                    # Daraja may have taken it: the money may leave. The caller keeps
                    # its refund waiting; M-PESA's Result (or the overdue job) settles it.
                    return request.with_context(mpesa_unanswered=True)
            raise provider._mpesa_refusal(
                error, self.env._("M-PESA refused the request: %(msg)s (%(code)s)")
            ) from error
        if money:
            self._commit_answer(request.id, answer=answer)
        else:
            request.write(self._answer_values(answer))
        return request

    def _apply_early_results_after_commit(self):
        """M-PESA's Result may reach us before this transaction, which creates the
        request, commits: it waits in the inbox, its request not found yet. Apply it
        as soon as we commit, rather than when the recovery job comes by."""
        request_id, registry = self.id, self.env.registry

        @self.env.cr.postcommit.add
        def _apply_early_results():
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                for callback in env["mpesa.callback"].search(
                    [
                        ("url_request_number", "=", request_id),
                        ("api_request_id", "=", False),
                        ("state", "in", ("received", "error")),
                    ],
                    order="id",
                ):
                    callback._process_committed()

    @api.model
    def _check_can_send(self, provider, kind):
        if kind == "b2c" and not provider._mpesa_can_send_b2c():
            raise UserError(
                self.env._(
                    "Set the B2C shortcode, its initiator name and security credential "
                    "on the M-PESA provider first: partial refunds are sent by B2C."
                )
            )
        if kind != "b2c" and not (
            provider.mpesa_initiator_name and provider.mpesa_security_credential
        ):
            raise UserError(
                self.env._(
                    "Set the initiator name and security credential on the M-PESA provider "
                    "first: Safaricom requires them for this request."
                )
            )

    @api.model
    def _answer_values(self, answer):
        values = {"conversation_id": answer.get("ConversationID")}
        if answer.get("OriginatorConversationID"):
            values["originator_conversation_id"] = answer["OriginatorConversationID"]
        return values

    @api.model
    def _commit_new(self, values):
        """A request that moves money, created in a transaction of its own, committed
        before Daraja is called: the signed ResultURL then names a row that exists
        whatever becomes of the caller's transaction (our call times out, a later step
        fails). Returns (id, payload). ``values`` may only name committed rows (the
        source receipt is); the refund, not yet committed, is named by reference
        (see _refund_transaction). The caller's own snapshot does not see this row."""
        with self.env.registry.cursor() as cr:
            request = self.with_env(self.env(cr=cr)).sudo().create(values)
            token = request.provider_id._mpesa_make_token("result", request.id)
            return request.id, request._payload(token)

    @api.model
    def _commit_answer(self, request_id, answer=None, error=None):
        """Daraja's acknowledgement, or why the call failed (the request then stays,
        failed without a result code: M-PESA's Result, if one comes, still applies)."""
        if error is not None:
            values = {
                "state": "failed",
                "result_message": self.env._(
                    "Our call to M-PESA failed: %(msg)s (%(code)s). If M-PESA took it "
                    "anyway, its result is applied when it comes.",
                    msg=error.message,
                    code=error.code,
                ),
            }
        else:
            values = self._answer_values(answer)

        def write():
            request = env[self._name].browse(request_id)
            # M-PESA's Result may have come first: it is the answer, kept.
            if error is None or request.state == "sent":
                request.write(values)

        with self.env.registry.cursor() as cr:
            env = self.env(cr=cr, su=True)
            # Its Result may be landing at this moment: retried on a new snapshot.
            retrying(write, env)

    def _refund_transaction(self):
        """The refund this reversal or B2C payment pays. The refund is created in the
        caller's transaction, which cannot point at this request (committed apart):
        the request names it by reference and links it once it is committed."""
        self.ensure_one()
        if self.transaction_id or not self.refund_reference:
            return self.transaction_id
        refund = (
            self.env["payment.transaction"]
            .sudo()
            .search(
                [
                    ("reference", "=", self.refund_reference),
                    ("operation", "=", "refund"),
                ],
                limit=1,
            )
        )
        if refund:
            self.transaction_id = refund
        return refund

    def _payload(self, token):
        provider = self.provider_id.sudo()
        urls = {
            "ResultURL": provider._mpesa_callback_url(
                f"/payment/daraja/result/{token}"
            ),
            "QueueTimeOutURL": provider._mpesa_callback_url(
                f"/payment/daraja/timeout/{token}"
            ),
        }
        common = {
            "Initiator": provider.mpesa_initiator_name,
            "SecurityCredential": provider.mpesa_security_credential,
            "Remarks": (self.remarks or self.env._("Odoo"))[:100],
            **urls,
        }
        if self.kind == "b2c":
            return self._b2c_payload(urls)
        party = provider._mpesa_party_b()
        identifier = "2" if provider.mpesa_shortcode_type == "till" else "4"
        if self.kind == "status":
            return {
                **common,
                "CommandID": "TransactionStatusQuery",
                "TransactionID": self.receipt_code,
                "PartyA": party,
                "IdentifierType": identifier,
                "Occasion": "",
            }
        if self.kind == "reversal":
            return {
                **common,
                "CommandID": "TransactionReversal",
                "TransactionID": self.receipt_code,
                "Amount": str(round(self.amount)),
                "ReceiverParty": party,
                # Daraja's own spelling:
                "RecieverIdentifierType": "11",
                "Occasion": "",
            }
        return {
            **common,
            "CommandID": "AccountBalance",
            "PartyA": party,
            "IdentifierType": identifier,
        }

    def _b2c_payload(self, urls):
        """Safaricom's B2C v3 request (see the emulator's b2c.py for the sources)."""
        provider = self.provider_id.sudo()
        return {
            "OriginatorConversationID": self.originator_conversation_id,
            "InitiatorName": provider.mpesa_b2c_initiator_name,
            "SecurityCredential": provider.mpesa_b2c_security_credential,
            "CommandID": "BusinessPayment",
            "Amount": str(round(self.amount)),
            "PartyA": provider.mpesa_b2c_shortcode,
            "PartyB": self.phone,
            "Remarks": (self.remarks or self.env._("Refund"))[:100],
            # Daraja's own spelling:
            "Occassion": "",
            **urls,
        }

    # === RESULTS === #

    def _apply_result(self, data):
        """Apply a Result POSTed to our ResultURL. Idempotent."""
        self.ensure_one()
        self.env.cr.execute(
            "SELECT id FROM mpesa_api_request WHERE id = %s FOR UPDATE", [self.id]
        )
        self.invalidate_recordset()
        # A queue timeout fails the request without a result code; M-PESA's result may
        # still follow, and then it is the answer.
        if self.state == "done" or (self.state == "failed" and self.result_code):
            return "duplicate"
        result = parse_initiator_result(data)
        meaning = RESULT_MEANINGS.get(result.result_code, result.result_desc)
        self.write({"result_code": result.result_code, "result_message": meaning})
        getattr(self, f"_apply_{self.kind}")(result)
        return "processed"

    def _apply_timeout(self):
        self.ensure_one()
        if self.state == "sent":
            self.write(
                {
                    "state": "failed",
                    "result_message": self.env._(
                        "M-PESA did not process the request in time (queue timeout). "
                        "Try again later."
                    ),
                }
            )
            refund = self._refund_transaction()
            if refund:
                refund._mpesa_refund_failed(self.result_message)
        return "processed"

    def _apply_status(self, result):
        pending = self.receipt_id.filtered(lambda r: r.verification == "pending")
        if pending:
            self._apply_confirmation(pending, result)
            return
        if not result.is_success:
            self.state = "failed"
            return
        params = result.parameters
        debit = str(params.get("DebitPartyName") or "")
        phone, _sep, name = debit.partition(" - ")
        receipt = (
            self.env["mpesa.receipt"]
            .sudo()
            ._record(
                {
                    "name": str(params.get("ReceiptNo") or self.receipt_code),
                    "provider_id": self.provider_id.id,
                    "amount": float(params.get("Amount") or 0.0),
                    "phone": phone.strip(),
                    "customer_name": name.strip(),
                    "paid_at": self._result_time(params.get("FinalisedTime")),
                },
                channel="query",
            )
        )
        if (
            params.get("TransactionStatus") == "Reversed"
            and receipt.state != "reversed"
            and not self._refunded_by_reversal(receipt)
        ):
            receipt._mark_reversed()
        elif receipt.state == "received" and not receipt.application_ids:
            if receipt._apply_to_pending_push(by_phone=True):
                self.write({"state": "done", "receipt_id": receipt.id})
                return
            receipt.write(
                {
                    "state": "review",
                    "review_reason": self.env._(
                        "Found by a status query; not yet applied to an invoice or order."
                    ),
                    "review_cause": False,
                }
            )
        self.write({"state": "done", "receipt_id": receipt.id})

    def _refunded_by_reversal(self, receipt):
        """A receipt reversed by our own refund stays applied: the refund's payment
        (reconciled with its credit note) books the money that went back."""
        return bool(
            self.env["payment.transaction"]
            .sudo()
            .search_count(
                [
                    ("operation", "=", "refund"),
                    ("mpesa_refund_method", "=", "reversal"),
                    ("state", "=", "done"),
                    ("source_transaction_id.mpesa_source_receipt_id", "=", receipt.id),
                ]
            )
        )

    def _apply_confirmation(self, receipt, result):
        """The answer to a paybill notification we asked M-PESA to confirm."""
        params = result.parameters
        completed = result.is_success and params.get("TransactionStatus") in (
            "Completed",
            None,
        )
        if completed:
            receipt._mpesa_confirmed(float(params.get("Amount") or 0.0))
        elif result.result_code in const.INITIATOR_CONFIGURATION_ERRORS:
            # M-PESA refused to answer (a wrong credential, e.g. encrypted with the
            # other environment's certificate): the payment is neither confirmed nor
            # refused. It stays pending; the confirmation job asks again, and flags
            # it after a day if the credential is still wrong.
            _logger.error(
                "M-PESA refused the initiator of %s (%s): fix the initiator name or "
                "security credential; paybill payments wait unconfirmed",
                self.provider_id.name,
                self.result_message,
            )
        else:
            receipt._mpesa_unknown(
                self.env._(
                    "M-PESA did not confirm this payment: %s", self.result_message
                )
            )
        self.state = "done" if result.is_success else "failed"

    def _apply_reversal(self, result):
        if self._refund_transaction():
            return self._apply_refund(
                result,
                result.transaction_id,
                result.parameters.get("Amount"),
                result.parameters.get("TransCompletedTime"),
            )
        receipt = self.receipt_id
        if result.is_success or result.result_code == "R000001":
            if receipt and receipt.state != "reversed":
                receipt._mark_reversed()
            self.state = "done"
        else:
            self.state = "failed"

    def _apply_b2c(self, result):
        params = result.parameters
        return self._apply_refund(
            result,
            str(params.get("TransactionReceipt") or result.transaction_id or ""),
            params.get("TransactionAmount"),
            params.get("TransactionCompletedDateTime"),
        )

    def _apply_refund(self, result, receipt_code, amount, completed):
        """M-PESA's answer to a refund (reversal or B2C): paid, or not paid."""
        # Booked in the refund's company: a callback runs as the main company.
        refund = self._refund_transaction()
        refund = refund.with_company(refund.company_id)
        if not result.is_success:
            self.state = "failed"
            refund._mpesa_refund_failed(self.result_message)
            return
        self.write({"state": "done", "receipt_code": receipt_code})
        refund._mpesa_refund_paid(
            receipt_code, float(amount or 0.0), self._result_time(completed)
        )

    def _apply_balance(self, result):
        if not result.is_success:
            self.state = "failed"
            return
        balance = self._parse_balance(
            str(result.parameters.get("AccountBalance") or "")
        )
        self.provider_id.sudo().write(
            {
                "mpesa_balance": balance,
                "mpesa_balance_date": self._result_time(
                    result.parameters.get("BOCompletedTime")
                ),
            }
        )
        self.write({"state": "done", "amount": balance})

    @api.model
    def _parse_balance(self, text):
        """The Utility Account's available balance (where C2B money lands) from
        'Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|KES|...'."""
        accounts = {}
        for chunk in text.split("&"):
            parts = chunk.split("|")
            if len(parts) >= 3:
                try:
                    accounts[parts[0].strip()] = float(parts[2])
                except ValueError:
                    continue
        if "Utility Account" in accounts:
            return accounts["Utility Account"]
        if not accounts:
            raise UserError(self.env._("Unreadable AccountBalance: %s", text))
        return sum(accounts.values())

    @api.model
    def _result_time(self, value):
        """YYYYMMDDHHMMSS, or B2C's "17.07.2017 10:54:57" (Kenya time), in UTC."""
        if isinstance(value, str) and "." in value:
            try:
                local = dt.datetime.strptime(value.strip(), "%d.%m.%Y %H:%M:%S")
            except ValueError:
                return fields.Datetime.now()
            return kenya_to_utc(local)
        try:
            return parse_timestamp(value) if value else fields.Datetime.now()
        except ValueError:
            return fields.Datetime.now()

    def _action_open(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
        }
