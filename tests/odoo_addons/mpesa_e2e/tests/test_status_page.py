"""The customer's status page does not wait for the inbox job."""

from odoo.tests import tagged

from .common import PHONE, MpesaE2ECommon

# The emulator's customer whose phone cannot be reached (1037), then pays after all.
UNREACHABLE_THEN_PAYS = "0700001038"
# Between the 1037 and the late success: time to look at the failure first.
LATE_SUCCESS_SECONDS = 6


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
        # The prompt is on the phone: no Skip (review finding: it took a guest to
        # the order confirmation with the cart emptied, a dead end once declined).
        page = self.url_open("/payment/status").text
        self.assertIn("Check your phone", page)
        self.assertNotIn('class="alert-link ms-auto text-nowrap"', page)
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

    def test_status_page_keeps_following_an_unreachable_prompt(self):
        """A 1037 may still be paid (M-PESA rechecks it): the page shows the failure,
        says it is still being checked, keeps polling, and its poll applies the late
        success as soon as it arrives."""
        self.emulator.set_scenario(
            UNREACHABLE_THEN_PAYS,
            result_code=1037,
            late_success_after=LATE_SUCCESS_SECONDS,
        )
        invoice = self._create_posted_invoice(1500.0)
        self.authenticate(self.portal_user.login, self.portal_user.login)
        context, _page = self._payment_context(invoice.get_portal_url())
        processing = self._create_tx_through_route(context)
        self._stk_push(processing, phone=UNREACHABLE_THEN_PAYS)
        self.emulator.wait_for_deliveries(1, kind="stk_callback")
        self._wait_remaining_requests()

        poll = self._poll()
        self.assertEqual(poll["state"], "cancel")
        self.assertTrue(poll["mpesa_rechecking"], "the page keeps polling")
        page = self.url_open("/payment/status")
        self.assertIn("The M-PESA payment did not go through", page.text)
        self.assertIn("Your phone could not be reached", page.text)
        self.assertIn("o_mpesa_rechecking", page.text)
        self.assertIn("M-PESA is still checking this payment request", page.text)

        self.emulator.wait_for_deliveries(
            2, kind="stk_callback", timeout=LATE_SUCCESS_SECONDS + 30
        )
        self._wait_remaining_requests()
        poll = self._poll()

        self.assertEqual(poll["state"], "done", "applied by the page's own poll")
        tx = self._tx(processing)
        self._assert_paid_by_mpesa(tx, 1500.0)
        self._assert_invoice_paid_by(invoice, tx)

    def test_status_page_of_a_payment_awaiting_review(self):
        """KES 300 paid for an invoice of 500: the payment waits for finance, and the
        page says so, instead of asking the customer to check their phone."""
        self.emulator.set_scenario(PHONE, amount=300)
        invoice = self._create_posted_invoice(500.0)
        self.authenticate(self.portal_user.login, self.portal_user.login)
        context, _page = self._payment_context(invoice.get_portal_url())
        processing = self._create_tx_through_route(context)
        self._stk_push(processing)
        self.emulator.wait_for_deliveries(1, kind="stk_callback")
        self._wait_remaining_requests()
        self.assertEqual(self._poll()["state"], "pending")
        with self._db_lock():  # M-PESA's Transaction Status may be answering
            self.assertTrue(self._tx(processing).mpesa_needs_review)
        page = self.url_open("/payment/status").text
        self.assertIn("The payment is awaiting review by our team.", page)
        self.assertIn("o_mpesa_review", page)
        self.assertNotIn("Check your phone", page)
