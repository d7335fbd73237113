"""The Daraja credentials never leave the admin-only fields: not in a rendered page, an
asset, an RPC answer or a log line. The test gives them unmistakable values, drives
every flow that uses them, and searches for those values everywhere it can look."""

import json
import logging
import re

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import MpesaE2ECommon

SECRETS = {
    "mpesa_consumer_key": "KEY-9f3c1e7a-visible-nowhere",
    "mpesa_consumer_secret": "SECRET-2b8d44f0-visible-nowhere",
    "mpesa_passkey": "PASSKEY-77e1c2d9-visible-nowhere",
    "mpesa_security_credential": "CREDENTIAL-5a0e91bb-visible-nowhere",
}
SHORTCODE = "600100"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@tagged("post_install", "-at_install")
class TestSecrets(MpesaE2ECommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator.add_app(
            SECRETS["mpesa_consumer_key"], SECRETS["mpesa_consumer_secret"]
        )
        cls.emulator.add_shortcode(
            SHORTCODE,
            passkey=SECRETS["mpesa_passkey"],
            security_credential=SECRETS["mpesa_security_credential"],
        )
        cls.mpesa.write({**SECRETS, "mpesa_shortcode": SHORTCODE})
        # The webhook secrets are generated: search for them too.
        cls.secrets = list(SECRETS.values()) + [
            cls.mpesa.mpesa_webhook_secret,
            cls.mpesa.mpesa_c2b_secret,
        ]

    def _assert_clean(self, text, where):
        for secret in self.secrets:
            self.assertNotIn(secret, text, f"a credential leaked into {where}")

    def test_no_credential_in_pages_assets_rpc_or_logs(self):
        collector = _Collect()
        collector.setFormatter(logging.Formatter("%(name)s %(message)s"))
        root = logging.getLogger()
        loggers = [
            logging.getLogger(n) for n in ("odoo.addons.mpesa_payment", "urllib3")
        ]
        levels = [lg.level for lg in loggers]
        root.addHandler(collector)
        for lg in loggers:
            lg.setLevel(logging.DEBUG)
        try:
            self._flows()
        finally:
            root.removeHandler(collector)
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
        self.assertTrue(
            any("mpesa_payment" in line for line in collector.lines),
            "the flows did log (the check below looks at real lines)",
        )
        self._assert_clean("\n".join(collector.lines), "the logs")

    def _flows(self):
        invoice = self._create_posted_invoice()
        url = invoice.get_portal_url()
        context, page = self._payment_context(url)
        self._assert_clean(page.text, "the portal invoice page")
        for asset in re.findall(r'(/web/assets/[^"]+\.(?:js|css))', page.text):
            self._assert_clean(self.url_open(asset).text, asset)
        processing = self._create_tx_through_route(context)
        self._assert_clean(str(processing), "the transaction route's answer")
        answer = self._stk_push(processing)
        self._assert_clean(str(answer), "the STK push route's answer")
        self._wait_callbacks()
        self._assert_clean(str(self._poll()), "the status poll")
        status = self.url_open("/payment/status")
        self._assert_clean(status.text, "the status page")
        with self._db_lock():
            self.mpesa.action_mpesa_test_connection()
            self.mpesa.action_mpesa_register_c2b_urls()

    def test_backend_rpc_refuses_credentials_to_non_admins(self):
        accountant = new_test_user(
            self.env,
            "mpesa_accountant",
            groups="base.group_user,account.group_account_manager,"
            "mpesa_payment.group_mpesa_manager",
            company_id=self.mpesa.company_id.id,
            company_ids=[(6, 0, self.mpesa.company_id.ids)],
        )
        self.authenticate(accountant.login, accountant.login)
        # Asking for the credentials, or even for the provider, is refused, and the
        # refusal carries no value.
        for spec in ({name: {} for name in SECRETS}, {"name": {}, "state": {}}):
            response = self.url_open(
                "/web/dataset/call_kw/payment.provider/web_read",
                data=self._jsonrpc(
                    "payment.provider",
                    "web_read",
                    [[self.mpesa.id]],
                    {"specification": spec},
                ),
                headers={"Content-Type": "application/json"},
            )
            self.assertEqual(
                response.json()["error"]["data"]["name"], "odoo.exceptions.AccessError"
            )
            self._assert_clean(response.text, "an RPC error")
        with self.assertRaises(AccessError):
            self.mpesa.with_user(accountant).read(["mpesa_passkey"])

    @staticmethod
    def _jsonrpc(model, method, args, kwargs):
        return json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "id": 1,
                "params": {
                    "model": model,
                    "method": method,
                    "args": args,
                    "kwargs": kwargs,
                },
            }
        )
