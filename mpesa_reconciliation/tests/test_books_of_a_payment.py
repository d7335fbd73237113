"""Each payment flow ends right in the books, with OCA's automatic reconciliation on.

Odoo's test mode switches OCA ``account_reconcile_oca``'s automatic matching off; our
statement lines are created with it on (``_mpesa_feed_statement``), so these tests see
what a production server does.
"""

from odoo import Command
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
