import time

from odoo.exceptions import AccessError, UserError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import tagged

from .common import MpesaCommon

CREDENTIAL_FIELDS = (
    "mpesa_consumer_key",
    "mpesa_consumer_secret",
    "mpesa_passkey",
    "mpesa_security_credential",
    "mpesa_b2c_security_credential",
    "mpesa_webhook_secret",
    "mpesa_access_token",
)


def _oauth_calls(emulator):
    return [r for r in emulator.request_log if r[1].startswith("/oauth/")]


@tagged("post_install", "-at_install")
class TestPaymentProvider(MpesaCommon):
    def test_supported_currency_and_method(self):
        self.assertEqual(self.mpesa._get_supported_currencies().mapped("name"), ["KES"])
        self.assertIn(self.payment_method, self.mpesa.payment_method_ids)
        providers = (
            self.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                self.company.id,
                self.partner.id,
                100.0,
                currency_id=self.currency_kes.id,
            )
        )
        self.assertIn(self.mpesa, providers)
        providers = (
            self.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                self.company.id,
                self.partner.id,
                100.0,
                currency_id=self.currency_euro.id,
            )
        )
        self.assertNotIn(self.mpesa, providers)

    def test_credentials_are_admin_only(self):
        user = self.internal_user
        self._prepare_user(user, "account.group_account_manager")
        fields_seen = self.env["payment.provider"].with_user(user).fields_get()
        for fname in CREDENTIAL_FIELDS:
            self.assertNotIn(fname, fields_seen, fname)
            with self.assertRaises(AccessError):
                self.mpesa.with_user(user).read([fname])
        self.assertIn("mpesa_consumer_key", self.env["payment.provider"].fields_get())

    def test_environment_follows_state(self):
        self.assertEqual(self.mpesa.mpesa_environment, "sandbox")
        self.mpesa.mpesa_api_url = False
        self.assertEqual(
            self.mpesa._mpesa_base_url(), "https://sandbox.safaricom.co.ke"
        )
        self.mpesa.state = "enabled"
        self.assertEqual(self.mpesa.mpesa_environment, "production")
        self.assertEqual(self.mpesa._mpesa_base_url(), "https://api.safaricom.co.ke")

    def test_connection_test_ok_and_plain_failure(self):
        action = self.mpesa.action_mpesa_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.mpesa.mpesa_consumer_secret = "wrong"
        with self.assertRaisesRegex(UserError, "rejected the consumer key or secret"):
            self.mpesa.action_mpesa_test_connection()
        self.mpesa.mpesa_api_url = "http://127.0.0.1:9"  # nothing listens there
        with self.assertRaisesRegex(UserError, "could not be reached"):
            self.mpesa.action_mpesa_test_connection()

    def test_token_is_cached_and_shared(self):
        client_a = self.mpesa._mpesa_client()
        client_b = self.mpesa._mpesa_client()  # another worker: same provider row
        token_a = client_a._token()
        token_b = client_b._token()
        self.assertEqual(token_a, token_b)
        self.assertEqual(len(_oauth_calls(self.emulator)), 1)

    def test_token_refreshed_once_on_invalid_token(self):
        self.mpesa._mpesa_client()._token()
        self.emulator.invalidate_tokens()
        answer = self.mpesa._mpesa_client().post(
            "/mpesa/c2b/v2/registerurl",
            {
                "ShortCode": "174379",
                "ResponseType": "Completed",
                "ConfirmationURL": "https://example.com/confirmation",
                "ValidationURL": "https://example.com/validation",
            },
        )
        self.assertEqual(answer["ResponseCode"], "0")
        self.assertEqual(len(_oauth_calls(self.emulator)), 2)

    def test_callback_tokens(self):
        token = self.mpesa._mpesa_make_token("stk", 42)
        Provider = self.env["payment.provider"]
        self.assertEqual(Provider._mpesa_check_token("stk", token), (self.mpesa, 42))
        record_id, expiry, sig = token.split(".")
        # another record, another scope, a forged signature, an expired token
        self.assertIsNone(Provider._mpesa_check_token("stk", f"43.{expiry}.{sig}"))
        self.assertIsNone(Provider._mpesa_check_token("c2b", token))
        self.assertIsNone(
            Provider._mpesa_check_token("stk", f"{record_id}.{expiry}.{'0' * 40}")
        )
        self.assertIsNone(Provider._mpesa_check_token("stk", "garbage"))
        expired = self.mpesa._mpesa_make_token("stk", 42, days=-1)
        self.assertIsNone(Provider._mpesa_check_token("stk", expired))
        self.assertLess(int(expired.split(".")[1]), time.time())
        # rotating the secret revokes earlier tokens
        self.assertIs(self.mpesa.action_mpesa_rotate_secret(), True)
        self.assertIsNone(Provider._mpesa_check_token("stk", token))


@tagged("post_install", "-at_install")
class TestNeutralize(MpesaCommon):
    """A duplicated or neutralized database never talks to Safaricom as the original."""

    def test_neutralized_copy_keeps_no_credentials(self):
        self.mpesa.sudo().write(
            {
                "state": "enabled",
                "mpesa_access_token": "live-token",
                "mpesa_b2c_security_credential": "live-b2c-credential",
            }
        )
        secrets = self.mpesa.sudo().read(["mpesa_webhook_secret", "mpesa_c2b_secret"])[
            0
        ]
        token = self.mpesa._mpesa_make_token("stk", 42)
        self.env.flush_all()
        for query in get_neutralization_queries(["payment", "mpesa_payment"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        provider = self.mpesa.sudo()
        self.assertEqual(provider.state, "disabled", "core: providers disabled")
        for fname in CREDENTIAL_FIELDS:
            if fname != "mpesa_webhook_secret":
                self.assertFalse(provider[fname], fname)
        for fname in ("mpesa_webhook_secret", "mpesa_c2b_secret"):
            self.assertTrue(provider[fname], fname)
            self.assertNotEqual(provider[fname], secrets[fname], fname)
        self.assertIsNone(
            provider._mpesa_check_token("stk", token),
            "the original's callback URLs are refused by the copy",
        )
