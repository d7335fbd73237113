"""A declined STK prompt leaves the shop cart payable again."""

from odoo.tests import tagged

from .common import CANCEL_REASON, PHONE_CANCELS, MpesaE2ECommon


@tagged("post_install", "-at_install")
class TestDeclinedPrompt(MpesaE2ECommon):
    def test_declined_prompt_keeps_the_shop_cart(self):
        """The status page polls (and post-processes) while the prompt is still on the
        phone: that must not turn the cart into a sent quotation."""
        self.emulator.auto_complete = False
        order = self._create_quotation(self.product_wrap, website_id=self.website.id)
        self.authenticate(self.portal_user.login, self.portal_user.login)
        processing = self._create_tx_through_route(self._shop_context(order))
        self._stk_push(processing, phone=PHONE_CANCELS)
        self.assertEqual(self._poll()["state"], "pending")  # the status page, meanwhile
        tx = self._tx(processing)
        self.emulator.resolve_prompt(tx.mpesa_checkout_request_id, "decline")
        self._wait_callbacks(1)
        self.assertEqual(self._poll()["state"], "cancel")
        self.assertIn(CANCEL_REASON, tx.state_message)

        self.assertEqual(order.state, "draft", "the cart is still a cart")
        page = self.url_open("/shop/payment", allow_redirects=False)
        self.assertEqual(page.status_code, 200, "the customer can pay again")
