import json

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..daraja.client import PATHS
from .common import PHONE, SHORTCODE, MpesaHttpCommon


@tagged("post_install", "-at_install")
class TestInitiatorApis(MpesaHttpCommon):
    """Transaction status, reversal and balance: sync ack, then a Result POST."""

    def _send(self, kind, code=None, amount=0.0):
        with self._db_lock():
            request = self.env["mpesa.api.request"]._send(
                self.mpesa, kind, code, amount
            )
            self.env.flush_all()
        return request

    def _result(self, kind="result"):
        before = len([d for d in self.emulator.deliveries if d.kind == kind])
        return lambda: self._wait_callbacks(before + 1, kind=kind)

    def _paid_invoice(self):
        invoice = self._invoice(800)
        receipt = self._c2b(invoice.name, 800)
        self._post_process(receipt)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        return invoice, receipt

    def test_status_of_a_receipt_not_in_our_books(self):
        code = self.emulator.add_payment(450, phone=PHONE, first_name="Jane Doe")
        wait = self._result()
        request = self._send("status", code)
        self.assertEqual(request.state, "sent")
        wait()
        self.assertEqual(request.state, "done")
        receipt = request.receipt_id
        self.assertEqual(receipt.name, code)
        self.assertEqual(receipt.amount, 450)
        self.assertSeenBy(receipt, "query")
        self.assertEqual(receipt.state, "review")
        self.assertTrue(receipt.phone.startswith("2547"))

    def test_status_of_unknown_code(self):
        wait = self._result()
        request = self._send("status", "NOSUCH0001")
        wait()
        self.assertEqual(request.state, "failed")
        self.assertEqual(request.result_code, "R000002")
        self.assertIn("does not know this receipt", request.result_message)

    def test_lookup_wizard(self):
        invoice, receipt = self._paid_invoice()
        wizard = self.env["mpesa.receipt.lookup"].create(
            {"code": receipt.name.lower(), "provider_id": self.mpesa.id}
        )
        action = wizard.action_lookup()
        self.assertEqual(
            (action["res_model"], action["res_id"]), ("mpesa.receipt", receipt.id)
        )
        self.assertTrue(invoice)
        with self._db_lock():
            wizard = self.env["mpesa.receipt.lookup"].create(
                {"code": "QZZ9ZZ9ZZ9", "provider_id": self.mpesa.id}
            )
            action = wizard.action_lookup()
            self.env.flush_all()
        self.assertEqual(action["res_model"], "mpesa.api.request")

    def test_reversal_reopens_the_invoice_and_repeat_is_recorded(self):
        invoice, receipt = self._paid_invoice()
        wait = self._result()
        with self._db_lock():
            receipt.action_request_reversal()
            self.env.flush_all()
        wait()
        self.assertEqual(receipt.state, "reversed")
        self.assertEqual(receipt.transaction_id.payment_id.state, "canceled")
        self.assertEqual(invoice.payment_state, "not_paid")
        with self.assertRaisesRegex(UserError, "already reversed"):
            receipt.action_request_reversal()
        # asked again anyway (e.g. from another tool): M-PESA answers R000001
        wait = self._result()
        again = self._send("reversal", receipt.name, receipt.amount)
        again.receipt_id = receipt
        wait()
        self.assertEqual(again.result_code, "R000001")
        self.assertIn("already reversed", again.result_message)
        self.assertEqual(again.state, "done")

    def test_only_managers_reverse(self):
        _invoice, receipt = self._paid_invoice()
        clerk = self.internal_user
        self._prepare_user(clerk, "mpesa_payment.group_mpesa_user")
        with self.assertRaises(AccessError):
            receipt.with_user(clerk).action_request_reversal()

    def test_account_balance(self):
        self._paid_invoice()
        wait = self._result()
        request = self._send("balance")
        wait()
        self.assertEqual(request.state, "done")
        self.assertEqual(self.mpesa.mpesa_balance, self.emulator.balance(SHORTCODE))
        self.assertTrue(self.mpesa.mpesa_balance_date)

    def test_queue_timeout(self):
        self.emulator.queue_timeouts = True
        try:
            wait = self._result("timeout")
            request = self._send("status", "ANY0000001")
            wait()
        finally:
            self.emulator.queue_timeouts = False
        self.assertEqual(request.state, "failed")
        self.assertIn("queue timeout", request.result_message)

    def test_missing_initiator_is_explained(self):
        self.mpesa.mpesa_security_credential = False
        with self.assertRaisesRegex(
            UserError, "initiator name and security credential"
        ):
            self.env["mpesa.api.request"]._send(self.mpesa, "balance")

    def test_result_of_a_request_gone_is_kept_not_refused(self):
        """A result URL we signed is answered and its body kept, even when its
        request is gone; only a URL we never signed is refused unseen."""
        body = json.dumps(
            {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "OK"}}
        )
        gone = self.mpesa._mpesa_make_token("result", 10**9)
        forged = f"{gone.rsplit('.', 1)[0]}.{'0' * 20}"
        Callback = self.env["mpesa.callback"]
        with self._db_lock():
            last = Callback.search([], limit=1).id or 0
        for token, status in ((gone, 200), (forged, 403)):
            response = self.url_open(
                f"/payment/daraja/result/{token}",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            self.assertEqual(response.status_code, status)
        with self._db_lock():
            stored = Callback.search([("id", ">", last)])
            self.assertEqual(
                (len(stored), stored.kind, stored.body), (1, "result", body)
            )
            self.assertEqual(
                (stored.state, stored.url_request_number), ("received", 10**9)
            )
        self._apply_inbox()
        self.assertEqual(stored.state, "error", "kept for a person")
        self.assertIn("the request this result answers is not in Odoo", stored.error)
        self.assertFalse(stored.api_request_id)

    def test_result_before_its_request_is_committed(self):
        """The inbox job asks M-PESA about a paybill payment (so does a clerk's
        button) in a transaction that commits after Daraja's acknowledgement; the
        Result may come first, naming a request no other transaction sees yet. It
        waits in the inbox and is applied once that request is there."""
        code = self.emulator.add_payment(450, phone=PHONE, first_name="Jane Doe")
        Request = self.env["mpesa.api.request"].sudo()
        values = {"kind": "status", "provider_id": self.mpesa.id, "receipt_code": code}
        wait = self._result()
        with self._db_lock():
            self.env.cr.execute("SELECT nextval('mpesa_api_request_id_seq')")
            (number,) = self.env.cr.fetchone()
            token = self.mpesa._mpesa_make_token("result", number)
            # Sent as _send sends it, before the request row exists.
            answer = self.mpesa._mpesa_client().post(
                PATHS["status"], Request.new(values)._payload(token)
            )
        wait()
        early = self.env["mpesa.callback"].search([("url_request_number", "=", number)])
        self.assertEqual((early.kind, early.state), ("result", "error"))
        self.assertFalse(early.api_request_id)
        self.assertIn("If it was being sent at that moment", early.error)
        with self._db_lock():
            # The sender's transaction commits: request `number` is there now.
            self.env.cr.execute(
                "SELECT setval('mpesa_api_request_id_seq', %s, false)", [number]
            )
            request = Request.create({**values, **Request._answer_values(answer)})
            self.assertEqual(request.id, number)
            # The recovery job, a few minutes on.
            self.env.cr.execute(
                "UPDATE mpesa_callback SET create_date = create_date - interval"
                " '5 minutes' WHERE id = %s",
                [early.id],
            )
            self.env["mpesa.callback"]._cron_process_stuck()
            self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(early.state, "processed")
        self.assertEqual(early.api_request_id, request)
        self.assertEqual(request.state, "done")
        self.assertEqual(
            (request.receipt_id.name, request.receipt_id.amount), (code, 450)
        )
