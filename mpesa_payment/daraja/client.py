"""The only code that speaks HTTP to Daraja.

Credentials never reach a log line: we log paths and Safaricom's error codes only.
"""

import base64
import datetime as dt
import logging

import requests

from ..kenya_time import KENYA_TZ
from .payloads import parse_error

_logger = logging.getLogger(__name__)

ERROR_INVALID_TOKEN = "404.001.03"

# Daraja's endpoints (paths under the sandbox or production host), by what they do.
PATHS = {
    "oauth": "/oauth/v1/generate?grant_type=client_credentials",
    "stk_push": "/mpesa/stkpush/v1/processrequest",
    "stk_query": "/mpesa/stkpushquery/v1/query",
    "c2b_register": "/mpesa/c2b/{version}/registerurl",
    "qr": "/mpesa/qrcode/v1/generate",
    "status": "/mpesa/transactionstatus/v1/query",
    "reversal": "/mpesa/reversal/v1/request",
    "balance": "/mpesa/accountbalance/v1/query",
    # B2C v3: the caller names the request (OriginatorConversationID).
    "b2c": "/mpesa/b2c/v3/paymentrequest",
    "pull_register": "/pulltransactions/v1/register",
    "pull_query": "/pulltransactions/v1/query",
}


class DarajaError(Exception):
    """An error answer (or no answer) from Daraja, with Safaricom's code."""

    def __init__(self, code, message, status=None, body=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.body = body or {}


def kenya_timestamp(now=None):
    """Daraja's Timestamp: YYYYMMDDHHmmss in Kenya time."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(KENYA_TZ).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode, passkey, timestamp):
    raw = f"{shortcode}{passkey}{timestamp}".encode()
    return base64.b64encode(raw).decode()


class DarajaClient:
    """Minimal Daraja client.

    ``token_store`` shares the OAuth token between workers (a new token may invalidate
    the previous one): ``get()`` returns the cached valid token or None, and
    ``refresh(stale, fetch)`` returns a fresh token, calling ``fetch()`` only if no other
    worker already replaced ``stale``.
    """

    def __init__(
        self,
        base_url,
        consumer_key,
        consumer_secret,
        token_store,
        timeout=20,
        session=None,
    ):
        self.base_url = base_url.rstrip("/")
        self._key = consumer_key or ""
        self._secret = consumer_secret or ""
        self.token_store = token_store
        self.timeout = timeout
        self.session = session or requests

    # --- OAuth -----------------------------------------------------------------
    def fetch_token(self):
        """Ask Daraja for a new token: returns (token, expires_in seconds)."""
        basic = base64.b64encode(f"{self._key}:{self._secret}".encode()).decode()
        status, data = self._send(
            "GET",
            PATHS["oauth"],
            headers={"Authorization": f"Basic {basic}"},
        )
        token = data.get("access_token")
        if status != 200 or not token:
            raise self._error(status, data, "Could not obtain an access token")
        try:
            expires_in = int(data.get("expires_in") or 3599)
        except (TypeError, ValueError):
            expires_in = 3599
        return token, expires_in

    def _token(self, stale=None):
        if stale is None:
            token = self.token_store.get()
            if token:
                return token
        return self.token_store.refresh(stale, self.fetch_token)

    # --- API calls ---------------------------------------------------------------
    def post(self, path, payload):
        """POST ``payload`` to ``path``; return the JSON body or raise DarajaError.

        An invalid/expired token (404.001.03) is refreshed once and the call retried.
        """
        token = self._token()
        status, data = self._post_with(token, path, payload)
        if parse_error(data) and parse_error(data)[0] == ERROR_INVALID_TOKEN:
            _logger.info(
                "Daraja rejected the cached token on %s; refreshing once", path
            )
            token = self._token(stale=token)
            status, data = self._post_with(token, path, payload)
        if status >= 400 or parse_error(data):
            raise self._error(status, data, "Request failed")
        return data

    def _post_with(self, token, path, payload):
        return self._send(
            "POST", path, json=payload, headers={"Authorization": f"Bearer {token}"}
        )

    def _send(self, method, path, **kwargs):
        url = self.base_url + path
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.Timeout as exc:
            _logger.warning("Daraja did not answer in time on %s", path)
            raise DarajaError("timeout", "M-PESA did not answer in time.") from exc
        except requests.exceptions.RequestException as exc:
            _logger.warning("Daraja unreachable on %s: %s", path, type(exc).__name__)
            raise DarajaError("connection", "M-PESA could not be reached.") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return response.status_code, data

    @staticmethod
    def _error(status, data, default):
        code, message = parse_error(data) or (f"http-{status}", default)
        _logger.info("Daraja error %s (HTTP %s)", code, status)
        return DarajaError(code, message, status=status, body=data)
