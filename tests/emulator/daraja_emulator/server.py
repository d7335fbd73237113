"""HTTP plumbing: routing, bearer-token checks, the control API and the phone page."""

import json
import logging
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import api, b2c, qr
from .api import DarajaError

_logger = logging.getLogger(__name__)
PHONE_PAGE = Path(__file__).parent / "static" / "phone.html"

# Daraja API routes (all POST, bearer token); a version-less entry gets no arg.
API_ROUTES = {
    "/mpesa/stkpush/v1/processrequest": (api.stk_push, None),
    "/mpesa/stkpushquery/v1/query": (api.stk_query, None),
    "/mpesa/c2b/v1/registerurl": (api.c2b_register, "v1"),
    "/mpesa/c2b/v2/registerurl": (api.c2b_register, "v2"),
    "/mpesa/c2b/v1/simulate": (api.c2b_simulate, "v1"),
    "/mpesa/c2b/v2/simulate": (api.c2b_simulate, "v2"),
    "/mpesa/transactionstatus/v1/query": (api.transaction_status, None),
    "/mpesa/reversal/v1/request": (api.reversal, None),
    "/mpesa/accountbalance/v1/query": (api.account_balance, None),
    "/pulltransactions/v1/register": (api.pull_register, None),
    "/pulltransactions/v1/query": (api.pull_query, None),
    "/mpesa/b2c/v1/paymentrequest": (b2c.payment_request, "v1"),
    "/mpesa/b2c/v3/paymentrequest": (b2c.payment_request, "v3"),
    "/mpesa/qrcode/v1/generate": (qr.generate, None),
}


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, emulator):
        super().__init__(address, Handler)
        self.emulator = emulator


class Handler(BaseHTTPRequestHandler):
    server_version = "DarajaEmulator/0.1"

    def log_message(self, format, *args):
        # Keep test output quiet; the request log is on the emulator.
        _logger.debug(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    # -- plumbing -----------------------------------------------------------
    def _dispatch(self, method):
        emu = self.server.emulator
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        emu.log_request(method, self.path, data)
        try:
            status, payload = self._route(emu, method, url, raw, data)
        except DarajaError as exc:
            status, payload = exc.status, exc.body()
        except Exception:  # noqa: BLE001 - an emulator bug still gets an answer
            _logger.error("emulator failure\n%s", traceback.format_exc())
            status, payload = 500, DarajaError("500.001.1001", "Internal error").body()
        if isinstance(payload, str):  # HTML page
            self._send(status, payload.encode(), "text/html; charset=utf-8")
        elif payload is not None:
            self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status, body, content_type, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _route(self, emu, method, url, raw, data):
        path = url.path.rstrip("/") or "/"
        if path == "/oauth/v1/generate" and method == "GET":
            query = parse_qs(url.query)
            return api.oauth(emu, query, self.headers.get("Authorization", ""))
        if path in API_ROUTES and method == "POST":
            auth = self.headers.get("Authorization", "")
            if not (auth.startswith("Bearer ") and emu.state.token_valid(auth[7:])):
                raise DarajaError("404.001.03", "Invalid Access Token")
            if not isinstance(data, dict):
                api.bad("Invalid JSON")
            handler, version = API_ROUTES[path]
            return handler(emu, data, version) if version else handler(emu, data)
        if path.startswith("/emulator/"):
            return self._control(emu, method, path, raw, data)
        if path == "/" and method == "GET":
            # Sent here because it needs a header; payload None = already answered.
            self._send(302, b"", "text/plain", [("Location", "/phone")])
            return 302, None
        if path == "/phone" and method == "GET":
            return 200, PHONE_PAGE.read_text(encoding="utf-8")
        raise DarajaError("404.001.01", "Resource not found")

    # -- control API (no auth) ------------------------------------------------------
    def _control(self, emu, method, path, raw, data):
        parts = path.split("/")[2:]
        if method == "GET":
            if parts == ["certificate"]:
                # Sent here for its content type; payload None = already answered.
                pem = emu.certificate_pem.encode()
                self._send(200, pem, "application/x-pem-file")
                return 200, None
            if parts == ["prompts"]:
                return 200, [p.as_dict() for p in emu.prompts.values()]
            if parts == ["deliveries"]:
                return 200, [d.as_dict() for d in emu.deliveries]
            if parts == ["payments"]:
                return 200, [_jsonable(p) for p in emu.payments.values()]
            raise DarajaError("404.001.01", "Resource not found")
        if raw and not isinstance(data, dict):
            api.bad("Invalid JSON")
        data = data or {}
        try:
            return _control_post(emu, parts, data)
        except KeyError as exc:
            raise DarajaError("404.001.01", f"Not found: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise DarajaError("400.002.02", f"Bad Request - {exc}") from exc


def _control_post(emu, parts, data):
    if parts == ["scenario"]:
        if "default" in data:
            emu.set_default_scenario(**data["default"])
        else:
            fields = dict(data)
            emu.set_scenario(fields.pop("phone"), **fields)
        return 200, {"ok": True}
    if parts == ["reset"]:
        emu.reset()
        return 200, {"ok": True}
    if len(parts) == 3 and parts[0] == "prompts":
        emu.resolve_prompt(parts[1], parts[2])
        return 200, {"ok": True}
    if parts == ["c2b", "pay"]:
        missing = {"shortcode", "msisdn", "amount"} - set(data)
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        trans_id = emu.c2b_pay(
            data["shortcode"],
            data["msisdn"],
            data["amount"],
            data.get("bill_ref", ""),
            msisdn_style=data.get("msisdn_style"),
            api_version=data.get("api_version", "v2"),
        )
        return 200, {"ok": True, "TransID": trans_id}
    raise KeyError("/".join(parts))


def _jsonable(payment):
    return {**payment, "time": payment["time"].isoformat()}
