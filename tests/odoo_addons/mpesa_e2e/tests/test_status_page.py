"""The customer's status page does not wait for the inbox job."""

from odoo.tests import tagged

from .common import MpesaE2ECommon


@tagged("post_install", "-at_install")
class TestStatusPage(MpesaE2ECommon):
    def test_status_page_applies_its_own_payment_first(self):
        """The route only stores M-PESA's callback; the status page's next poll
        applies that payment (only that one) rather than wait for the job."""
        self.emulator.auto_complete = False
        order = self._create_quotation(self.product_wrap, website_id=self.website.id)
        self.authenticate(self.portal_user.login, self.portal_user.login)
        processing = self._create_tx_through_route(self._shop_context(order))
        self._stk_push(processing)
        tx = self._tx(processing)
        with self._db_lock():
            # Someone else's body, waiting for the job too.
            other = self.env["mpesa.callback"]._store("c2b_confirmation", "{}")
        self.emulator.resolve_prompt(tx.mpesa_checkout_request_id, "approve")
        [delivery] = self.emulator.wait_for_deliveries(1, kind="stk_callback")
        self.assertEqual(delivery.status, 200, delivery.response_text)
        self._wait_remaining_requests()
        with self._db_lock():
            callback = self.env["mpesa.callback"].search(
                [("transaction_id", "=", tx.id)]
            )
            self.assertEqual(callback.state, "received", "answered, not applied")
            self.assertEqual(tx.state, "pending")

        self.assertEqual(self._poll()["state"], "done")

        with self._db_lock():
            self.assertEqual(callback.state, "processed")
            self.assertEqual(order.amount_paid, order.amount_total)
            self.assertEqual(other.state, "received", "the job's, not the page's")
