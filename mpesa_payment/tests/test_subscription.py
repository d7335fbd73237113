from datetime import timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from ..kenya_time import kenya_today
from .common import PHONE, SHORTCODE, MpesaHttpCommon


@tagged("post_install", "-at_install")
class TestSubscription(MpesaHttpCommon):
    """Recurring invoices paid by paybill against the subscription's account number."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner.email = "subscriber@example.com"
        cls.template = cls.env["sale.subscription.template"].create(
            {
                "name": "Monthly hosting",
                "code": "HOST",
                "invoicing_mode": "invoice",
                "recurring_rule_type": "months",
            }
        )
        cls.product = cls.env["product.product"].create(
            {
                "name": "Website hosting (monthly)",
                "list_price": 1500,
                "subscribable": True,
                "taxes_id": [Command.clear()],
            }
        )

    def _subscription(self):
        sub = self.env["sale.subscription"].create(
            {
                "partner_id": self.partner.id,
                "template_id": self.template.id,
                "pricelist_id": self.partner.property_product_pricelist.id,
                "date_start": kenya_today() - timedelta(days=60),
                "recurring_next_date": kenya_today() - timedelta(days=60),
                "sale_subscription_line_ids": [
                    Command.create({"product_id": self.product.id, "price_unit": 1500})
                ],
            }
        )
        return sub

    def _invoice(self, sub, due_days_ago):
        sub.generate_invoice()
        invoice = sub.invoice_ids.sorted("id")[-1]
        invoice.invoice_date_due = kenya_today() - timedelta(days=due_days_ago)
        self.env.flush_all()
        return invoice

    def test_reference_on_every_invoice(self):
        sub = self._subscription()
        self.assertRegex(sub.mpesa_account_ref, r"^SUB\d{5}$")
        invoice = self._invoice(sub, 0)
        self.assertEqual(invoice.payment_reference, sub.mpesa_account_ref)
        self.assertEqual(invoice.currency_id.name, invoice.company_id.currency_id.name)

    def test_payment_settles_oldest_open_invoice_and_reactivates(self):
        sub = self._subscription()
        oldest = self._invoice(sub, 20)
        newer = self._invoice(sub, 5)
        sub.invalidate_recordset()
        self.assertEqual(
            sub.mpesa_access_status, "suspended", "20 days > 14 days grace"
        )
        self.assertEqual(sub._mpesa_open_invoices(), oldest | newer)
        amount = oldest.amount_residual
        code = self.emulator.c2b_pay(
            SHORTCODE, PHONE, amount, sub.mpesa_account_ref.lower()
        )
        self._wait_callbacks(1, kind="c2b_confirmation")
        with self._db_lock():
            receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
        self._wait_confirmed(receipt)
        self.assertEqual(receipt.subscription_id, sub)
        self.assertEqual(receipt.invoice_id, oldest)
        with self._db_lock():
            receipt.transaction_id._post_process()
            self.env.flush_all()
        self.assertIn(oldest.payment_state, ("paid", "in_payment"))
        self.assertEqual(newer.payment_state, "not_paid")
        self.assertEqual(
            sub.mpesa_access_status, "overdue", "the newer one is 5 days late"
        )
        code = self.emulator.c2b_pay(
            SHORTCODE, PHONE, newer.amount_residual, sub.mpesa_account_ref
        )
        self._wait_callbacks(2, kind="c2b_confirmation")
        with self._db_lock():
            receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
        self._wait_confirmed(receipt)
        self.assertEqual(receipt.invoice_id, newer)
        with self._db_lock():
            receipt.transaction_id._post_process()
            self.env.flush_all()
        self.assertEqual(sub.mpesa_access_status, "active")

    def test_reminders_for_due_and_overdue_invoices(self):
        sub = self._subscription()
        due_soon = self._invoice(sub, -2)  # due in two days
        overdue = self._invoice(sub, 3)
        self.env["sale.subscription"]._cron_mpesa_subscriptions()
        self.assertTrue(due_soon.mpesa_reminder_sent)
        self.assertFalse(due_soon.mpesa_overdue_notice_sent)
        self.assertTrue(overdue.mpesa_overdue_notice_sent)
        message = overdue.message_ids.filtered(lambda m: "Overdue" in (m.subject or ""))
        self.assertTrue(message)
        self.assertIn(sub.mpesa_account_ref, message.body)
        self.assertIn(SHORTCODE, message.body)
        # once only
        count = len(overdue.message_ids)
        self.env["sale.subscription"]._cron_mpesa_subscriptions()
        self.assertEqual(len(overdue.message_ids), count)

    def test_the_day_is_nairobis_whoever_runs_the_job(self):
        """At 01:00 in Nairobi (22:00 UTC the day before), an invoice due the day
        before in Nairobi is overdue. The daily job runs as a user without a time
        zone: it took the UTC day, sent the due-soon reminder instead of the overdue
        notice and left the access active."""
        sub = self._subscription()
        invoice = self._invoice(sub, 0)
        invoice.invoice_date_due = "2026-03-10"
        with freeze_time("2026-03-10 22:00:00"):  # 11 March, 01:00 in Nairobi
            self.env["sale.subscription"].with_user(
                self.env.ref("base.user_root")
            ).with_context(tz=False)._cron_mpesa_subscriptions()
            sub.invalidate_recordset()
            self.assertEqual(sub.mpesa_access_status, "overdue")
        self.assertEqual(str(invoice.mpesa_overdue_notice_sent), "2026-03-11")
        self.assertFalse(invoice.mpesa_reminder_sent)
