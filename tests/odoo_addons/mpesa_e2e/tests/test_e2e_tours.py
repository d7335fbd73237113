import json

from daraja_emulator import DEFAULT_INITIATOR, DEFAULT_INITIATOR_PASSWORD

from odoo import Command, fields
from odoo.tests import new_test_user, tagged

from .common import CANCEL_REASON, PHONE, PHONE_CANCELS, MpesaE2ECommon

# The emulator's customer whose phone cannot be reached (1037), then pays after all.
PHONE_UNREACHABLE_THEN_PAYS = "254700001038"
# The prompt stays on the phone this long: the status page shows "check your phone" first.
PROMPT_SECONDS = 4
# The B2C shortcode that sends partial refunds (an emulator shortcode with money).
REFUND_B2C_SHORTCODE = "600000"


@tagged("post_install", "-at_install", "is_tour")
class TestMpesaTours(MpesaE2ECommon):
    """Customers pay in Chromium; Daraja is the emulator, its callbacks hit this server."""

    def _shop_orders(self):
        return self.env["sale.order"].search(
            [
                ("website_id", "=", self.website.id),
                ("order_line.product_id", "=", self.product_wrap.id),
            ]
        )

    def test_shop_checkout_public_customer(self):
        self.emulator.set_scenario(PHONE, delay=PROMPT_SECONDS)

        self.start_tour("/shop", "mpesa_e2e_shop_checkout", timeout=180)

        self._wait_callbacks(1)
        order = self._shop_orders()
        self.assertEqual(len(order), 1)
        self.assertEqual(order.currency_id, self.currency_kes)
        self.assertEqual(order.amount_total, 1500.0)
        self.assertEqual(order.partner_id.country_id, self.country_ke)
        self.assertEqual(order.state, "sale", "paid by M-PESA, the order is confirmed")
        tx = order.transaction_ids
        self.assertEqual(len(tx), 1)
        self.assertEqual(tx.provider_id, self.mpesa)
        self.assertEqual(tx.mpesa_phone, PHONE)
        self._assert_paid_by_mpesa(tx, 1500.0)
        self.assertEqual(order.amount_paid, order.amount_total)
        # What Daraja was asked: the order number on the phone, the amount in shillings.
        push = [
            body
            for _method, path, body in self.emulator.request_log
            if path.startswith("/mpesa/stkpush/v1/processrequest")
        ]
        self.assertEqual(len(push), 1)
        self.assertEqual(push[0]["Amount"], 1500)
        self.assertEqual(
            push[0]["AccountReference"], "".join(c for c in order.name if c.isalnum())
        )
        self.assertTrue(
            push[0]["CallBackURL"].startswith(f"{self.base_url()}/payment/daraja/stk/")
        )

    def test_portal_invoice_pay_now(self):
        invoice = self._create_posted_invoice(2500.0)
        self.emulator.set_scenario(PHONE, delay=PROMPT_SECONDS)

        self.start_tour(
            invoice.get_portal_url(),
            "mpesa_e2e_portal_invoice",
            login=self.portal_user.login,
            timeout=180,
        )

        self._wait_callbacks(1)
        tx = invoice.transaction_ids
        self.assertEqual(len(tx), 1)
        self.assertEqual(tx.partner_id, self.portal_partner)
        self._assert_paid_by_mpesa(tx, 2500.0)
        self._assert_invoice_paid_by(invoice, tx)

    def test_portal_invoice_unreachable_then_paid_late(self):
        """A 1037 may still be paid: the status page shows the failure, says M-PESA
        is still checking, keeps polling, and turns when the late success comes."""
        invoice = self._create_posted_invoice(1500.0)
        self.emulator.set_scenario(
            PHONE_UNREACHABLE_THEN_PAYS,
            result_code=1037,
            delay=PROMPT_SECONDS,
            late_success_after=15,  # time to show the failure first
        )

        self.start_tour(
            invoice.get_portal_url(),
            "mpesa_e2e_portal_invoice_paid_late",
            login=self.portal_user.login,
            timeout=180,
        )

        unreachable, _late_success = self._wait_callbacks(2)
        self.assertEqual(
            json.loads(unreachable.body)["Body"]["stkCallback"]["ResultCode"], 1037
        )
        tx = invoice.transaction_ids
        self.assertEqual(len(tx), 1)
        self._assert_paid_by_mpesa(tx, 1500.0)
        self._assert_invoice_paid_by(invoice, tx)

    def test_shop_declined_prompt_then_retry(self):
        self.emulator.set_scenario(PHONE_CANCELS, result_code=1032, delay=2)
        self.emulator.set_scenario(PHONE, delay=PROMPT_SECONDS)

        self.start_tour(
            "/shop",
            "mpesa_e2e_shop_declined_then_retry",
            login=self.portal_user.login,
            timeout=240,
        )

        self._wait_callbacks(2)
        order = self._shop_orders()
        self.assertEqual(len(order), 1)
        self.assertEqual(order.partner_id, self.portal_partner)
        self.assertEqual(order.state, "sale")
        declined, paid = order.transaction_ids.sorted("id")
        self.assertEqual(declined.state, "cancel")
        self.assertEqual(declined.mpesa_phone, PHONE_CANCELS)
        self.assertEqual(declined.mpesa_result_code, "1032")
        self.assertIn(CANCEL_REASON, declined.state_message)
        self.assertFalse(declined.payment_id)
        self.assertEqual(paid.mpesa_phone, PHONE)
        self._assert_paid_by_mpesa(paid, 1500.0)
        self.assertEqual(order.amount_paid, 1500.0, "the declined prompt took nothing")

    def test_staff_collection_from_an_invoice(self):
        """Issue 13: a salesperson opens an invoice, requests the payment, the
        customer approves on the (emulated) phone, the dialog shows it paid, the
        invoice is paid, and the request is in My Collections as paid."""
        invoice = self._create_posted_invoice(1800.0)
        self.portal_partner.mobile = "0708374149"  # as typed in the tour
        self.emulator.set_scenario(PHONE, delay=PROMPT_SECONDS)
        clerk = new_test_user(
            self.env,
            "counter_clerk",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "account.group_account_invoice,mpesa_payment.group_mpesa_user",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
        )
        self.start_tour(
            f"/odoo/action-account.action_move_out_invoice_type/{invoice.id}",
            "mpesa_e2e_staff_collection",
            login=clerk.login,
            timeout=180,
        )
        self._wait_callbacks(1)
        tx = invoice.transaction_ids
        self.assertEqual(tx.mpesa_collection_id.sudo().user_id, clerk)
        self._assert_paid_by_mpesa(tx, 1800.0)
        self._assert_invoice_paid_by(invoice, tx)

    def test_admin_readiness_checklist(self):
        """Issue #12: an admin opens the provider form, sees the go-live checklist
        with the callback IP allow-list red, fills it in, and sees it turn green;
        Run checks asks the emulator and turns the consumer key and secret green."""
        admin = self.env.ref("base.user_admin")
        admin.write(
            {"company_ids": [(4, self.company.id)], "company_id": self.company.id}
        )
        self.mpesa.mpesa_callback_ips = False

        with self._inbox_job_running():  # M-PESA's result is applied meanwhile
            self.start_tour(
                f"/odoo/action-payment.action_payment_provider/{self.mpesa.id}",
                "mpesa_e2e_readiness_checklist",
                login="admin",
                timeout=120,
            )

        # The balance query of Run checks is answered on our result URL, from an
        # address of the allow-list the admin typed.
        [result] = self.emulator.wait_for_deliveries(1, timeout=20, kind="result")
        self.assertEqual(result.status, 200, result.response_text)
        self._wait_remaining_requests()
        self._apply_inbox()
        with self._db_lock():
            self.env.invalidate_all()
            self.assertEqual(
                self.mpesa.mpesa_callback_ips, "196.201.214.0/24, 127.0.0.1"
            )
            items = {
                item["key"]: item["state"]
                for item in self.mpesa._mpesa_readiness_items()
            }
        self.assertEqual(items["callback_ips"], "ok")
        self.assertEqual(items["oauth"], "ok")
        # The credential is the password really encrypted with the emulator's key.
        self.assertEqual(items["initiator"], "ok")
        self.assertTrue(self.mpesa.mpesa_ready_checked_on)

    def test_accountant_refunds_part_of_a_payment(self):
        """Issue #12: an accountant refunds part of an M-PESA payment from the
        payment (Refund); M-PESA sends it by B2C and the credit note ends paid."""
        self.emulator.add_shortcode(REFUND_B2C_SHORTCODE, balance=5000)
        self.mpesa.write(
            {
                "mpesa_b2c_shortcode": REFUND_B2C_SHORTCODE,
                "mpesa_b2c_initiator_name": DEFAULT_INITIATOR,
                # pasted as encrypted elsewhere (with the emulator's certificate)
                "mpesa_b2c_security_credential": self.emulator.security_credential(
                    DEFAULT_INITIATOR_PASSWORD
                ),
            }
        )
        accountant = new_test_user(
            self.env,
            login="mpesa_accountant",
            groups="base.group_user,account.group_account_manager",
            company_id=self.company.id,
        )
        invoice = self._create_posted_invoice(1000.0)
        tx = self._create_transaction(
            flow="direct",
            amount=1000.0,
            reference=f"{invoice.name}-1",
            invoice_ids=[Command.set(invoice.ids)],
        )
        with self._db_lock():
            tx._mpesa_send_stk_push(PHONE)
            self.env.flush_all()
        self._wait_callbacks(1)
        with self._db_lock():
            tx._post_process()
            credit_note = invoice._reverse_moves(
                [{"invoice_date": fields.Date.today()}]
            )
            credit_note.invoice_line_ids.price_unit = 300.0
            credit_note.action_post()
            self.env.flush_all()

        with self._inbox_job_running():  # M-PESA's result is applied meanwhile
            self.start_tour(
                f"/odoo/action-account.action_account_payments/{tx.payment_id.id}",
                "mpesa_e2e_partial_refund",
                login=accountant.login,
                timeout=120,
            )

        self.emulator.wait_for_deliveries(1, timeout=20, kind="result")
        self._wait_remaining_requests()
        self._apply_inbox()
        with self._db_lock():
            self.env.invalidate_all()
            refund = tx.child_transaction_ids
            self.assertEqual((refund.state, refund.amount), ("done", -300.0))
            self.assertEqual(refund.payment_id.reconciled_invoice_ids, credit_note)
            self.assertEqual(credit_note.payment_state, "paid")
            self.assertEqual(self.mpesa._mpesa_check_books(), [])
