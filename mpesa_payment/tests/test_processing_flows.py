import json
import threading
import time
from datetime import timedelta

import requests

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from ..models.mpesa_receipt_notice import RECEIPT_TEMPLATE
from .common import PHONE, MpesaCommon, stk_payload
from .customer_view import emails_to

TEMPLATE_NAME = RECEIPT_TEMPLATE.split(".")[1]


@tagged("post_install", "-at_install")
class TestProcessingFlows(MpesaCommon, HttpCase):
    """Callbacks through the real HTTP layer, sent by the emulator or by hand."""

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", self.base_url()
        )
        self.env.flush_all()

    def _callbacks(self, tx):
        return self.env["mpesa.callback"].search([("transaction_id", "=", tx.id)])

    def _post(self, url, payload, headers=None):
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        response = self.url_open(
            url,
            data=body,
            headers=headers or {"Content-Type": "application/json"},
            timeout=30,
        )
        self._apply_inbox()  # the job each stored body wakes
        return response

    def _callback_url(self, tx):
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        return f"/payment/daraja/stk/{token}"

    # === through the emulator === #

    def test_success_callback_pays(self):
        tx = self._push(self._create_mpesa_tx())
        (delivery,) = self._wait_callbacks()
        self.assertEqual(delivery.status, 200)
        self.assertEqual(json.loads(delivery.response_text)["ResultCode"], 0)
        self.assertEqual(tx.state, "done")
        callback = self._callbacks(tx)
        self.assertEqual(callback.state, "processed")
        self.assertEqual(callback.body, delivery.body.decode())
        self.assertEqual(tx.mpesa_receipt_code, callback.receipt_code)

    def test_cancelled_callback(self):
        self.emulator.set_scenario(PHONE, result_code=1032)
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        self.assertEqual(tx.state, "cancel")
        self.assertIn("You cancelled", tx.state_message)

    def test_decimal_amount_and_balance_item(self):
        self.emulator.set_scenario(PHONE, amount_style="decimal", balance_item=True)
        tx = self._push(self._create_mpesa_tx())
        (delivery,) = self._wait_callbacks()
        self.assertIn(b'"Value": 1250.00', delivery.body)
        self.assertEqual(tx.state, "done")

    def test_duplicates_give_one_payment(self):
        self.emulator.set_scenario(PHONE, repeat=3)
        tx = self._push(self._create_mpesa_tx())
        deliveries = self._wait_callbacks(3)
        self.assertEqual({d.status for d in deliveries}, {200})
        self.assertEqual(tx.state, "done")
        states = sorted(self._callbacks(tx).mapped("state"))
        self.assertEqual(states, ["duplicate", "duplicate", "processed"])
        self.assertEqual(
            self.env["mpesa.receipt"].search_count(
                [("name", "=", tx.mpesa_receipt_code)]
            ),
            1,
        )

    def test_concurrent_duplicates_give_one_payment(self):
        self.emulator.set_scenario(PHONE, repeat=5, concurrent=True)
        tx = self._push(self._create_mpesa_tx())
        deliveries = self._wait_callbacks(5)
        self.assertEqual([d.status for d in deliveries], [200] * 5)
        self.assertEqual(tx.state, "done")
        self.assertEqual(self._callbacks(tx).mapped("state").count("processed"), 1)
        self.assertEqual(len(self._callbacks(tx)), 5, "every body is stored")

    def test_amount_mismatch_awaits_review(self):
        self.emulator.set_scenario(PHONE, amount=1000)
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        # The STK query cannot confirm an amount: Transaction Status is asked first.
        self._wait_callbacks(kind="result")
        self.assertEqual(tx.state, "pending")
        self.assertTrue(tx.mpesa_needs_review)
        self.assertEqual(tx.mpesa_paid_amount, 1000)
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        self.assertEqual(receipt.verification, "verified")
        self.assertEqual(receipt.amount, 1000)
        self.assertFalse(receipt.applied_amount, "money under review pays nothing")

    def test_success_without_metadata_is_not_paid(self):
        self.emulator.set_scenario(PHONE, metadata_missing=True)
        tx = self._push(self._create_mpesa_tx())
        (delivery,) = self._wait_callbacks()
        self.assertEqual(delivery.status, 200)
        self.assertEqual(tx.state, "pending")
        self.assertEqual(self._callbacks(tx).state, "error")

    def test_callback_before_api_response(self):
        self.emulator.set_scenario(PHONE, before_response=True)
        tx = self._create_mpesa_tx()
        self.env.flush_all()
        self._push(tx, lock=False)  # the server answers the callback meanwhile
        self.env.invalidate_all()
        (delivery,) = [d for d in self.emulator.deliveries if f"/stk/{tx.id}." in d.url]
        self.assertEqual(delivery.status, 200, "acknowledged although unknown yet")
        self.assertEqual(tx.state, "done")
        self.assertEqual(self._callbacks(tx).state, "processed")

    def test_missing_callback_recovered_by_cron(self):
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        time.sleep(0.3)  # the customer answers; no callback ever comes
        with self._db_lock():
            self.env.cr.execute(
                "UPDATE payment_transaction SET last_state_change = last_state_change"
                " - interval '10 minutes' WHERE id = %s",
                [tx.id],
            )
            self.env.invalidate_all()
            self.env["payment.transaction"]._cron_mpesa_query_pending()
        self.assertEqual(tx.state, "done")

    def test_late_success_after_unreachable(self):
        tx = self._push(self._create_mpesa_tx(), phone="254700001038")
        first, _second = self._wait_callbacks(2)
        self.assertEqual(
            json.loads(first.body)["Body"]["stkCallback"]["ResultCode"], 1037
        )
        self.assertEqual(tx.state, "done")

    # === hostile or broken callbacks === #

    @mute_logger("odoo.addons.mpesa_payment.controllers.main", "werkzeug")
    def test_bad_tokens_are_refused_without_trace(self):
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        count = self.env["mpesa.callback"].search_count([])
        other = self._create_mpesa_tx(reference="OTHER")
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        _id, expiry, sig = token.split(".")
        # (An expired URL we signed is kept: test_prompt_limits.)
        for url in (
            f"/payment/daraja/stk/{tx.id}.{expiry}.{'a' * 40}",
            f"/payment/daraja/stk/{other.id}.{expiry}.{sig}",
            "/payment/daraja/stk/nonsense",
        ):
            response = self._post(url, stk_payload(tx, 0, receipt="FORGED0002"))
            self.assertEqual(response.status_code, 403, url)
            self.assertNotIn(b"Traceback", response.content)
        self.env.invalidate_all()
        self.assertEqual(self.env["mpesa.callback"].search_count([]), count)
        self.assertEqual(tx.mpesa_receipt_code, self._callbacks(tx).receipt_code)

    @mute_logger("odoo.addons.mpesa_payment.models.mpesa_callback")
    def test_malformed_body_is_stored_and_refused(self):
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        response = self._post(self._callback_url(tx), b"{not json")
        self.assertEqual(response.status_code, 400)
        self.env.invalidate_all()
        callback = self._callbacks(tx)
        self.assertEqual(callback.body, "{not json")
        self.assertEqual(callback.state, "error")
        self.assertEqual(tx.state, "pending")

    def test_body_too_large(self):
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        response = self._post(self._callback_url(tx), b"{" + b" " * 70000 + b"}")
        self.assertEqual(response.status_code, 413)

    def test_unknown_checkout_request_is_kept(self):
        """Nobody asked for it (no URL of ours): it waits in the inbox."""
        tx = self._push(self._create_mpesa_tx(reference="PUSHED"))
        self._wait_callbacks()
        payload = stk_payload(tx, 0, receipt="NOBODY0001")
        payload["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_unknown"
        callback = self.env["mpesa.callback"]._store(
            "stk", json.dumps(payload), self.mpesa
        )
        callback._process()
        self.assertEqual(callback.state, "unmatched")
        self.assertFalse(
            self.env["mpesa.receipt"].search([("name", "=", "NOBODY0001")])
        )

    def test_unknown_request_on_a_push_never_answered_is_verified_first(self):
        """Our URL, a request we never heard of: the push lost Daraja's answer. The
        transaction takes the request, and only a status query can make it paid."""
        tx = self._create_mpesa_tx(reference="LOSTANSWER")
        self.env.flush_all()
        payload = stk_payload(tx, 0, receipt="UNVERIFIED")
        payload["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_unknown"
        response = self._post(self._callback_url(tx), payload)
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()
        self.assertEqual(tx.mpesa_checkout_request_id, "ws_CO_unknown")
        self.assertEqual(tx.state, "pending", "Daraja does not know the request")
        self.assertFalse(
            self.env["mpesa.receipt"].search([("name", "=", "UNVERIFIED")])
        )

    def test_stuck_callback_reprocessed(self):
        """A worker died after storing the body: the recovery job finishes the work."""
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        time.sleep(0.3)
        callback = self.env["mpesa.callback"]._store(
            "stk", json.dumps(stk_payload(tx, 0, receipt="STUCK00001")), self.mpesa, tx
        )
        self.env.cr.execute(
            "UPDATE mpesa_callback SET create_date = create_date - interval '5 minutes'"
            " WHERE id = %s",
            [callback.id],
        )
        self.env.invalidate_all()
        self.env["mpesa.callback"]._cron_process_stuck()
        self.assertEqual(callback.state, "processed")
        self.assertEqual(tx.state, "done")

    def test_answered_at_once_then_applied_by_the_job_it_wakes(self):
        """Safaricom waits for nobody's books: the route stores the body, wakes the
        inbox job (an ir.cron trigger) and answers; the job applies the money."""
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        job = self.env.ref("mpesa_payment.cron_apply_inbox")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search_count([("cron_id", "=", job.id)])
        response = self.url_open(
            self._callback_url(tx),
            data=json.dumps(stk_payload(tx, 0, receipt="LATER00001")),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        self.assertEqual(response.json(), {"ResultCode": 0, "ResultDesc": "Accepted"})
        self.env.invalidate_all()
        self.assertEqual(self._callbacks(tx).state, "received")
        self.assertEqual(tx.state, "pending", "nothing applied on Safaricom's time")
        self.assertEqual(Trigger.search_count([("cron_id", "=", job.id)]), triggers + 1)
        job.method_direct_trigger()  # what the cron worker does when woken
        self.env.invalidate_all()
        self.assertEqual(self._callbacks(tx).state, "processed")
        self.assertEqual((tx.state, tx.mpesa_receipt_code), ("done", "LATER00001"))

    def test_concurrent_manual_posts(self):
        """Identical callbacks posted at once through HTTP: one payment."""
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        time.sleep(0.3)
        url, payload = self._callback_url(tx), stk_payload(tx, 0, receipt="CONC000001")
        results = []

        body = json.dumps(payload)
        self.env.flush_all()  # url_open flushes the test cursor: not from threads

        def post():
            # Plain requests: the test's opener flushes the shared test cursor, which
            # must not happen from several threads at once.
            try:
                response = requests.post(
                    self.base_url() + url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
                results.append(response.status_code)
            except requests.RequestException as error:
                results.append(repr(error))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self._apply_inbox()
        self.assertEqual(results, [200] * 4)
        self.assertEqual(tx.state, "done")
        self.assertEqual(tx.mpesa_receipt_code, "CONC000001")
        self.assertEqual(
            sorted(self._callbacks(tx).mapped("state")),
            ["duplicate"] * 3 + ["processed"],
        )

    @mute_logger("odoo.addons.mpesa_payment.controllers.main")
    def test_ip_allow_list(self):
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push(self._create_mpesa_tx())
        with self.assertRaises(ValidationError):
            self.mpesa.mpesa_callback_ips = "not-an-address"
        self.mpesa.mpesa_callback_ips = "196.201.214.0/24, 196.201.213.114"
        self.env.flush_all()
        count = self.env["mpesa.callback"].search_count([])
        payload = stk_payload(tx, 1032)
        response = self._post(self._callback_url(tx), payload)
        self.assertEqual(response.status_code, 403, "127.0.0.1 is not Safaricom")
        self.env.invalidate_all()
        self.assertEqual(self.env["mpesa.callback"].search_count([]), count)
        self.mpesa.mpesa_callback_ips = "196.201.214.0/24, 127.0.0.0/8"
        self.env.flush_all()
        response = self._post(self._callback_url(tx), payload)
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()
        self.assertEqual(tx.state, "cancel")

    # === one message per payment (issue 16) === #

    def test_one_email_per_stk_payment_with_the_pdf_receipt(self):
        """An STK payer gets one message: the receipt code and the PDF receipt,
        saying the same (mpesa_payment's own sender; mpesa_reports only adds its
        portal link). Run with and without mpesa_reports (setup/test.sh)."""
        invoice, tx = self._invoice_and_its_prompt("customer@example.com")
        with self._db_lock():
            first_message = self.env["mail.message"].search(
                [], order="id desc", limit=1
            )
        self._push(tx, PHONE)
        self._wait_callbacks(1)
        with self._db_lock():
            tx._post_process()  # the status page's poll: the invoice is paid
            self.env["mpesa.receipt"]._cron_issue_receipts()  # the job
            self.env.flush_all()
        self.assertEqual(tx.state, "done")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        # Nothing more later: the job sends each receipt once.
        with self._db_lock():
            self.env["mpesa.receipt"]._cron_issue_receipts()
            self.env.flush_all()
            mails = emails_to(self.env, self.partner, after=first_message.id)
        self.assertEqual(len(mails), 1, mails.mapped("subject"))
        code = tx.mpesa_receipt_code
        self.assertIn(code, mails.subject)
        for text in (code, "1,250.00", invoice.name):
            self.assertIn(text, str(mails.body))
        [attachment] = mails.attachment_ids
        # The receipt report (Odoo renders it as HTML in tests; a real PDF otherwise,
        # see mpesa_reports' test of the same).
        self.assertEqual(attachment.name.rsplit(".", 1)[0], f"M-PESA Receipt {code}")
        receipt_text = attachment.raw.decode()
        for text in (code, "1,250.00", invoice.name):
            self.assertIn(text, receipt_text)
        # Where to download it again only when there is such a page (mpesa_reports'
        # portal): setup/test.sh also runs this test with mpesa_payment alone.
        portal = self.env["ir.module.module"]._get("mpesa_reports").state
        self.assertEqual(
            "My M-PESA payments" in str(mails.body), portal == "installed", portal
        )

    def _invoice_and_its_prompt(self, email):
        """An invoice of KES 1,250 to the customer, now with ``email``, and the
        M-PESA transaction that will pay it (no prompt sent yet)."""
        with self._db_lock():
            self.partner.email = email
            invoice = self.init_invoice(
                "out_invoice",
                partner=self.partner,
                amounts=[1250],
                currency=self.currency_kes,
                taxes=[],
                post=True,
            )
            tx = self._create_mpesa_tx(invoice_ids=[Command.set(invoice.ids)])
            self.env.flush_all()
        return invoice, tx

    def _receipt_of_a_paid_invoice(self, email):
        """An invoice of a customer with ``email`` paid by prompt and post-processed:
        its receipt, applied, not sent yet."""
        _invoice, tx = self._invoice_and_its_prompt(email)
        self._push(tx, PHONE)
        self._wait_callbacks(1)
        with self._db_lock():
            tx._post_process()
            self.env.flush_all()
        receipt = tx.mpesa_source_receipt_id
        self.assertEqual(receipt.state, "applied")
        return receipt

    def test_a_receipt_not_sent_says_why_once(self):
        """The hourly job tries again a receipt it could not send (here its email
        template cannot be found), and says why on the receipt once per cause, not
        once an hour. When it can be sent, it is, and the cause is cleared."""
        receipt = self._receipt_of_a_paid_invoice("customer@example.com")
        template_xmlid = self.env["ir.model.data"].search(
            [("module", "=", "mpesa_payment"), ("name", "=", TEMPLATE_NAME)]
        )
        failure = "The receipt could not be sent automatically"
        with self._db_lock():
            template_xmlid.name = TEMPLATE_NAME + "_gone"
            for _hour in range(3):
                self.env["mpesa.receipt"]._cron_issue_receipts()
            self.env.flush_all()
        self.assertFalse(receipt.receipt_issued_on)
        self.assertIn(TEMPLATE_NAME, receipt.receipt_issue_error)
        notes = receipt.message_ids.filtered(lambda m: failure in str(m.body))
        self.assertEqual(len(notes), 1, "said once, not once a run")
        with self._db_lock():
            template_xmlid.name = TEMPLATE_NAME
            self.env["mpesa.receipt"]._cron_issue_receipts()
            self.env.flush_all()
        self.assertTrue(receipt.receipt_issued_on)
        self.assertFalse(receipt.receipt_issue_error)

    def test_an_address_that_cannot_be_sent_to_holds_no_place_in_the_job(self):
        """The job takes at most 200 receipts a run: those of customers whose email
        is not an address it would send to are not among them, so they cannot keep
        the others waiting."""
        receipt = self._receipt_of_a_paid_invoice("no address")
        to_issue = self.env["mpesa.receipt"]._mpesa_receipts_to_issue
        with self._db_lock():
            self.assertNotIn(receipt, to_issue())
            self.partner.email = "customer@example.com"
            self.env.flush_all()
            self.assertIn(receipt, to_issue())

    def test_the_job_does_not_mail_receipts_of_old_payments(self):
        """A receipt recorded three weeks ago and never mailed (a database upgraded
        from a version that sent none) is not mailed by the job: a customer would
        get them all at once."""
        receipt = self._receipt_of_a_paid_invoice("customer@example.com")
        to_issue = self.env["mpesa.receipt"]._mpesa_receipts_to_issue
        with self._db_lock():
            self.env.flush_all()
            # As the upgraded database has it: create_date is the ORM's own.
            self.env.cr.execute(
                "UPDATE mpesa_receipt SET create_date = %s WHERE id = %s",
                [fields.Datetime.now() - timedelta(days=21), receipt.id],
            )
            self.env.invalidate_all()
            self.assertNotIn(receipt, to_issue())
            self.env["mpesa.receipt"]._cron_issue_receipts()
            self.env.flush_all()
        self.assertFalse(receipt.receipt_issued_on)

    def _order(self, price):
        return self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "currency_id": self.currency_kes.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.product_a.id,
                            "price_unit": price,
                            "tax_id": [Command.clear()],
                        }
                    )
                ],
            }
        )

    def test_one_email_when_an_order_is_paid(self):
        """A quotation confirmed by its payment, and the balance of a confirmed
        order: sale's order confirmation and "payment received" emails would each be
        a second message beside the receipt's."""
        with self._db_lock():
            self.partner.email = "customer@example.com"
            quotation, confirmed = self._order(900), self._order(700)
            confirmed.action_confirm()
            self.env.flush_all()
        for order in (quotation, confirmed):
            with self._db_lock():
                tx = self._create_mpesa_tx(
                    amount=order.amount_total,
                    reference=order.name,
                    sale_order_ids=[Command.set(order.ids)],
                )
                self.env.flush_all()
                last = self.env["mail.message"].search([], order="id desc", limit=1)
            self._push(tx, PHONE)
            self._wait_callbacks(1)
            with self._db_lock():
                tx._post_process()
                self.env["mpesa.receipt"]._cron_issue_receipts()
                self.env.flush_all()
                mails = emails_to(self.env, self.partner, after=last.id)
            self.assertEqual(order.state, "sale")
            self.assertEqual(order.amount_paid, order.amount_total)
            self.assertEqual(len(mails), 1, mails.mapped("subject"))
            self.assertIn(tx.mpesa_receipt_code, mails.subject)
            self.assertIn(order.name, str(mails.body))
            self.emulator.reset()
