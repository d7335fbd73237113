"""A customer who reads Swahili pays an invoice by M-PESA: the payment form, the status
page while the prompt waits, after they decline it, and the thank-you page speak
Swahili (mpesa_payment/i18n/sw.po)."""

from odoo.tests import tagged

from .common import PHONE_CANCELS, PHONE_LOCAL, MpesaE2ECommon


@tagged("post_install", "-at_install")
class TestSwahili(MpesaE2ECommon):
    @classmethod
    def setup_independent_company(cls, **kwargs):
        # Swahili before the test company gets its copy of the M-PESA provider: the
        # copy keeps the translations of the provider's messages.
        cls.env["res.lang"]._activate_lang("sw")
        cls.env["ir.module.module"]._load_module_terms(["mpesa_payment"], ["sw"])
        return super().setup_independent_company(**kwargs)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.website.language_ids += cls.env.ref("base.lang_sw")
        cls.portal_partner.lang = "sw"

    def _status_page(self, state):
        """/payment/status as the customer's browser shows it (in their language)."""
        page = self.url_open("/payment/status")
        self.assertEqual(page.status_code, 200)
        self.assertIn("/sw/payment/status", page.url)
        self.assertIn(f'data-tx-state="{state}"', page.text)
        return page.text

    def test_status_pages_in_swahili(self):
        invoice = self._create_posted_invoice(1800.0)
        self.authenticate(self.portal_user.login, self.portal_user.login)
        context, page = self._payment_context(invoice.get_portal_url())
        self.assertIn("Nambari ya simu ya M-PESA", page.text)
        self.assertIn("Tutatuma ombi la malipo kwa simu hii.", page.text)
        self.assertNotIn("M-PESA phone number", page.text)

        # The prompt waits on the phone; then the customer declines it.
        self.emulator.auto_complete = False
        processing = self._create_tx_through_route(context)
        self._stk_push(processing, phone=PHONE_CANCELS)
        self.assertEqual(self._poll()["state"], "pending")
        waiting = self._status_page("pending")
        self.assertIn("Angalia simu yako: thibitisha ombi la M-PESA", waiting)
        self.assertIn("Tumetuma ombi la malipo la KES 1,800 kwa", waiting)
        self.assertNotIn("Check your phone", waiting)
        tx = self._tx(processing)
        self.emulator.resolve_prompt(tx.mpesa_checkout_request_id, "decline")
        self._wait_callbacks(1)
        self.assertEqual(self._poll()["state"], "cancel")
        declined = self._status_page("cancel")
        self.assertIn("Umeghairi ombi la malipo kwenye simu yako.", declined)
        self.assertIn("Malipo ya M-PESA hayakufaulu. Unaweza kujaribu tena.", declined)
        self.assertIn(">Jaribu tena</a>", declined)
        self.assertNotIn("Try again", declined)

        # Trying again from a phone that pays: the thank-you page.
        self.emulator.reset()
        self.emulator.auto_complete = True
        processing = self._create_tx_through_route(context)
        self._stk_push(processing, phone=PHONE_LOCAL)
        self._wait_callbacks(1)
        self.assertEqual(self._poll()["state"], "done")
        tx = self._tx(processing)
        paid = self._status_page("done")
        self.assertIn("Malipo yako ya M-PESA yamepokelewa.", paid)
        self.assertIn(f"Imelipwa kwa M-PESA, risiti {tx.mpesa_receipt_code}.", paid)
        self.assertNotIn("was received", paid)
        # The books as for any payment: paid once, by the prompt that paid.
        done = invoice.transaction_ids.filtered(lambda t: t.state == "done")
        self.assertEqual(done, tx)
        self._assert_paid_by_mpesa(tx, 1800.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(invoice._get_reconciled_payments(), tx.payment_id)
        if hasattr(self.mpesa, "_mpesa_check_books"):  # with mpesa_reconciliation
            self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_refusals_in_swahili_for_a_visitor_not_logged_in(self):
        """Review finding: a visitor who is not logged in, on the Swahili site, read
        the payment form's refusals in English (the prompt's route did not take the
        site's language, only a logged-in customer's own)."""
        invoice = self._create_posted_invoice(1800.0)
        link = self._staff_payment_link(invoice)
        self.authenticate(None, None)
        page = self.url_open(f"/sw{link['path']}")  # the link, read in Swahili
        self.assertEqual(page.status_code, 200)
        self.assertIn("/sw/my/invoices/", page.url)
        query = link["query"]
        processing = self._create_tx_through_route(
            {
                "transaction_route": f"/invoice/transaction/{invoice.id}",
                "landing_route": link["path"],
                "access_token": query["access_token"],
                "amount": float(query["amount"]),
                "payment_method_ids": [self.payment_method_id],
            }
        )
        message = self._json_error(
            "/payment/mpesa/stk_push",
            {
                "reference": processing["reference"],
                "access_token": processing["mpesa_access_token"],
                "phone": "0722 OOO 111",
            },
        )
        self.assertEqual(
            message,
            "0722 OOO 111 si nambari ya simu ya Kenya. Weka nambari iliyosajiliwa na "
            "M-PESA, kwa mfano 0712 345 678.",
        )
