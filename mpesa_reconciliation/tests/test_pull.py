"""Automatic pull (issue #12): registered from the provider form, then a job pulls the
last hours, so a payment whose callback never came is found without anyone importing
a statement; over a real Daraja emulator, with the books checked."""

import time
from datetime import datetime, timedelta, timezone

from daraja_emulator import orgapi

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mpesa_payment.kenya_time import KENYA_TZ

from .common import SHORTCODE, ReconciliationCommon

PULL_LOGGER = "odoo.addons.mpesa_reconciliation.models.payment_provider"
QUERY = "/pulltransactions/v1/query"
REGISTER = "/pulltransactions/v1/register"
# A payer whose payments M-PESA records but never notifies (scenario no_callback).
SILENT_PHONE = "254711000111"


@tagged("post_install", "-at_install")
class TestPull(ReconciliationCommon):
    def setUp(self):
        super().setUp()
        # As Daraja: no pull without a registration.
        self.emulator.pull_requires_registration = True
        self.addCleanup(self._emulator_defaults)
        self.mpesa.sudo().mpesa_pull_nominated_number = "0722 000 000"

    def _emulator_defaults(self):
        self.emulator.pull_requires_registration = False
        self.emulator.pull_page_size = orgapi.PAGE_SIZE
        orgapi.fail_pulls(self.emulator, times=0)

    # === HELPERS === #

    def _register(self):
        with self._db_lock():
            action = self.mpesa.action_mpesa_register_pull()
            self.env.flush_all()
        return action

    def _run_cron(self):
        with self._db_lock():
            self.env.ref("mpesa_reconciliation.cron_mpesa_pull").method_direct_trigger()
            self.env.flush_all()
        self.env.invalidate_all()

    def _queries(self):
        return [body for _m, path, body in self.emulator.request_log if path == QUERY]

    def _pay_without_callback(self, bill_ref, amount):
        """A paybill payment M-PESA completes but never notifies us of."""
        self.emulator.set_scenario(SILENT_PHONE, no_callback=True)
        trans_id = self.emulator.c2b_pay(SHORTCODE, SILENT_PHONE, amount, bill_ref)
        deadline = time.monotonic() + 10
        while trans_id not in self.emulator.payments:  # recorded by a worker thread
            self.assertLess(time.monotonic(), deadline, "M-PESA never took the money")
            time.sleep(0.02)
        return trans_id

    def _receipt(self, code):
        return self.env["mpesa.receipt"].search([("name", "=", code)])

    @staticmethod
    def _kenya(moment):
        return moment.replace(tzinfo=timezone.utc).astimezone(KENYA_TZ)

    def _counts(self):
        return (
            self.env["mpesa.receipt"].search_count([]),
            self.env["account.bank.statement.line"].search_count([]),
            self.env["account.payment"].search_count([]),
        )

    # === REGISTRATION === #

    def test_register_from_the_form(self):
        # Refused by Safaricom: its message, and nothing recorded.
        self.mpesa.sudo().mpesa_shortcode = "999999"
        with self.assertRaisesRegex(UserError, "Invalid ShortCode"):
            self._register()
        self.mpesa.sudo().mpesa_shortcode = SHORTCODE
        self.mpesa.sudo().mpesa_pull_nominated_number = False
        with self.assertRaisesRegex(UserError, "nominated number"):
            self._register()
        self.mpesa.sudo().mpesa_pull_nominated_number = "0722"
        with self.assertRaisesRegex(UserError, "Nominated number: "):
            self._register()
        self.assertFalse(self.mpesa.mpesa_pull_registered)
        self.assertFalse([r for r in self.emulator.request_log if r[1] == REGISTER][1:])

        self.mpesa.sudo().mpesa_pull_nominated_number = "0722 000 000"
        action = self._register()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn(
            "Shortcode Registered Successfully (1000)", action["params"]["message"]
        )
        self.assertTrue(self.mpesa.mpesa_pull_registered)
        self.assertEqual(self.mpesa.sudo().mpesa_pull_nominated_number, "254722000000")
        registration = self.emulator.state.find_shortcode(SHORTCODE).pull
        self.assertEqual(
            registration,
            {
                "nominated": "254722000000",
                "callback_url": self.mpesa._mpesa_c2b_urls()["ConfirmationURL"],
            },
        )
        # Pressed again: Safaricom says it is already registered; that is fine.
        action = self._register()
        self.assertIn(
            "ShortCode already Registered (1001)", action["params"]["message"]
        )
        self.assertTrue(self.mpesa.mpesa_pull_registered)

    # === THE SCHEDULED PULL === #

    def test_missed_paybill_payment_is_found_by_the_cron(self):
        self._register()
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        code = self._pay_without_callback(invoice.name, 1000)
        self.assertFalse(self._receipt(code), "no callback: Odoo knows nothing yet")
        self.assertFalse(self.mpesa.mpesa_pull_last)

        self._run_cron()
        receipt = self._receipt(code)
        self.assertTrue(receipt.recovered)
        self.assertSeenBy(receipt, "import")
        self.assertEqual((receipt.state, receipt.invoice_id), ("applied", invoice))
        self._post_process(receipt)  # what the payment post-processing job does
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)
        self.assertTrue(self.mpesa.mpesa_pull_last)
        self.assertFalse(self.mpesa.mpesa_pull_error)
        self.assertIn("1 new receipts (1 payments", self.mpesa.mpesa_pull_result)
        # The window: the last 6 hours, up to now, in Kenya time; one page, then
        # M-PESA has no more rows.
        queries = self._queries()
        self.assertEqual([q["OffSetValue"] for q in queries], ["0", "1"])
        query = queries[0]
        self.assertEqual(query["ShortCode"], SHORTCODE)
        start = datetime.strptime(query["StartDate"], "%Y-%m-%d %H:%M:%S")
        end = datetime.strptime(query["EndDate"], "%Y-%m-%d %H:%M:%S")
        self.assertAlmostEqual((end - start).total_seconds(), 6 * 3600, delta=2)
        now = datetime.now(KENYA_TZ).replace(tzinfo=None)
        self.assertLess(abs((end - now).total_seconds()), 60, "ends now, Kenya time")

        # The next run overlaps this one: it sees the payment again, adds nothing.
        counts = self._counts()
        self._run_cron()
        again = self._queries()[len(queries) :]
        self.assertEqual(len(again), 2)
        self.assertLessEqual(again[0]["StartDate"], query["EndDate"])
        self.assertEqual(self._counts(), counts)
        self.assertIn("0 new receipts", self.mpesa.mpesa_pull_result)
        self.assertIn("1 already known", self.mpesa.mpesa_pull_result)
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_payment_known_from_its_callback_is_not_duplicated(self):
        self._register()
        invoice = self._invoice(700)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(invoice.name, 700)
        self._post_process(receipt)
        counts = self._counts()
        self._run_cron()
        self.assertEqual(self._counts(), counts)
        self.assertSeenBy(receipt, "c2b", "import")
        self.assertFalse(receipt.recovered)
        self.assertEqual(len(receipt.application_ids), 1)
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 700)

    def test_every_page_is_pulled(self):
        self._register()
        self.emulator.pull_page_size = 2
        now = datetime.now(KENYA_TZ)
        codes = [
            self.emulator.add_payment(
                10 + i, bill_ref="NOSUCH", time=now - timedelta(minutes=10 + i)
            )
            for i in range(5)
        ]
        self._run_cron()
        # Pages of 2, 2 and 1 rows; then M-PESA has none (1001) and the pull stops.
        self.assertEqual(
            [q["OffSetValue"] for q in self._queries()], ["0", "2", "4", "5"]
        )
        receipts = self.env["mpesa.receipt"].search([("name", "in", codes)])
        self.assertEqual(sorted(receipts.mapped("amount")), [10, 11, 12, 13, 14])
        self.assertTrue(all(receipts.mapped("recovered")))
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_error_with_http_200_keeps_the_window_and_is_shown(self):
        self._register()
        last = fields.Datetime.now() - timedelta(hours=20)
        self.mpesa.sudo().mpesa_pull_last = last
        # Older than the 6-hour window, newer than the last successful pull.
        code = self.emulator.add_payment(
            300, bill_ref="NOSUCH", time=datetime.now(KENYA_TZ) - timedelta(hours=15)
        )
        orgapi.fail_pulls(self.emulator)  # the next query: HTTP 200, ResponseCode 500
        with mute_logger(PULL_LOGGER):  # the failure is logged as a warning
            self._run_cron()
        self.assertEqual(self.mpesa.mpesa_pull_last, last, "the start stays")
        self.assertIn(
            "M-PESA could not pull the transactions: Failed to retrieve transactions "
            "(ResponseCode 500)",
            self.mpesa.mpesa_pull_error,
        )
        self.assertFalse(self._receipt(code))

        self._run_cron()  # M-PESA answers again: the same period, nothing skipped
        self.assertTrue(self._receipt(code).recovered)
        self.assertFalse(self.mpesa.mpesa_pull_error)
        self.assertGreater(self.mpesa.mpesa_pull_last, last)
        expected = self._kenya(last - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        self.assertEqual(self._queries()[-1]["StartDate"], expected)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_pull_older_than_what_mpesa_keeps_says_what_to_import(self):
        self._register()
        self.mpesa.sudo().mpesa_pull_last = fields.Datetime.now() - timedelta(days=5)
        with mute_logger(PULL_LOGGER):  # the period to import is logged as a warning
            self._run_cron()
        (query,) = self._queries()
        start = datetime.strptime(query["StartDate"], "%Y-%m-%d %H:%M:%S")
        now = datetime.now(KENYA_TZ).replace(tzinfo=None)
        self.assertLess(now - start, timedelta(hours=48))
        self.assertIn("import the statement from", self.mpesa.mpesa_pull_result)

    def test_unregistered_provider_is_skipped(self):
        code = self.emulator.add_payment(40, bill_ref="NOSUCH")
        self._run_cron()
        self.assertFalse(self._queries())
        self.assertFalse(self._receipt(code))
        self.assertFalse(self.mpesa.mpesa_pull_last or self.mpesa.mpesa_pull_error)
        # A manual pull is refused by M-PESA (HTTP 200, error code): said, not hidden.
        with self._db_lock():
            wizard = self.env["mpesa.statement.import"].create(
                {"provider_id": self.mpesa.id, "source": "pull"}
            )
            with self.assertRaisesRegex(UserError, "not registered for Pull"):
                wizard.action_import()
        self.assertFalse(self._receipt(code))

    # === REFUNDS, THEN PULLS === #

    def test_refunded_payment_pulled_again_stays_refunded(self):
        self._register()
        receipt = self._c2b("NOSUCHREF", 250)
        with self._db_lock():
            receipt.action_request_reversal()
            self.env.flush_all()
        # M-PESA's result arrives on our result URL (after the status query's).
        deadline = time.monotonic() + 15
        while True:
            self._apply_inbox()
            with self._db_lock():
                self.env.invalidate_all()
                if receipt.state == "reversed":
                    break
            self.assertLess(time.monotonic(), deadline, "no reversal result")
            time.sleep(0.05)
        counts = self._counts()
        self._run_cron()
        self.assertEqual(self._counts(), counts)
        self.assertEqual(receipt.state, "reversed")
        self.assertSeenBy(receipt, "c2b", "import")
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    # === GO-LIVE CHECKLIST === #

    def _pull_item(self):
        self.mpesa.invalidate_recordset()
        items = self.mpesa._mpesa_readiness_items()
        return next(item for item in items if item["key"] == "pull_job")

    def test_checklist_pull_job(self):
        """The checklist's pull item is red until the shortcode is registered for
        Pull Transactions, and while the scheduled pull is switched off."""
        item = self._pull_item()
        self.assertEqual(item["state"], "missing")
        self.assertIn("not registered for Pull Transactions", item["sentence"])
        self.assertIn("Register for Pull Transactions", item["fix"])
        self._register()
        self.assertEqual(self._pull_item()["state"], "ok")
        cron = self.env.ref("mpesa_reconciliation.cron_mpesa_pull")
        cron.active = False
        item = self._pull_item()
        self.assertEqual(item["state"], "missing")
        self.assertIn(cron.name, item["sentence"])
        cron.active = True
        self.assertEqual(self._pull_item()["state"], "ok")
