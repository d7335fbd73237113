import json
import logging
import re

import psycopg2
from werkzeug.exceptions import (
    Forbidden,
    NotFound,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

from odoo import http
from odoo.exceptions import ValidationError
from odoo.http import request
from odoo.service.model import retrying

from odoo.addons.payment.controllers.post_processing import PaymentPostProcessing

from .. import const

_logger = logging.getLogger(__name__)


class RedactCallbackSecrets(logging.Filter):
    """Werkzeug logs every request line at INFO: the secret part of our callback
    URLs (the C2B signature, the STK and result tokens) never reaches the log."""

    SECRET = re.compile(r"(/payment/daraja/(?:c2b/\d+|stk|result|timeout)/)[^/\s\"]+")

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = self.SECRET.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.SECRET.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


logging.getLogger("werkzeug").addFilter(RedactCallbackSecrets())

MAX_BODY_BYTES = 64 * 1024
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
BODY_KEY = "mpesa_payment.body"
# What Safaricom's callbacks have in common: plain POSTs from its servers, with no
# session nor CSRF token. Each is authenticated by the secret its URL carries.
CALLBACK_ROUTING = {
    "type": "http",
    "auth": "public",
    "methods": ["POST"],
    "csrf": False,
    "save_session": False,
}


class MpesaController(http.Controller):
    """Authenticate, store raw, hand over, answer Safaricom. Nothing else."""

    _stk_callback_route = "/payment/daraja/stk/<string:token>"

    # website=True: the visitor's site language (the frontend_lang cookie of /sw/...),
    # as on the pages around it; without it a visitor who is not logged in reads the
    # refusals (wrong number, too much) in English.
    @http.route("/payment/mpesa/stk_push", type="json", auth="public", website=True)
    def mpesa_stk_push(self, reference=None, access_token=None, phone=None):
        """Send the STK prompt for a transaction created by the payment form."""
        tx_sudo = request.env["payment.transaction"].sudo()
        # Only text is looked up: a list would be read as "in", a NUL breaks the query.
        if isinstance(reference, str) and "\x00" not in reference:
            tx_sudo = tx_sudo.search(
                [("reference", "=", reference), ("provider_code", "=", "mpesa")],
                limit=1,
            )
        if not tx_sudo or not tx_sudo._mpesa_check_access_token(access_token):
            raise ValidationError(
                request.env._("This payment link is not valid anymore.")
            )
        tx_sudo._mpesa_send_stk_push(
            phone, client_address=request.httprequest.remote_addr
        )
        return {"state": tx_sudo.state, "message": tx_sudo.state_message}

    @http.route(_stk_callback_route, **CALLBACK_ROUTING)
    def mpesa_stk_callback(self, token):
        # Any prompt we sent is answered here and its body kept: even when its URL
        # has expired (a very late answer) or its transaction is gone. Only a URL we
        # never signed is refused unseen. Such a body is kept for a person, never
        # processed: the status query of the transaction says what happened.
        provider, tx_id, fresh = self._signed("stk", token, "STK callback")
        tx_sudo = request.env["payment.transaction"].sudo().browse(tx_id).exists()
        if tx_sudo and tx_sudo.provider_id != provider:
            tx_sudo = tx_sudo.browse()  # signed by another provider: not its callback
        self._check_sender(provider, "STK callback")
        body = self._read_body()
        # Stored even when its CheckoutRequestID is another request's: processing
        # records why it cannot pay this transaction, and keeps any money it reports.
        return self._store_and_answer(
            "stk",
            body,
            provider,
            tx_sudo or None,
            kept_because=self._kept_unless(
                tx_sudo and fresh,
                request.env._(
                    "Kept, not processed: the callback URL has expired or its payment "
                    "is gone. Check the payment's status with M-PESA."
                ),
            ),
        )

    @http.route(
        # Read as text: Odoo's int converter fails with a 500 on 5000 digits.
        "/payment/daraja/c2b/<string(maxlength=10):provider_id>/<string:signature>"
        "/<string:kind>",
        **CALLBACK_ROUTING,
    )
    def mpesa_c2b(self, provider_id, signature, kind):
        if kind not in ("validation", "confirmation") or not (
            provider_id.isascii() and provider_id.isdigit()
        ):
            raise NotFound()
        provider = (
            request.env["payment.provider"]
            .sudo()
            ._mpesa_check_c2b_signature(int(provider_id), signature)
        )
        if not provider:
            _logger.warning(
                "M-PESA C2B %s refused from %s: invalid URL signature",
                kind,
                request.httprequest.remote_addr,
            )
            raise Forbidden()
        self._check_sender(provider, f"C2B {kind}")
        body = self._read_body()
        if kind == "confirmation":
            return self._store_and_answer("c2b_confirmation", body, provider)
        # The validation answer accepts or refuses the payment: it is the processing,
        # within Safaricom's few seconds.
        callback_id = self._store("c2b_validation", body, provider)
        return self._answer(self._validate_stored(callback_id))

    @http.route(
        [
            "/payment/daraja/result/<string:token>",
            "/payment/daraja/timeout/<string:token>",
        ],
        **CALLBACK_ROUTING,
    )
    def mpesa_api_result(self, token):
        """Async results of transaction status, reversal, balance and B2C requests.
        Like the STK callback: any request we signed is answered and its body kept,
        even when its URL has expired (then kept for a person, not processed) or
        its request is not in Odoo (looked up again when processed). Only a URL we
        never signed is refused unseen."""
        provider, request_id, fresh = self._signed("result", token, "API result")
        self._check_sender(provider, "API result")
        kind = "timeout" if "/timeout/" in request.httprequest.path else "result"
        body = self._read_body()
        # The request itself is looked up when the result is stored, and again when
        # it is processed: it may not be committed yet (mpesa.callback._request_named).
        return self._store_and_answer(
            kind,
            body,
            provider,
            request_number=request_id,
            kept_because=self._kept_unless(
                fresh,
                request.env._(
                    "Kept, not processed: the result URL has expired. Check with "
                    "M-PESA what it did, and book it by hand."
                ),
            ),
        )

    # === HELPERS === #

    @staticmethod
    def _signed(scope, token, what):
        """(provider, record id, whether still valid) of a URL token we signed,
        expired or not; a URL we never signed is refused unseen."""
        Provider = request.env["payment.provider"].sudo()
        checked = Provider._mpesa_check_token(scope, token, allow_expired=True)
        if not checked:
            _logger.warning(
                "M-PESA %s refused from %s: invalid URL token",
                what,
                request.httprequest.remote_addr,
            )
            raise Forbidden()
        provider, record_id = checked
        return provider, record_id, bool(Provider._mpesa_check_token(scope, token))

    @staticmethod
    def _check_sender(provider, what):
        address = request.httprequest.remote_addr
        if not provider._mpesa_ip_allowed(address):
            _logger.warning(
                "M-PESA %s refused: sender %s is not in the provider's IP allow-list",
                what,
                address,
            )
            raise Forbidden()

    @staticmethod
    def _read_body():
        """The body, read once: kept in the WSGI environ so that Odoo's retry of the
        whole request (after a concurrency error) sees the same bytes."""
        environ = request.httprequest.environ
        if BODY_KEY in environ:
            return environ[BODY_KEY]
        if request.httprequest.mimetype in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            # Odoo parses a form before the controller runs, draining the stream:
            # the body would be stored empty. Daraja always sends JSON.
            raise UnsupportedMediaType()
        length = request.httprequest.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()
        # A chunked body announces no length: it is read whole (within Odoo's own
        # request size limit), then refused if too large.
        body = request.httprequest.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()
        environ[BODY_KEY] = body
        return body

    @staticmethod
    def _json_or_none(body):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nesting
            return None

    @staticmethod
    def _kept_unless(current, why):
        """``why`` a body is kept for a person rather than processed, unless its URL
        is current and names a record that still exists."""
        return None if current else why

    def _store_and_answer(self, kind, body, provider, transaction=None, **kwargs):
        """Store the body, then answer at once: the money is applied by the inbox job
        (and by the customer's status page for their own payment). A body that is
        not JSON is kept as well, and told so."""
        if not kwargs.get("kept_because") and self._json_or_none(body) is None:
            kwargs["kept_because"] = request.env._(
                "Kept, not processed: the body is not valid JSON."
            )
            self._store(kind, body, provider, transaction, **kwargs)
            return self._answer({"ResultCode": 1, "ResultDesc": "Malformed JSON"}, 400)
        self._store(kind, body, provider, transaction, **kwargs)
        return self._answer(ACCEPTED)

    @staticmethod
    def _store(
        kind, body, provider, transaction=None, request_number=None, kept_because=None
    ):
        """Commit the raw body in its own transaction before anything can fail."""
        remote = request.httprequest.remote_addr
        with request.env.registry.cursor() as cr:
            env = request.env(cr=cr, su=True)
            # The insert checks its foreign keys: a concurrent update of the provider
            # or transaction row is a serialization failure, retried on a new snapshot.
            return retrying(
                lambda: (
                    env["mpesa.callback"]
                    ._store(
                        kind,
                        body,
                        provider,
                        transaction,
                        remote,
                        request_number,
                        kept_because=kept_because,
                    )
                    .id
                ),
                env,
            )

    @staticmethod
    def _validate_stored(callback_id):
        """Process a C2B validation in a fresh transaction (the request's own
        snapshot predates the stored body) and return the answer owed to M-PESA. If
        it cannot be processed now, the payment is accepted: a body we cannot read
        is not ours to refuse, and the confirmation is checked when applied."""
        try:
            with request.env.registry.cursor() as cr:
                env = request.env(cr=cr, su=True)
                callback = env["mpesa.callback"].browse(callback_id)
                retrying(callback._process, env)
                return callback._c2b_validation_answer()
        except psycopg2.Error:
            _logger.warning(
                "M-PESA C2B validation %s stored; left to the recovery job",
                callback_id,
                exc_info=True,
            )
            return const.C2B_ACCEPT

    @staticmethod
    def _answer(payload, status=200):
        return request.make_json_response(payload, status=status)


class MpesaPostProcessing(PaymentPostProcessing):
    @http.route()
    def poll_status(self, **kwargs):
        """The customer's status page asks: their payment's M-PESA result, if it
        arrived, is applied now, so the page turns as soon as they have approved."""
        tx_sudo = self._get_monitored_transaction()
        request.env["mpesa.callback"].sudo()._apply_received_of(tx_sudo)
        values = super().poll_status(**kwargs)
        if tx_sudo.provider_code == "mpesa":
            # Failed as unreachable, yet may still be paid: the page keeps polling.
            values["mpesa_rechecking"] = tx_sudo._mpesa_being_rechecked()
        return values
