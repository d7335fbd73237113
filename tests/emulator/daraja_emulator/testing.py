"""Test helpers: a callback receiver standing in for the merchant, and a minimal
Daraja client that builds correct requests (tests then break them on purpose)."""

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import helpers
from .emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSKEY,
    DEFAULT_SHORTCODE,
)

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


class _ReceiverHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver.record(self.path, body, dict(self.headers))
        status, reply, delay = receiver.reply_for(self.path.split("?")[0])
        if delay:
            time.sleep(delay)
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the emulator gave up waiting (validation timeout)
            pass


class CallbackReceiver:
    """Records every POST (path, raw body, parsed JSON) and answers configurable
    replies per path: set_reply("/validation", {"ResultCode": "C2B00012"})."""

    def __init__(self):
        self.received = []  # list of dicts: path, body, json, headers, at
        self._replies = {}
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def url(self, path="/callback"):
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def set_reply(self, path, reply=None, status=200, delay=0.0):
        self._replies[path] = (status, ACCEPTED if reply is None else reply, delay)

    def reply_for(self, path):
        return self._replies.get(path, (200, ACCEPTED, 0.0))

    def record(self, path, body, headers):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with self._cond:
            self.received.append(
                {
                    "path": path,
                    "body": body,
                    "json": parsed,
                    "headers": headers,
                    "at": time.time(),
                }
            )
            self._cond.notify_all()

    def on(self, path_prefix):
        with self._cond:
            return [r for r in self.received if r["path"].startswith(path_prefix)]

    def wait_for(self, count, path_prefix="/", timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.on(path_prefix)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.on(path_prefix))} of {count} POSTs")
                self._cond.wait(remaining)
            return self.on(path_prefix)


class DarajaClient:
    """Calls the emulator like an integration would; returns (status, json)."""

    def __init__(
        self,
        base_url,
        key=DEFAULT_CONSUMER_KEY,
        secret=DEFAULT_CONSUMER_SECRET,
        shortcode=DEFAULT_SHORTCODE,
        passkey=DEFAULT_PASSKEY,
    ):
        self.base_url = base_url
        self.key, self.secret = key, secret
        self.shortcode, self.passkey = shortcode, passkey
        self.access_token = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, path, data=None, headers=None, method=None, raw=None):
        body = (
            raw
            if raw is not None
            else (None if data is None else json.dumps(data).encode())
        )
        req = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method or ("GET" if body is None else "POST"),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with self._opener.open(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def oauth(self, key=None, secret=None, grant_type="client_credentials"):
        creds = f"{key or self.key}:{secret or self.secret}".encode()
        return self.request(
            f"/oauth/v1/generate?grant_type={grant_type}",
            headers={"Authorization": "Basic " + base64.b64encode(creds).decode()},
        )

    def token(self):
        status, answer = self.oauth()
        assert status == 200, answer
        self.access_token = answer["access_token"]
        return self.access_token

    def post(self, path, data=None, token=None, raw=None):
        token = token or self.access_token or self.token()
        return self.request(path, data, {"Authorization": f"Bearer {token}"}, raw=raw)

    def password(self, timestamp, shortcode=None, passkey=None):
        raw = f"{shortcode or self.shortcode}{passkey or self.passkey}{timestamp}"
        return base64.b64encode(raw.encode()).decode()

    def stk_body(
        self, phone="254708374149", amount=1, callback_url="http://x/cb", **overrides
    ):
        timestamp = helpers.stamp(helpers.kenya_now())
        body = {
            "BusinessShortCode": int(self.shortcode),
            "Password": self.password(timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": amount,
            "PartyA": phone,
            "PartyB": self.shortcode,
            "PhoneNumber": phone,
            "CallBackURL": callback_url,
            "AccountReference": "INV00042",
            "TransactionDesc": "Invoice",
        }
        body.update(overrides)
        return body

    def stk_push(self, **kwargs):
        return self.post("/mpesa/stkpush/v1/processrequest", self.stk_body(**kwargs))

    def stk_query(self, checkout_request_id, **overrides):
        timestamp = helpers.stamp(helpers.kenya_now())
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": self.password(timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        body.update(overrides)
        return self.post("/mpesa/stkpushquery/v1/query", body)
