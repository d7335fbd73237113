"""Each payment flow ends right in the books, with OCA's automatic reconciliation on.

Odoo's test mode switches OCA ``account_reconcile_oca``'s automatic matching off; our
statement lines are created with it on (``_mpesa_feed_statement``), so these tests see
what a production server does.
"""

from odoo import Command, fields
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.customer_view import printed

from .common import SHORTCODE, ReconciliationCommon


@tagged("post_install", "-at_install")
class TestBooksOfAPayment(ReconciliationCommon):
    def _stk_pay(self, invoice, amount, suffix="1"):
        """The customer pays ``amount`` of ``invoice`` by STK push (portal or payment
        link); Daraja calls back over HTTP and the status page post-processes."""
        with self._db_lock():
            tx = self._create_mpesa_tx(
                amount=amount,
                reference=f"{invoice.name}-{suffix}",
                invoice_ids=[Command.set(invoice.ids)],
            )
            self.env.flush_all()
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        self._push(tx)
        self._wait_callbacks(before + 1)
        with self._db_lock():
            tx._post_process()
            self.env.flush_all()
        return self.env["mpesa.receipt"].search([("name", "=", tx.mpesa_receipt_code)])

    def test_stk_payment_of_a_whole_invoice_is_booked_once(self):
        """Finding 0: the bank line was auto-reconciled with the invoice before the
        payment existed; the payment then stayed in Outstanding Receipts."""
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._stk_pay(invoice, 1000)
        self.assertEqual(receipt.state, "applied")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_stk_payment_with_the_early_payment_discount_is_booked_once(self):
        """An invoice of 1,000 with 2% off if paid within 7 days: the portal asks the
        980 (core's next payment values) and core's payment writes the 20 off. The
        receivable is credited 1,000 for 980 paid, which the books check took for a
        customer credited beyond the money."""
        term = self.env["account.payment.term"].create(
            {
                "name": "2% 7 days, net 30",
                "early_discount": True,
                "discount_percentage": 2,
                "discount_days": 7,
                "line_ids": [
                    Command.create(
                        {"value": "percent", "value_amount": 100, "nb_days": 30}
                    )
                ],
            }
        )
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.partner,
            amounts=[1000],
            currency=self.currency_kes,
            taxes=[],
            invoice_date=fields.Date.today(),
        )
        invoice.invoice_payment_term_id = term
        invoice.action_post()
        asked = invoice._get_invoice_next_payment_values()["amount_due"]
        self.assertEqual(asked, 980)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._stk_pay(invoice, asked)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        # The receivable moves by the whole invoice: 980 paid, 20 the discount.
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_last_instalment_of_an_invoice_is_booked_once(self):
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        first = self._stk_pay(invoice, 400, "1")
        self.assertEqual(invoice.payment_state, "partial")
        last = self._stk_pay(invoice, 600, "2")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(first | last, invoice.partner_id, before, 1000)

    def test_paybill_payment_of_an_invoice_is_booked_once(self):
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(invoice.name, 1000)
        self._post_process(receipt)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_paybill_payment_with_the_printed_account_number_is_booked_once(self):
        """How to pay (issue 16): the account number printed on the invoice (PDF and
        portal), typed as a customer would, lower case with spaces, pays it."""
        invoice = self._invoice(1000)
        with self._db_lock():
            html = self.env["ir.actions.report"]._render_qweb_html(
                "account.account_invoices", invoice.ids
            )[0]
            portal_url = invoice.get_portal_url(report_type="html")
            self.env.flush_all()
        account = printed(html, "o_mpesa_account_number")
        self.assertEqual(printed(html, "o_mpesa_business_number"), SHORTCODE)
        portal = self.url_open(portal_url).text
        self.assertEqual(printed(portal, "o_mpesa_account_number"), account)
        self.assertEqual(account, invoice.name.replace("/", ""))  # INV202600001
        typed = f" {account[:3].lower()} {account[3:7]} {account[7:]}"
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(typed, 1000)
        self._post_process(receipt)
        self.assertEqual(receipt.reference, typed.strip())
        self.assertEqual(receipt.state, "applied")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    # === A paybill payment quoting the number of an order already invoiced === #

    def _invoice_order(self, order, keep_lines=None):
        """Staff click Create Invoice on the order and post it; ``keep_lines``: only
        the first so many order lines are invoiced (a partial invoice)."""
        with self._db_lock():
            invoice = order._create_invoices()
            if keep_lines is not None:
                extra = invoice.invoice_line_ids[keep_lines:]
                invoice.write(
                    {"invoice_line_ids": [Command.delete(x.id) for x in extra]}
                )
            invoice.invoice_date = invoice.invoice_date or invoice.date
            invoice.action_post()
            self.env.flush_all()
        return invoice

    def _assert_paybill_paid(self, receipt, invoice, before, amount):
        """Once post-processed, the paybill payment is applied, ``invoice`` is paid
        and the books are right; returns the payment's transaction."""
        self._post_process(receipt)
        self.env.invalidate_all()
        self.assertEqual(receipt.state, "applied")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, amount)
        return receipt.application_ids

    def test_paybill_payment_of_an_invoiced_order_pays_its_invoice(self):
        """Found on a real server: the customer quotes the order number (S00043) of
        an order already invoiced; the money stayed as credit beside the open invoice,
        and the customer got overdue reminders for an invoice they had paid."""
        order = self._order(3000, confirm=True)
        invoice = self._invoice_order(order)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(order.name, 3000)
        tx = self._assert_paybill_paid(receipt, invoice, before, 3000)
        self.assertEqual(invoice._get_reconciled_payments(), tx.payment_id)
        self.assertEqual(receipt.sale_order_id, order)
        self.assertEqual((tx.invoice_ids, tx.sale_order_ids), (invoice, order))

    def test_paybill_payment_of_a_partly_invoiced_order(self):
        """Its invoice is paid first; the rest waits for the order's next invoice,
        which the same payment pays once posted."""
        order = self._order(1000, 2000, confirm=True)
        first = self._invoice_order(order, keep_lines=1)
        self.assertEqual(first.amount_total, 1000)
        before = self._receivable_balance(first.partner_id)
        # More than the invoice and the rest of the order ask: not applied.
        over = self._c2b(order.name, 3500)
        self.assertEqual(over.state, "review")
        self.assertEqual(over.review_cause, "overpaid")
        self.assertEqual(over.review_due, 3000)
        receipt = self._c2b(order.name, 3000)
        tx = self._assert_paybill_paid(receipt, first, before, 3000)
        self.assertEqual(tx.invoice_ids, first)
        second = self._invoice_order(order)
        self.assertEqual(second.amount_total, 2000)
        self.assertIn(second.payment_state, ("paid", "in_payment"))
        self.assertEqual(second._get_reconciled_payments(), tx.payment_id)

    def test_paybill_payment_of_an_invoiced_and_paid_order_is_a_duplicate(self):
        """The order's invoice is paid already: a second payment quoting the order
        waits for finance as a possible duplicate, it is not silently kept as credit."""
        order = self._order(3000, confirm=True)
        invoice = self._invoice_order(order)
        self._post_process(self._c2b(invoice.name, 3000))
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        again = self._c2b(order.name, 3000)
        self.env.invalidate_all()
        self.assertEqual(again.state, "review")
        self.assertEqual(again.review_cause, "duplicate")
        self.assertFalse(again.application_ids)
        exception = again.exception_ids.filtered(lambda e: e.state == "open")
        self.assertEqual(exception.kind, "duplicate")
        self.assertEqual(exception.review_document, order)

    def test_paybill_deposit_before_the_invoice_then_the_balance_after_it(self):
        """A deposit quoting the order before it is invoiced waits as credit; the
        invoice takes it once posted, and the balance quoting the order pays the
        invoice: what is due is the invoice's rest, not the order's total again."""
        order = self._order(3000, confirm=True)
        before = self._receivable_balance(order.partner_id)
        deposit = self._c2b(order.name, 1000)
        self._post_process(deposit)
        invoice = self._invoice_order(order)
        self.assertEqual(invoice.amount_residual, 2000)
        self.assertEqual(invoice.payment_state, "partial")
        balance = self._c2b(order.name, 2000)
        self._post_process(balance)
        self.env.invalidate_all()
        self.assertEqual(balance.state, "applied")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(
            invoice._get_reconciled_payments(),
            (deposit | balance).application_ids.payment_id,
        )
        receivable = before + invoice.amount_total  # what the invoice asked
        self.assertBooksOfPayment(deposit | balance, order.partner_id, receivable, 3000)

    def test_paybill_payment_of_an_invoiced_order_with_automatic_invoicing(self):
        """Sales' automatic invoicing (eCommerce) invoices an order its payment
        confirms, and links the payment to that new invoice only: an order invoiced
        already gets no second invoice, and the payment keeps paying the first."""
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", True)
        order = self._order(3000, confirm=True)
        invoice = self._invoice_order(order)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(order.name, 3000)
        self._post_process(receipt)
        self.env.invalidate_all()
        self.assertEqual(order.invoice_ids, invoice)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 3000)

    # === A paybill payment quoting a subscription's account number === #

    def test_paybill_payment_of_a_subscription_is_booked_once(self):
        """The subscriber quotes the subscription's number (SUB00001) printed on each
        recurring invoice: the oldest open invoice is paid, booked once."""
        with self._db_lock():
            subscription = self.env["sale.subscription"].create(
                {
                    "partner_id": self.partner.id,
                    "template_id": self.env["sale.subscription.template"]
                    .create({"name": "Monthly hosting", "invoicing_mode": "invoice"})
                    .id,
                    "pricelist_id": self.partner.property_product_pricelist.id,
                    "sale_subscription_line_ids": [
                        Command.create(
                            {"product_id": self.product_a.id, "price_unit": 1500}
                        )
                    ],
                }
            )
            subscription.sale_subscription_line_ids.tax_ids = False
            subscription.generate_invoice()
            self.env.flush_all()
        invoice = subscription.invoice_ids
        self.assertEqual(invoice.amount_total, 1500)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b(subscription.mpesa_account_ref, 1500)
        self._assert_paybill_paid(receipt, invoice, before, 1500)
        self.assertEqual(receipt.subscription_id, subscription)
