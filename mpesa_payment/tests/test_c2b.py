import base64
import json
import re
import time

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from ..daraja.client import PATHS
from ..references import msisdn_hash
from .common import PHONE, SHORTCODE, MpesaHttpCommon, stk_payload
from .customer_view import printed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@tagged("post_install", "-at_install")
class TestC2B(MpesaHttpCommon):
    """Paybill/till payments through the registered URLs, sent by the emulator."""

    _pay = MpesaHttpCommon._c2b

    # === registration === #

    def test_registration_sends_our_urls(self):
        (call,) = [r for r in self.emulator.request_log if "registerurl" in r[1]]
        self.assertEqual(call[1], "/mpesa/c2b/v2/registerurl")
        self.assertEqual(call[2]["ResponseType"], "Completed")
        self.assertIn("/payment/daraja/c2b/", call[2]["ConfirmationURL"])
        self.assertTrue(self.mpesa.mpesa_c2b_registered)

    def test_production_url_rules_checked_before_calling(self):
        self.mpesa.state = "enabled"
        calls = len(self.emulator.request_log)
        with self.assertRaisesRegex(UserError, "https"):
            self.mpesa.action_mpesa_register_c2b_urls()
        self.assertEqual(len(self.emulator.request_log), calls)
        problems = self.mpesa._mpesa_c2b_url_problems(
            {"ConfirmationURL": "https://shop.example.com/mpesa/confirm"}
        )
        self.assertTrue(any("mpesa" in p for p in problems))

    def test_already_registered_is_explained(self):
        # Production Daraja refuses a second registration of a shortcode's URLs.
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", "https://shop.example.com"
        )
        self.mpesa.state = "enabled"
        self.emulator.production = True
        try:
            self.mpesa.action_mpesa_register_c2b_urls()
            with self.assertRaisesRegex(UserError, "already has C2B URLs"):
                self.mpesa.action_mpesa_register_c2b_urls()
        finally:
            self.emulator.production = False

    # === confirmation applied to what the reference names === #

    def test_reference_variants_pay_the_invoice(self):
        for variant in (
            str.upper,
            str.lower,
            lambda n: n.replace("/", " "),
            lambda n: n.replace("/", "-"),
        ):
            invoice = self._invoice(1000)
            receipt = self._pay(variant(invoice.name))
            self.assertEqual(receipt.state, "applied", invoice.name)
            self.assertEqual(receipt.invoice_id, invoice)
            tx = receipt.transaction_id
            self.assertEqual(tx.state, "done")
            self.assertEqual(tx.invoice_ids, invoice)
            with self._db_lock():
                tx._post_process()
                self.env.flush_all()
            self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_partial_payment_leaves_balance(self):
        invoice = self._invoice(1000)
        receipt = self._pay(invoice.name, amount=400)
        with self._db_lock():
            receipt.transaction_id._post_process()
            self.env.flush_all()
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(invoice.amount_residual, 600)

    def test_typo_waits_for_review(self):
        invoice = self._invoice(1000)
        receipt = self._pay(invoice.name.replace("INV", "IVN"))
        self.assertEqual(receipt.state, "review")
        self.assertIn("No invoice", receipt.review_reason)
        self.assertFalse(receipt.transaction_id)
        self.assertEqual(invoice.payment_state, "not_paid")

    def test_no_reference_and_two_equal_invoices_no_guess(self):
        first, second = self._invoice(1000), self._invoice(1000)
        receipt = self._pay("", amount=1000, style="plain")
        self.assertEqual(receipt.state, "review")
        # The phone is a hint for finance, not the customer (issue 11, finding 3).
        self.assertFalse(receipt.partner_id)
        self.assertEqual(receipt.suggested_partner_id, self.partner, "phone known")
        self.assertFalse(receipt.transaction_id)
        self.assertEqual((first | second).mapped("payment_state"), ["not_paid"] * 2)

    def test_ambiguous_reference_no_guess(self):
        self.partner.mpesa_account_ref = "ACME1"
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "order_line": [
                    (0, 0, {"product_id": self.product_a.id, "price_unit": 500})
                ],
            }
        )
        order.name = "ACME-1"
        self.env.flush_all()
        receipt = self._pay("acme 1", amount=500)
        self.assertEqual(receipt.state, "review")
        self.assertIn("several", receipt.review_reason)

    def test_sale_order_reference(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "order_line": [
                    (
                        0,
                        0,
                        {
                            "product_id": self.product_a.id,
                            "price_unit": 700,
                            "tax_id": False,
                        },
                    )
                ],
            }
        )
        self.env.flush_all()
        receipt = self._pay(order.name.lower(), amount=order.amount_total)
        self.assertEqual(receipt.sale_order_id, order)
        self.assertEqual(receipt.transaction_id.sale_order_ids, order)

    def test_customer_account_number(self):
        self.assertIs(self.partner.action_mpesa_generate_account_ref(), True)
        self.env.flush_all()
        receipt = self._pay(self.partner.mpesa_account_ref.lower(), amount=300)
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.partner_id, self.partner)
        self.assertEqual(receipt.transaction_id.partner_id, self.partner)
        self.assertFalse(receipt.transaction_id.invoice_ids)

    # === phone numbers === #

    def test_masked_and_hashed_msisdn(self):
        receipt = self._pay("NOTHING", style="masked")
        self.assertEqual(receipt.phone, "2547 ***** 149")
        self.assertEqual(receipt.phone_kind, "masked")
        self.assertFalse(receipt.partner_id | receipt.suggested_partner_id, "masked")
        receipt = self._pay("NOTHING", style="hashed", version="v1")
        self.assertEqual(receipt.phone, msisdn_hash(PHONE))
        self.assertEqual(receipt.phone_kind, "hashed")
        self.assertFalse(receipt.partner_id, "a phone only suggests")
        self.assertEqual(receipt.suggested_partner_id, self.partner, "by hash lookup")

    # === idempotency === #

    def test_duplicate_confirmations_one_payment(self):
        invoice = self._invoice(1000)
        self.emulator.set_scenario(PHONE, repeat=3)
        receipt = self._pay(invoice.name, count=3)
        txs = self.env["payment.transaction"].search(
            [("mpesa_receipt_code", "=", receipt.name)]
        )
        self.assertEqual(len(txs), 1)
        self.assertEqual(
            sorted(
                receipt.callback_ids.filtered(
                    lambda c: c.kind == "c2b_confirmation"
                ).mapped("state")
            ),
            ["duplicate", "duplicate", "processed"],
        )

    def test_concurrent_confirmations_one_payment(self):
        invoice = self._invoice(1000)
        self.emulator.set_scenario(PHONE, repeat=4, concurrent=True)
        receipt = self._pay(invoice.name, count=4)
        self.assertEqual(len(receipt), 1)
        self.assertEqual(
            self.env["payment.transaction"].search_count(
                [("mpesa_receipt_code", "=", receipt.name)]
            ),
            1,
        )

    def test_stk_then_c2b_is_one_payment(self):
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        self.assertEqual(tx.state, "done")
        receipt = self._pay(
            tx.mpesa_account_reference, amount=1250, trans_id=tx.mpesa_receipt_code
        )
        self.assertEqual(receipt.transaction_id, tx)
        self.assertSeenBy(receipt, "c2b", "stk")
        self.assertEqual(
            self.env["payment.transaction"].search_count(
                [("mpesa_receipt_code", "=", tx.mpesa_receipt_code)]
            ),
            1,
        )

    def test_invoice_number_as_printed_completes_its_open_prompt(self):
        """The prompt did not show, so the customer pays by paybill, typing the
        invoice number as printed (INV/2026/00001) where the prompt read
        INV202600001: the paybill money completes that prompt, one payment."""
        invoice = self._invoice(1250)
        self.emulator.set_scenario(PHONE, no_callback=True)
        with self._db_lock():
            tx = self._create_mpesa_tx(
                amount=1250, invoice_ids=[Command.set(invoice.ids)]
            )
            self.env.flush_all()
        self._push(tx)
        self.assertNotEqual(tx.mpesa_account_reference, invoice.name)
        receipt = self._pay(
            invoice.name, amount=1250, trans_id="QCB0000002", msisdn="254711000222"
        )
        self.assertEqual(receipt.transaction_id, tx, "the prompt it stands for")
        self.assertEqual(tx.state, "done")
        self.assertEqual(
            self.env["payment.transaction"].search_count(
                [("invoice_ids", "in", invoice.ids), ("state", "=", "done")]
            ),
            1,
            "one payment of the invoice, not the prompt's and a second one",
        )

    def test_c2b_then_stk_is_one_payment(self):
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        time.sleep(0.3)
        receipt = self._pay(
            tx.mpesa_account_reference,
            amount=1250,
            trans_id="QCB0000001",
            msisdn="254711000222",
        )
        self.assertEqual(receipt.transaction_id, tx)
        self.assertEqual(tx.state, "done")
        # the STK callback arrives late with the same receipt: nothing more happens
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        response = self.url_open(
            f"/payment/daraja/stk/{token}",
            data=json.dumps(stk_payload(tx, 0, receipt="QCB0000001")),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()
        self.assertEqual(
            self.env["payment.transaction"].search_count(
                [("mpesa_receipt_code", "=", "QCB0000001")]
            ),
            1,
        )
        self.assertEqual(
            self.env["mpesa.receipt"].search_count([("name", "=", "QCB0000001")]), 1
        )

    # === validation === #

    def _validate(self, bill_ref, amount):
        payload = self._c2b_body("VAL0000001", f"{amount:.2f}", bill_ref)
        url = self.mpesa._mpesa_c2b_urls()["ValidationURL"].replace(self.base_url(), "")
        started = time.monotonic()
        response = self.url_open(
            url, data=json.dumps(payload), headers={"Content-Type": "application/json"}
        )
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 4, "M-PESA gives up after about 8 s")
        self.assertEqual(response.status_code, 200)
        return response.json()

    def test_validation_answers(self):
        invoice = self._invoice(1000)
        self.assertEqual(
            self._validate("ANYTHING", 5)["ResultCode"],
            "0",
            "validation off: everything accepted",
        )
        self.mpesa.write(
            {"mpesa_c2b_validate_reference": True, "mpesa_c2b_validate_amount": True}
        )
        self.env.flush_all()
        self.assertEqual(self._validate("UNKNOWN1", 5)["ResultCode"], "C2B00012")
        self.assertEqual(self._validate(invoice.name, 5000)["ResultCode"], "C2B00013")
        self.assertEqual(
            self._validate(invoice.name.lower(), 1000),
            {"ResultCode": "0", "ResultDesc": "Accepted"},
        )

    def test_rejected_validation_means_no_payment(self):
        self.mpesa.mpesa_c2b_validate_reference = True
        self.env.flush_all()
        trans_id = self.emulator.c2b_pay(SHORTCODE, PHONE, 100, "UNKNOWN2")
        (validation,) = self._wait_callbacks(1, kind="c2b_validation")
        self.assertEqual(json.loads(validation.response_text)["ResultCode"], "C2B00012")
        time.sleep(0.3)
        self.assertFalse(self.env["mpesa.receipt"].search([("name", "=", trans_id)]))
        self.assertFalse(
            [d for d in self.emulator.deliveries if d.kind == "c2b_confirmation"]
        )

    def test_bad_signature_refused(self):
        url = f"/payment/daraja/c2b/{self.mpesa.id}/{'0' * 40}/confirmation"
        response = self.url_open(
            url, data="{}", headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 403)
        self.env.invalidate_all()
        self.assertFalse(self.env["mpesa.callback"].search([("kind", "like", "c2b")]))

    # === how to pay: printed where customers look (issue 16) === #

    def _qr_requests(self):
        return [
            body for _m, path, body in self.emulator.request_log if path == PATHS["qr"]
        ]

    def _invoice_html(self, invoice):
        return (
            self.env["ir.actions.report"]
            ._render_qweb_html("account.account_invoices", invoice.ids)[0]
            .decode()
        )

    def test_invoice_pdf_email_and_portal_order_say_how_to_pay(self):
        with self._db_lock():
            self.mpesa.mpesa_dynamic_qr = True
            invoice = self._invoice(1000)
            html = self._invoice_html(invoice)
        account = invoice._mpesa_printed_reference()
        self.assertRegex(account, r"^[A-Z0-9]+$", "letters and digits only")
        self.assertEqual(printed(html, "o_mpesa_account_number"), account)
        self.assertEqual(printed(html, "o_mpesa_business_number"), SHORTCODE)
        self.assertIn("1,000.00", printed(html, "o_mpesa_amount"))
        # The QR code is Daraja's, for this paybill, account number and amount.
        [request] = self._qr_requests()
        self.assertEqual(
            {k: request[k] for k in ("RefNo", "Amount", "TrxCode", "CPI")},
            {"RefNo": account, "Amount": 1000, "TrxCode": "PB", "CPI": SHORTCODE},
        )
        img = re.search(r"<img[^>]*o_mpesa_qr[^>]*>", html).group(0)
        qr = re.search(r'src="data:image/png;base64,([^"]+)"', img)
        self.assertEqual(base64.b64decode(qr.group(1))[:8], PNG_SIGNATURE)

        # Printed again, and sent by email: Daraja is not asked again.
        with self._db_lock():
            self._invoice_html(invoice)
            # Sent by a Billing user, who sees no subscriptions nor M-PESA settings.
            billing = new_test_user(
                self.env, "billing_clerk", groups="account.group_account_invoice"
            )
            wizard = (
                self.env["account.move.send.wizard"]
                .with_user(billing)
                .create({"move_id": invoice.id})
            )
            body = str(wizard.mail_body)
        self.assertEqual(len(self._qr_requests()), 1, "the QR code is cached")
        self.assertEqual(printed(body, "o_mpesa_account_number"), account)
        self.assertIn("o_mpesa_qr", body)

        # A part paid by other means changes the amount: a new QR code for the rest.
        with self._db_lock():
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=invoice.ids
            ).create({"amount": 400})._create_payments()
            html = self._invoice_html(invoice)
        self.assertEqual(len(self._qr_requests()), 2)
        self.assertEqual(self._qr_requests()[-1]["Amount"], 600)
        self.assertIn("600.00", printed(html, "o_mpesa_amount"))

        # The portal order page tells the same for a quotation.
        with self._db_lock():
            order = self.env["sale.order"].create(
                {
                    "partner_id": self.partner.id,
                    "currency_id": self.currency_kes.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product_a.id,
                                "price_unit": 750,
                                "tax_id": [Command.clear()],
                            }
                        )
                    ],
                }
            )
            url = order.get_portal_url()
            self.env.flush_all()
        page = self.url_open(url).text
        self.assertEqual(printed(page, "o_mpesa_account_number"), order.name.upper())
        self.assertIn("750.00", printed(page, "o_mpesa_amount"))
        self.assertIn("o_mpesa_qr", page)

    def test_daraja_failing_prints_no_qr_and_no_error(self):
        with self._db_lock():
            self.mpesa.write({"mpesa_dynamic_qr": True})
            invoice = self._invoice(1000)
            # Nobody answers there: M-PESA cannot be reached.
            self.mpesa.mpesa_api_url = "http://127.0.0.1:9"
            html = self._invoice_html(invoice)
            self.mpesa.mpesa_api_url = self.emulator.base_url
            again = self._invoice_html(invoice)
        for rendered in (html, again):
            self.assertEqual(
                printed(rendered, "o_mpesa_account_number"),
                invoice._mpesa_printed_reference(),
            )
            self.assertNotIn("o_mpesa_qr", rendered)
        self.assertFalse(self._qr_requests(), "a failure is not retried at once")
