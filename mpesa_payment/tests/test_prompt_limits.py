"""Issue 11, finding 2: prompt spam on /payment/mpesa/stk_push. A prompt never asks
for more than is due, and limits per document, per phone and per client address
refuse a burst with a clear message. (Two tabs racing for one document need two
real workers: tests/live/test_live_hostile.py.)"""

import json

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MpesaHttpCommon, stk_payload

CANCELS = "254700001032"  # the emulator's customer who cancels every prompt


@tagged("post_install", "-at_install")
class TestPromptLimits(MpesaHttpCommon):
    def setUp(self):
        super().setUp()
        with self._db_lock():
            self.mpesa.write(
                {
                    "mpesa_push_limit_document": 2,
                    "mpesa_push_limit_phone": 3,
                    "mpesa_push_limit_address": 4,
                }
            )
            self.env.flush_all()

    def _new_invoice(self, amount):
        # Callbacks of earlier prompts may be landing: the server shares our cursor.
        with self._db_lock():
            invoice = self._invoice(amount)
            self.env.flush_all()
        return invoice

    def _prompts_to(self, phone):
        return [p for p in self.emulator.prompts.values() if p.phone == phone]

    def test_prompt_for_more_than_is_due_is_refused(self):
        invoice = self._new_invoice(1000.0)
        tx, token = self._tx_for(invoice, amount=150000.0)
        result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertIsNone(result)
        self.assertIn("more than the KES 1,000.00 still due", error)
        self.assertFalse(self.emulator.prompts, "no prompt reached the phone")
        tx, token = self._tx_for(invoice, amount=400.0)  # an instalment is fine
        result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertIsNone(error)
        self.assertEqual(result["state"], "pending")

    @mute_logger("odoo.addons.mpesa_payment.models.payment_transaction")
    def test_document_limit_refuses_the_prompt_after_the_limit(self):
        invoice = self._new_invoice(1000.0)
        for _attempt in range(2):
            tx, token = self._tx_for(invoice)
            _result, error = self._ask_prompt(tx, token, CANCELS)
            self.assertIsNone(error)
            self._wait_callbacks(len(self._prompts_to(CANCELS)))
            with self._db_lock():
                self.assertEqual(tx.state, "cancel", "the customer cancelled")
        tx, token = self._tx_for(invoice)
        _result, error = self._ask_prompt(tx, token, CANCELS)
        self.assertIn("Too many payment requests for this document", error)
        self.assertEqual(len(self._prompts_to(CANCELS)), 2)
        with self._db_lock():
            self.assertEqual(tx.state, "draft")
            self.mpesa.mpesa_push_limit_document = 0  # 0: no limit
            self.env.flush_all()
        _result, error = self._ask_prompt(tx, token, CANCELS)
        self.assertIsNone(error)

    def test_phone_limit_refuses_a_flood_of_one_phone(self):
        victim = "0722000111"
        for _attempt in range(3):
            tx, token = self._tx_for(self._new_invoice(100.0))
            _result, error = self._ask_prompt(tx, token, victim)
            self.assertIsNone(error)
        tx, token = self._tx_for(self._new_invoice(100.0))
        _result, error = self._ask_prompt(tx, token, victim)
        self.assertIn("Too many payment requests were sent to 2547****111", error)
        self.assertEqual(len(self._prompts_to("254722000111")), 3)

    def test_address_limit_refuses_one_client_flooding_many_phones(self):
        for attempt in range(4):
            tx, token = self._tx_for(self._new_invoice(100.0))
            _result, error = self._ask_prompt(tx, token, f"07220001{attempt:02d}")
            self.assertIsNone(error)
        tx, token = self._tx_for(self._new_invoice(100.0))
        _result, error = self._ask_prompt(tx, token, "0722000199")
        self.assertIn("Too many payment requests from your connection", error)
        self.assertEqual(len(self.emulator.prompts), 4)

    def test_second_prompt_on_one_transaction_is_refused(self):
        tx, token = self._tx_for(self._new_invoice(100.0))
        self.emulator.auto_complete = False
        result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertEqual(result["state"], "pending")
        result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertIn("already sent", error)
        self.assertEqual(len(self.emulator.prompts), 1)

    @mute_logger("odoo.addons.mpesa_payment.models.mpesa_callback")
    def test_callback_on_an_expired_url_of_ours_is_stored(self):
        """A prompt we sent may be answered very late: its signed URL has expired,
        yet the body is kept (and processed idempotently), never refused unseen."""
        tx, _token = self._tx_for(self._new_invoice(100.0))
        with self._db_lock():
            expired = self.mpesa._mpesa_make_token("stk", tx.id, days=-1)
            self.env.flush_all()
        body = json.dumps(stk_payload(tx, 1032))
        response = self.url_open(
            f"/payment/daraja/stk/{expired}",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        self.assertEqual(response.status_code, 200)
        with self._db_lock():
            self.env.invalidate_all()
            stored = self.env["mpesa.callback"].search([("transaction_id", "=", tx.id)])
            self.assertEqual(stored.body, body)

    def test_forged_token_is_still_refused(self):
        tx, _token = self._tx_for(self._new_invoice(100.0))
        response = self.url_open(
            f"/payment/daraja/stk/{tx.id}.9999999999.forged",
            data=json.dumps(stk_payload(tx, 0)),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        self.assertEqual(response.status_code, 403)
