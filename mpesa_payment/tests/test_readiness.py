"""The go-live checklist on the provider form (issue #12, point 2): every item red,
then fixed as an admin fixes it, then green; what only Daraja knows is asked by
Run checks, from the emulator over real HTTP."""

import logging

from daraja_emulator import DEFAULT_INITIATOR_PASSWORD

from odoo.tests import Form, tagged

from .common import MpesaHttpCommon

PUBLIC_URL = "https://shop.example.co.ke"
FORM_LOGGER = "odoo.tests.form.onchange"


@tagged("post_install", "-at_install")
class TestReadiness(MpesaHttpCommon):
    def _item(self, key, provider=None):
        provider = provider or self.mpesa
        with self._db_lock():  # an emulator's result may be landing
            self.env.invalidate_all()
            items = provider._mpesa_readiness_items()
        [item] = [i for i in items if i["key"] == key]
        return item

    def assertItem(self, key, state, text=None, provider=None):
        item = self._item(key, provider)
        self.assertEqual(item["state"], state, item["sentence"])
        if text:
            self.assertIn(text, item["sentence"])
        if state == "ok":
            self.assertFalse(item["fix"], "a green item needs no fix")
        else:
            self.assertTrue(item["fix"], "a red item says what fixes it")
        return item

    def _set_param(self, key, value):
        self.env["ir.config_parameter"].sudo().set_param(key, value)

    def _public_address(self):
        self._set_param("web.base.url", PUBLIC_URL)
        self._set_param("web.base.url.freeze", "True")

    def _run_checks(self):
        with self._db_lock():
            self.mpesa.action_mpesa_run_checks()
            self.env.flush_all()

    def _run_checks_and_wait_result(self):
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        self._run_checks()
        self.assertTrue(self.mpesa.mpesa_ready_balance_request_id)
        self._wait_callbacks(before + 1, kind="result")

    # === ITEMS COMPUTED LIVE === #

    def test_public_https_address(self):
        self.assertItem("base_url", "missing", "is not https")
        self._set_param("web.base.url", "https://localhost:8069")
        self.assertItem("base_url", "missing", "private network")
        self._set_param("web.base.url", "https://192.168.1.20")
        self.assertItem("base_url", "missing", "private network")
        self._set_param("web.base.url", PUBLIC_URL)
        self.assertItem("base_url", "missing", "not frozen")
        self._set_param("web.base.url.freeze", "True")
        self.assertItem("base_url", "ok", PUBLIC_URL)

    def test_shortcode_and_passkey(self):
        # Safaricom's sandbox values are right in test mode, wrong in production.
        self.assertItem("shortcode", "ok", "Paybill 174379")
        self.mpesa.state = "enabled"
        self.assertItem("shortcode", "missing", "sandbox test one")
        self.mpesa.write({"mpesa_shortcode": "600981", "mpesa_passkey": "f" * 64})
        self.assertItem("shortcode", "ok", "Paybill 600981")
        # Buy Goods: the store number (with the passkey) is not the till.
        self.mpesa.write(
            {"mpesa_shortcode_type": "till", "mpesa_till_number": "600981"}
        )
        self.assertItem("shortcode", "missing", "they are the same here")
        self.mpesa.mpesa_till_number = "5123456"
        self.assertItem("shortcode", "ok", "money to till 5123456")

    def test_c2b_urls_registered_for_the_current_address(self):
        # Registered in setUp for the test server's http address: not for production.
        self.assertItem("c2b", "missing", "must use https")
        self._public_address()
        self.assertItem("c2b", "missing", "register them again")
        self.mpesa.action_mpesa_register_c2b_urls()
        item = self.assertItem("c2b", "ok", "Registered with Safaricom")
        registered = self.emulator.state.find_shortcode("174379").c2b
        self.assertTrue(
            registered["confirmation_url"].startswith(PUBLIC_URL), registered
        )
        # Registered before the checklist kept the URL: unknown, not red.
        self.mpesa.mpesa_c2b_registered_url = False
        self.assertItem("c2b", "unchecked", "was not recorded then")
        # A rotated secret changes the URLs: red until registered again.
        self.mpesa.action_mpesa_rotate_c2b_secret()
        self.assertItem("c2b", "missing", "Not registered")
        self.mpesa.action_mpesa_register_c2b_urls()
        self.assertItem("c2b", "ok")
        # An address with a word Safaricom refuses in C2B URLs.
        self._set_param("web.base.url", "https://mpesa.shop.example.co.ke")
        item = self.assertItem("c2b", "missing", "must not contain the word 'mpesa'")
        self.assertEqual(item["fix"], "Register C2B URLs")

    def test_callback_ip_allow_list(self):
        self.assertItem("callback_ips", "missing", "any sender")
        self.mpesa.mpesa_callback_ips = "196.201.214.0/24, 196.201.213.44"
        self.assertItem("callback_ips", "ok", "2 address range(s)")

    def test_shortcode_of_another_company(self):
        """A provider duplicated for a second company keeps the shortcode: that
        company's payments would reach the first one's M-PESA account and be booked
        in its own journal. Each company needs its own shortcode."""
        other = self.setup_other_company(name="Mombasa Ltd")
        copy = self.mpesa.copy(
            {
                "company_id": other["company"].id,
                "journal_id": other["default_journal_bank"].id,
                "state": "test",
            }
        )
        self.assertItem(
            "shortcode", "missing", "also the M-PESA account of Mombasa Ltd"
        )
        ours = self.mpesa.company_id.name
        self.assertItem("shortcode", "missing", ours, provider=copy)
        copy.mpesa_shortcode = "600100"
        self.assertItem("shortcode", "ok", "Paybill 174379")
        copy.mpesa_shortcode = self.mpesa.mpesa_shortcode
        copy.state = "disabled"  # a disabled copy takes no payments
        self.assertItem("shortcode", "ok")

    def test_journals_in_shillings(self):
        """M-PESA pays shillings: a journal in dollars would book KES 1,290 as $1,290,
        a bank line no payment matches (the provider's journal and the B2C one)."""
        kes_journal = self.mpesa.journal_id
        self.assertItem("journal", "ok", kes_journal.name)
        dollars = self.env["account.journal"].create(
            {
                "name": "Dollar Bank",
                "code": "USDB",
                "type": "bank",
                "currency_id": self._enable_currency("USD").id,
            }
        )
        self.mpesa.mpesa_b2c_journal_id = dollars
        self.assertItem("journal", "missing", "Dollar Bank keeps its books in USD")
        self.mpesa.mpesa_b2c_journal_id = False
        self.mpesa.journal_id = dollars
        self.assertItem("journal", "missing", "Dollar Bank keeps its books in USD")
        self.mpesa.journal_id = kes_journal
        self.assertItem("journal", "ok")

    def test_status_query_jobs_active(self):
        cron = self.env.ref("mpesa_payment.cron_query_pending")
        cron.active = False
        self.assertItem("status_jobs", "missing", cron.name)
        cron.active = True
        self.assertItem("status_jobs", "ok", cron.name)

    def test_callbacks_waiting_for_the_inbox_job(self):
        """The money of a callback is applied by the inbox job: a callback still
        waiting long after it came says Odoo's cron workers are not running."""
        cron = self.env.ref("mpesa_payment.cron_apply_inbox")
        self.assertItem("inbox_job", "ok", cron.name)
        callback = self.env["mpesa.callback"]._store("stk", "{}", self.mpesa)
        self.assertItem("inbox_job", "ok", cron.name)  # just came: not late
        self.env.cr.execute(
            "UPDATE mpesa_callback SET create_date = now() - interval '11 minutes'"
            " WHERE id = %s",
            [callback.id],
        )
        self.assertItem(
            "inbox_job",
            "missing",
            "more than 10 minutes for their money to be applied: 1.",
        )
        callback._process()  # what the job does
        self.assertItem("inbox_job", "ok", cron.name)
        cron.active = False
        self.assertItem("inbox_job", "missing", cron.name)

    def test_form_checklist_still_counts_its_waiting_callbacks(self):
        """While an admin edits the provider, its checklist is computed on the form's
        draft record (a NewId): a late callback of this provider still shows."""
        late = self.env["mpesa.callback"]._store("stk", "{}", self.mpesa)
        self.env.cr.execute(
            "UPDATE mpesa_callback SET create_date = now() - interval '11 minutes'"
            " WHERE id = %s",
            [late.id],
        )
        self.assertItem("inbox_job", "missing", "more than 10 minutes")
        with self._db_lock(), Form(self.mpesa) as form:
            form.mpesa_security_credential = "pasted elsewhere"
            self.assertIn(
                "more than 10 minutes for their money", str(form.mpesa_readiness_html)
            )

    # === RUN CHECKS: DARAJA OVER HTTP === #

    def test_oauth_wrong_then_right_secret(self):
        self.assertItem("oauth", "unchecked")
        self.mpesa.mpesa_consumer_secret = "not-the-secret"
        self._run_checks()
        self.assertTrue(self.mpesa.mpesa_ready_checked_on)
        self.assertItem("oauth", "missing", "rejected the consumer key or secret")
        # No balance query with refused keys: the initiator is left unchecked.
        self.assertFalse(self.mpesa.mpesa_ready_balance_request_id)
        self.assertItem("initiator", "unchecked")
        self.mpesa.mpesa_consumer_secret = "emulator-secret"
        # A changed secret is not the one checked: grey again, not a stale red.
        self.assertItem("oauth", "unchecked")
        self._run_checks_and_wait_result()
        self.assertItem("oauth", "ok")
        self.assertIn(
            "o_mpesa_ready_ok", str(self.mpesa.mpesa_readiness_html).split('"oauth"')[1]
        )

    def test_initiator_refused_then_accepted(self):
        """Encrypted with Safaricom's sandbox certificate while the API is the
        emulator's: M-PESA takes the balance query, then refuses the initiator."""
        self.mpesa.write(
            {
                "mpesa_certificate": False,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
            }
        )
        self.assertItem("initiator", "unchecked", "Not checked")
        self._run_checks_and_wait_result()
        request = self.mpesa.mpesa_ready_balance_request_id
        self.assertEqual((request.state, request.result_code), ("failed", "2001"))
        self.assertItem("initiator", "missing", "M-PESA refused the initiator (2001")
        # The admin types the password with the right certificate.
        self.mpesa.write(
            {
                "mpesa_certificate": self.emulator.certificate_pem,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
            }
        )
        self.assertItem("initiator", "unchecked")
        self.emulator.result_delay = 1.0  # the answer comes later: pending meanwhile
        self.addCleanup(setattr, self.emulator, "result_delay", 0.05)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        self._run_checks()
        self.assertItem("initiator", "unchecked", "has not answered yet")
        self._wait_callbacks(before + 1, kind="result")
        self.assertItem("initiator", "ok", "answered a balance query")

    def test_initiator_missing(self):
        self.mpesa.mpesa_security_credential = False
        self.assertItem("initiator", "missing", "Type the initiator password")

    # === GOING LIVE === #

    def test_going_live_warns_and_clears_the_credential(self):
        self.assertTrue(self.mpesa.mpesa_security_credential)
        with (
            self.assertLogs(FORM_LOGGER, logging.WARNING) as logs,
            Form(self.mpesa) as form,
        ):
            form.state = "enabled"
        warning = "\n".join(logs.output)
        self.assertIn("type the initiator password again", warning)
        self.assertIn("go-live checklist are red", warning)
        self.assertIn("Public https address", warning)
        self.assertIn("Callback IP allow-list", warning)
        self.assertEqual(self.mpesa.state, "enabled")
        self.assertFalse(self.mpesa.mpesa_security_credential)
        self.assertItem("initiator", "missing", "Type the initiator password")

    def test_environment_switch_clears_the_credential(self):
        """Outside the form too (a write over RPC), both ways; a password typed in
        the same save is encrypted for the new environment and kept."""
        self.mpesa.state = "enabled"
        self.assertFalse(self.mpesa.mpesa_security_credential)
        self.mpesa.write(
            {
                "mpesa_certificate": self.emulator.certificate_pem,
                "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
            }
        )
        self.assertTrue(self.mpesa.mpesa_security_credential)
        self.mpesa.state = "test"
        self.assertFalse(self.mpesa.mpesa_security_credential)
        self.mpesa.write(
            {"state": "enabled", "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD}
        )
        credential = self.mpesa.mpesa_security_credential
        self.assertTrue(
            self.emulator.key_pair.matches(credential, DEFAULT_INITIATOR_PASSWORD)
        )
        # Disabling is no switch of environment: the credential stays.
        self.mpesa.state = "disabled"
        self.assertEqual(self.mpesa.mpesa_security_credential, credential)

    def test_all_green(self):
        """A provider with everything fixed is ready."""
        # Daraja's answers first: the balance result comes to the test server.
        self._run_checks_and_wait_result()
        self._public_address()
        self.mpesa.mpesa_callback_ips = "196.201.214.0/24"
        self.mpesa.action_mpesa_register_c2b_urls()
        if "mpesa_pull_registered" in self.mpesa._fields:
            self.mpesa.mpesa_pull_registered = "2026-01-01 00:00:00"
        red = [
            item
            for item in self.mpesa._mpesa_readiness_items()
            if item["state"] != "ok"
        ]
        self.assertEqual(red, [])
        self.assertTrue(self.mpesa.mpesa_readiness_ok)
