import time

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .. import const
from ..models.mpesa_receipt import CHANNELS
from .common import PHONE, MpesaCommon, stk_payload


def _pushes(emulator):
    return [
        r[2] for r in emulator.request_log if r[1] == "/mpesa/stkpush/v1/processrequest"
    ]


@tagged("post_install", "-at_install")
class TestPaymentTransaction(MpesaCommon):
    def setUp(self):
        super().setUp()
        # Nothing listens for callbacks in a TransactionCase: outcomes are fed to the
        # transaction directly, or read back with the status query.
        self.emulator.set_default_scenario(no_callback=True)

    def _age(self, tx, minutes):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE payment_transaction SET last_state_change = now() at time zone 'utc'"
            " - make_interval(mins => %s), create_date = now() at time zone 'utc'"
            " - make_interval(mins => %s) WHERE id = %s",
            [minutes, minutes, tx.id],
        )
        tx.invalidate_recordset()

    # === phone, amount, reference === #

    def test_phone_normalisation(self):
        Tx = self.env["payment.transaction"]
        for raw in (
            "0708374149",
            "+254 708 374 149",
            "254708374149",
            "708374149",
            "0708-374-149",
        ):
            self.assertEqual(Tx._mpesa_normalize_phone(raw), PHONE, raw)
        self.assertEqual(Tx._mpesa_normalize_phone("0110000333"), "254110000333")
        for bad in (
            "",
            "0201234567",
            "12345",
            "+255712345678",
            "07083741490",
            "0722OOO111",
        ):
            with self.assertRaises(ValidationError, msg=bad):
                Tx._mpesa_normalize_phone(bad)

    def test_amount_must_be_payable_in_one_push(self):
        for amount, message in (
            (10.5, "whole shillings"),
            (250001, "at most"),
            (0.4, "whole shillings"),
        ):
            tx = self._create_mpesa_tx(amount=amount, reference=f"R-{amount}")
            with self.assertRaisesRegex(ValidationError, message):
                tx._mpesa_send_stk_push(PHONE)
            self.assertEqual(tx.state, "draft")
        self.assertFalse(_pushes(self.emulator))

    def test_push_sends_documented_request(self):
        tx = self._create_mpesa_tx(reference="INV/2026/000123-1")
        tx._mpesa_send_stk_push("0708 374 149")
        self.assertEqual(tx.state, "pending")
        self.assertTrue(tx.mpesa_checkout_request_id.startswith("ws_CO_"))
        self.assertTrue(tx.mpesa_merchant_request_id)
        self.assertIn("2547****149", tx.state_message)
        (request,) = _pushes(self.emulator)
        self.assertEqual(request["Amount"], 1250)
        self.assertEqual(request["PhoneNumber"], PHONE)
        self.assertEqual(request["PartyB"], "174379")
        self.assertEqual(request["TransactionType"], "CustomerPayBillOnline")
        self.assertLessEqual(
            len(request["AccountReference"]), const.ACCOUNT_REFERENCE_MAX
        )
        self.assertEqual(request["AccountReference"], "INV260001231")
        self.assertLessEqual(
            len(request["TransactionDesc"]), const.TRANSACTION_DESC_MAX
        )
        self.assertIn(f"/payment/daraja/stk/{tx.id}.", request["CallBackURL"])

    def test_push_to_till(self):
        self.mpesa.write(
            {"mpesa_shortcode_type": "till", "mpesa_till_number": "174379"}
        )
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        (request,) = _pushes(self.emulator)
        self.assertEqual(request["TransactionType"], "CustomerBuyGoodsOnline")

    def test_push_refused_by_daraja_explains(self):
        self.mpesa.mpesa_passkey = "not-the-passkey"
        tx = self._create_mpesa_tx()
        with self.assertRaisesRegex(
            ValidationError, "could not send the payment request"
        ):
            tx._mpesa_send_stk_push(PHONE)
        self.assertEqual(tx.state, "draft")

    def test_push_twice_is_refused(self):
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        with self.assertRaisesRegex(ValidationError, "already sent"):
            tx._mpesa_send_stk_push(PHONE)

    # === outcomes === #

    def test_every_result_code_maps_to_a_state_and_message(self):
        self.mpesa.mpesa_push_limit_phone = 0  # one phone, a prompt per result code
        for code, (state, _message) in const.RESULT_CODES.items():
            if code == 0:
                continue
            tx = self._create_mpesa_tx(reference=f"RC-{code}")
            tx._mpesa_send_stk_push(PHONE)
            tx._process_notification_data(stk_payload(tx, code))
            self.assertEqual(tx.state, state, code)
            self.assertEqual(tx.mpesa_result_code, str(code))
            self.assertTrue(tx.state_message, code)
        tx = self._create_mpesa_tx(reference="RC-unknown")
        tx._mpesa_send_stk_push(PHONE)
        tx._process_notification_data(stk_payload(tx, 4242))
        self.assertEqual(tx.state, "error")
        self.assertIn("4242", tx.state_message)

    def test_customer_messages(self):
        expectations = {
            1032: "You cancelled",
            2001: "PIN entered was wrong",
            1: "insufficient",
            1037: "could not be reached",
            1019: "expired",
        }
        for code, text in expectations.items():
            tx = self._create_mpesa_tx(reference=f"MSG-{code}")
            tx._mpesa_send_stk_push(PHONE)
            tx._process_notification_data(stk_payload(tx, code))
            self.assertIn(text, tx.state_message)

    def test_success_is_verified_then_done(self):
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        time.sleep(0.2)  # the emulator completes the prompt
        tx._process_notification_data(stk_payload(tx, receipt="QAB1CD2EF3"))
        self.assertEqual(tx.state, "done")
        self.assertEqual(tx.mpesa_receipt_code, "QAB1CD2EF3")
        receipt = self.env["mpesa.receipt"].search([("name", "=", "QAB1CD2EF3")])
        self.assertEqual(receipt.amount, 1250)
        self.assertEqual(receipt.transaction_id, tx)
        self.assertSeenBy(receipt, "stk")
        self.assertEqual(receipt.state, "applied")
        queries = [r for r in self.emulator.request_log if "stkpushquery" in r[1]]
        self.assertEqual(len(queries), 1, "a success is verified with Safaricom")
        # Nothing is emailed inside the callback: the customer's one message is the
        # receipt's, with its PDF, sent by a job (test_processing_flows).
        messages = self.env["mail.message"].search([("subject", "ilike", "QAB1CD2EF3")])
        self.assertFalse(messages)

    def test_seen_by_flags_are_the_channels(self):
        """One Seen By flag per channel of CHANNELS, named and labelled after it; a
        later channel adds its own flag, a channel seen again changes nothing."""
        Receipt = self.env["mpesa.receipt"]
        flags = {name for name in Receipt._fields if name.startswith("seen_by_")}
        self.assertEqual(flags, {Receipt._seen_by_field(c) for c, _label in CHANNELS})
        for code, label in CHANNELS:
            field = Receipt._fields[Receipt._seen_by_field(code)]
            self.assertEqual((field.type, field.store), ("boolean", True))
            self.assertEqual(field.string, f"Seen by {label}")
        with self.assertRaises(ValueError):
            Receipt._seen_by_field("sms")
        vals = {"name": "QSB1CD2EF3", "provider_id": self.mpesa.id, "amount": 90}
        receipt = Receipt._record(vals, channel="query")
        self.assertSeenBy(receipt, "query")
        self.assertEqual(receipt.channel, "query")
        self.assertEqual(Receipt._record(vals, channel="stk"), receipt)
        self.assertSeenBy(receipt, "query", "stk")
        self.assertEqual(receipt.channel, "query", "the first channel stands")
        self.assertEqual(receipt._seen_by_vals("stk"), {})
        self.assertEqual(receipt._seen_by_vals("import"), {"seen_by_import": True})

    def test_success_not_confirmed_by_query_is_not_paid(self):
        self.emulator.set_scenario(PHONE, result_code=1032, no_callback=True)
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        time.sleep(0.2)
        # someone forges a success for a prompt that was in fact cancelled
        tx._process_notification_data(stk_payload(tx, receipt="FORGED0001"))
        self.assertEqual(tx.state, "pending")
        self.assertTrue(tx.mpesa_needs_review)

    def test_amount_mismatch_is_never_paid(self):
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        tx._process_notification_data(
            stk_payload(tx, amount=1000, receipt="QAB1CD2EF4")
        )
        self.assertEqual(tx.state, "pending")
        self.assertTrue(tx.mpesa_needs_review)
        self.assertEqual(tx.mpesa_paid_amount, 1000)
        self.assertIn("awaiting review", tx.state_message)
        # the money is on the ledger even though the payment is not done
        self.assertTrue(self.env["mpesa.receipt"].search([("name", "=", "QAB1CD2EF4")]))
        # later results do not override the review
        tx._process_notification_data(stk_payload(tx, 1032))
        self.assertEqual(tx.state, "pending")

    def test_same_success_twice_is_one_payment(self):
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        time.sleep(0.2)
        payload = stk_payload(tx, receipt="QAB1CD2EF5")
        tx._process_notification_data(payload)
        tx._process_notification_data(payload)
        self.assertEqual(tx.state, "done")
        self.assertEqual(
            self.env["mpesa.receipt"].search_count([("name", "=", "QAB1CD2EF5")]), 1
        )

    # === second push for the same document === #

    def test_second_push_for_same_invoice_is_prevented(self):
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.partner,
            amounts=[1250],
            currency=self.currency_kes,
            post=True,
        )
        self.emulator.set_default_scenario(
            delay=30, no_callback=True
        )  # prompt stays open
        first = self._create_mpesa_tx(
            reference="DUP-1", invoice_ids=[(6, 0, invoice.ids)]
        )
        first._mpesa_send_stk_push(PHONE)
        second = self._create_mpesa_tx(
            reference="DUP-2", invoice_ids=[(6, 0, invoice.ids)]
        )
        with self.assertRaisesRegex(ValidationError, "already waiting"):
            second._mpesa_send_stk_push(PHONE)
        # once the first prompt ended (cancelled), a new one may go
        first._process_notification_data(stk_payload(first, 1032))
        second._mpesa_send_stk_push(PHONE)
        self.assertEqual(second.state, "pending")

    # === recovery by status query === #

    def test_cron_recovers_missing_callback(self):
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        time.sleep(0.2)
        self.env["payment.transaction"]._cron_mpesa_query_pending()
        self.assertEqual(tx.state, "pending", "too early: within the query delay")
        self._age(tx, 5)
        self.env["payment.transaction"]._cron_mpesa_query_pending()
        self.assertEqual(tx.state, "done")
        self.assertIn("status query", tx.state_message)

    def test_query_still_processing_keeps_pending(self):
        for mode in ("4999", "http500"):
            self.emulator.set_scenario(
                PHONE, delay=30, no_callback=True, query_pending=mode
            )
            tx = self._create_mpesa_tx(reference=f"Q-{mode}")
            tx._mpesa_send_stk_push(PHONE)
            self._age(tx, 5)
            self.env["payment.transaction"]._cron_mpesa_query_pending()
            self.assertEqual(tx.state, "pending", mode)
            self.assertTrue(tx.mpesa_last_query, mode)

    def test_expired_prompt_ends_cancelled(self):
        self.emulator.set_scenario(PHONE, delay=30, no_callback=True)
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(PHONE)
        self._age(tx, 45)
        # A button answers True (None cannot be sent over XML-RPC).
        self.assertIs(tx.action_mpesa_query_status(), True)
        self.assertEqual(tx.state, "cancel")
        self.assertIn("expired", tx.state_message)

    def test_success_after_unreachable_is_recovered(self):
        late = "254700001038"  # emulator: 1037, then a late success after 1 s
        tx = self._create_mpesa_tx()
        tx._mpesa_send_stk_push(late)
        tx._process_notification_data(stk_payload(tx, 1037))
        self.assertEqual(tx.state, "cancel")
        self.assertTrue(tx.mpesa_recheck)
        time.sleep(1.5)
        self.env["payment.transaction"]._cron_mpesa_query_pending()
        self.assertEqual(tx.state, "done")
