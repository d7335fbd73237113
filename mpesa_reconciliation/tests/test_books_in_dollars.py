import json

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.common import PHONE, SHORTCODE

from .common import DollarBooksCommon, StaffCollectionCommon


@tagged("post_install", "-at_install")
class TestShillingsInDollarBooks(DollarBooksCommon):
    """What finance sees of M-PESA money in a company keeping its books in US
    dollars: shillings, never the company's dollars read as shillings."""

    def test_the_mpesa_balance_is_shown_in_shillings(self):
        """M-PESA reports its balance in shillings: the provider's form showed it
        with the company's currency, KES 50,000 as $ 50,000.00."""
        self.mpesa.mpesa_balance = 50000.0
        field = self.mpesa.fields_get(["mpesa_balance"])["mpesa_balance"]
        self.assertEqual(self.mpesa[field["currency_field"]], self.currency_kes)
        html = self.env["ir.qweb.field.monetary"].record_to_html(
            self.mpesa, "mpesa_balance", {}
        )
        self.assertIn(self.currency_kes.symbol, html)
        self.assertNotIn("$", html)

    def test_allocation_proposes_shillings_for_a_dollar_invoice(self):
        """An invoice of $10 (KES 1,290) and a payment of KES 1,290 that named no
        account: the allocation proposed KES 10.00 (the invoice's dollars read as
        shillings) and showed "KES 10.00" due; allocated as proposed, the invoice
        stayed unpaid and KES 1,280 went to the customer's credit."""
        invoice = self._dollar_invoice(10)
        receipt = self._c2b("", 1290, style="plain")
        exception = receipt.exception_ids.filtered(lambda e: e.state == "open")
        exception.action_use_suggested_partner()
        wizard = self._allocation_wizard(exception)
        self.assertEqual(
            [(line.invoice_id, line.amount_residual) for line in wizard.line_ids],
            [(invoice, 1290)],
        )
        self.assertEqual(wizard.line_ids.mapped("amount"), [1290])
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(exception.resolution, "allocated")
        # The books as an accountant checks them: one KES payment, its bank line
        # reconciled, the books check (in shillings) clean.
        payment = receipt.application_ids.payment_id
        self.assertEqual(
            (payment.amount, payment.currency_id), (1290, self.currency_kes)
        )
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_paybill_validation_weighs_a_dollar_invoice_in_shillings(self):
        """With amount validation on, M-PESA asks before completing a paybill
        payment: KES 1,291 for a $10 invoice (KES 1,290) is refused as more than is
        due, KES 1,290 accepted, and it pays the invoice."""
        invoice = self._dollar_invoice(10)
        with self._db_lock():
            self.mpesa.write(
                {
                    "mpesa_c2b_validate_reference": True,
                    "mpesa_c2b_validate_amount": True,
                }
            )
            self.env.flush_all()
        self.emulator.c2b_pay(SHORTCODE, PHONE, 1291, invoice.name)
        (refused,) = self._wait_callbacks(1, kind="c2b_validation")
        self.assertEqual(json.loads(refused.response_text)["ResultCode"], "C2B00013")
        before = self._receivable_balance(self.partner)
        receipt = self._c2b(invoice.name, 1290)
        validations = self._wait_callbacks(2, kind="c2b_validation")
        self.assertEqual(json.loads(validations[-1].response_text)["ResultCode"], "0")
        self.assertEqual(receipt.invoice_id, invoice)
        self._post_process(receipt)
        self.env.invalidate_all()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertBooksOfPayment(receipt, self.partner, before, 10)

    def _best_suggestion(self, reference, amount):
        receipt = self._c2b(reference, amount)
        line = receipt.statement_line_id
        with self._db_lock():
            line._mpesa_refresh_suggestions(auto=False)
            self.env.flush_all()
        return line.mpesa_suggestion_ids[:1]

    def test_suggestion_compares_a_dollar_invoice_in_shillings(self):
        """KES 1,290 for an invoice of $10, its reference mistyped: the matcher
        compared the payment with the invoice's 10 dollars read as shillings
        ("over"), not with the KES 1,290 it is due."""
        invoice = self._dollar_invoice(10)
        typo = invoice.name.replace("/", "")[:-1] + "9"  # one wrong digit
        best = self._best_suggestion(typo, 1290)
        self.assertEqual((best.res_model, best.res_id), ("account.move", invoice.id))
        self.assertEqual((best.amount_match, best.amount_due), ("exact", 1290))
        self.assertIn("amount exact", best.reasons)

    def test_suggestion_compares_a_dollar_order_in_shillings(self):
        """The same for a sales order of $10 (the company's currency)."""
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "order_line": [
                    Command.create(
                        {"name": "Solar lamp", "price_unit": 10, "tax_id": []}
                    )
                ],
            }
        )
        order.name = "SO-USD-42"
        self.env.flush_all()
        self.assertEqual(order.currency_id, self.env.ref("base.USD"))
        best = self._best_suggestion("SO-USD-43", 1290)  # one wrong digit
        self.assertEqual((best.res_model, best.res_id), ("sale.order", order.id))
        self.assertEqual((best.amount_match, best.amount_due), ("exact", 1290))
        self.assertIn("amount exact", best.reasons)

    # === An order in dollars paid in shillings by its number === #

    def _paybill(self, order, amount):
        """The customer pays ``amount`` shillings by paybill with the order's number;
        the payment is post-processed (booked) as the framework's job does."""
        receipt = self._c2b(order.name, amount)
        self._post_process(receipt)
        self.env.invalidate_all()
        return receipt

    def test_a_dollar_quotation_paid_in_two_halves_by_paybill(self):
        """A quotation of $10 (KES 1,290) paid by paybill with its number in two
        halves of KES 645: the first half counted as $645 paid, so the quotation was
        confirmed as paid and the second half waited for finance as a possible
        duplicate ("Order ... is already paid") instead of paying the order."""
        order = self._dollar_order(10)
        Receipt = self.env["mpesa.receipt"]
        before = self._receivable_balance(self.partner)
        first = self._paybill(order, 645)
        self.assertEqual(first.state, "applied")
        self.assertEqual(order.amount_paid, 5)
        self.assertEqual(order.state, "draft")  # half the price does not confirm it
        self.assertEqual(Receipt._amount_due(order), 645)
        second = self._paybill(order, 645)
        self.assertEqual((second.state, second.review_cause), ("applied", False))
        self.assertFalse(second.exception_ids)
        self.assertEqual(second.sale_order_id, order)
        self.assertEqual((order.state, order.amount_paid), ("sale", 10))
        self.assertEqual(Receipt._amount_due(order), 0)
        # The books: two KES payments of $5 each, matched, the receivable down $10.
        self.assertBooksOfPayment(first | second, self.partner, before, 10)

    def test_a_half_paid_dollar_order_is_suggested_for_its_other_half(self):
        """The other half of the order above paid with a mistyped number: the
        matcher left out the order, which it read as overpaid, and suggested nothing;
        it suggests the order at the KES 645 still due."""
        order = self._dollar_order(10)
        order.name = "SO-USD-42"
        self._paybill(order, 645)
        best = self._best_suggestion("SO-USD-43", 645)  # one wrong digit
        self.assertEqual((best.res_model, best.res_id), ("sale.order", order.id))
        self.assertEqual((best.amount_match, best.amount_due), ("exact", 645))

    def _invoice_lines(self, order, lines):
        """Staff click Create Invoice on the order and post it for ``lines`` only."""
        with self._db_lock():
            invoice = order._create_invoices()
            others = invoice.invoice_line_ids.filtered(
                lambda aml: not aml.sale_line_ids & lines
            )
            invoice.write(
                {"invoice_line_ids": [Command.delete(aml.id) for aml in others]}
            )
            invoice.action_post()
            self.env.flush_all()
        return invoice

    def test_a_partly_invoiced_dollar_order_paid_in_two_parts(self):
        """An order of $10 and $20, its $10 invoiced, paid KES 2,580 ($20) with its
        number: the invoice is paid and $10 waits as credit for the rest. What the
        order still asked was the $20 not invoiced less that credit read in
        shillings (KES 1,290 as $1,290): nothing, so the last KES 1,290 waited for
        finance as a duplicate. It pays the order; the second invoice takes both."""
        order = self._dollar_order(10, 20, confirm=True)
        first = self._invoice_lines(order, order.order_line[0])
        before = self._receivable_balance(self.partner)
        part = self._paybill(order, 2580)
        self.assertIn(first.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.env["mpesa.receipt"]._amount_due(order), 1290)
        rest = self._paybill(order, 1290)
        self.assertEqual((rest.state, rest.review_cause), ("applied", False))
        self.assertEqual(self.env["mpesa.receipt"]._amount_due(order), 0)
        second = self._invoice_lines(order, order.order_line[1])
        self.assertIn(second.payment_state, ("paid", "in_payment"))
        receivable = before + second.amount_total  # what the second invoice asked
        self.assertBooksOfPayment(part | rest, self.partner, receivable, 30)

    def test_a_dollar_payment_of_an_order_pays_its_oldest_invoice_only(self):
        """An order of $10 and $20 invoiced in two invoices, paid KES 1,290 with the
        order's number: the shillings, compared with the invoices' dollars, reached
        both invoices and the payment claimed to pay the second one too."""
        order = self._dollar_order(10, 20, confirm=True)
        first, second = (self._invoice_lines(order, line) for line in order.order_line)
        self.assertEqual((first.amount_total, second.amount_total), (10, 20))
        before = self._receivable_balance(self.partner)
        receipt = self._paybill(order, 1290)
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.application_ids.invoice_ids, first)
        self.assertIn(first.payment_state, ("paid", "in_payment"))
        self.assertEqual(second.amount_residual, 20)
        self.assertEqual(self.env["mpesa.receipt"]._amount_due(order), 20 * 129)
        self.assertBooksOfPayment(receipt, self.partner, before, 10)


@tagged("post_install", "-at_install")
class TestStaffCollectionInDollarBooks(DollarBooksCommon, StaffCollectionCommon):
    """A salesperson asks the customer's phone for the payment of a document in
    the company's dollars (Request M-PESA Payment): M-PESA takes shillings."""

    def test_request_for_a_dollar_invoice_asks_its_shillings(self):
        """A $10 invoice: the dialog proposed its KES 1,290 as the invoice's dollars
        ($ 1,290.00) and Send was refused ("M-PESA only takes payments in Kenyan
        Shillings"). It asks KES 1,290, the customer approves the prompt, and the
        invoice is paid by one KES payment."""
        invoice = self._dollar_invoice(10)
        before = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(invoice)
        self.assertEqual(
            (collection.amount, collection.amount_due, collection.currency_id),
            (1290, 1290, self.currency_kes),
        )
        sent = self._send(collection)
        [prompt] = self.emulator.prompts.values()
        self.assertEqual(prompt.amount, 1290)
        self.assertEqual(self._follow(collection, sent), "done")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertEqual((receipt.amount, receipt.state), (1290, "applied"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 10)

    def test_request_for_a_dollar_quotation_confirms_it(self):
        """A $10 quotation asked for from the backend: KES 1,290 on the phone pays it
        whole, and the quotation is confirmed as paid."""
        order = self._dollar_order(10)
        order.user_id = self.salesperson  # the salesperson's own quotation
        before = self._receivable_balance(self.partner)
        collection = self._dialog(order, phone="0708374149")
        self.assertEqual(
            (collection.amount, collection.currency_id.name), (1290, "KES")
        )
        sent = self._send(collection)
        self.assertEqual(self._follow(collection, sent), "done")
        self.env.invalidate_all()
        self.assertEqual((order.state, order.amount_paid), ("sale", 10))
        self.assertEqual(self.env["mpesa.receipt"]._amount_due(order), 0)
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, self.partner, before, 10)

    def test_no_payment_link_for_a_dollar_invoice(self):
        """The payment link opens Odoo's payment page of the document, which asks
        the invoice's dollars and offers no M-PESA (core leaves out a provider
        without the document's currency): the link asked $1,290 for a $10 invoice,
        "with M-PESA". Staff are told to send the prompt instead; no link is made."""
        invoice = self._dollar_invoice(10)
        collection = self._dialog(invoice)
        with self._db_lock(), self.assertRaisesRegex(UserError, "asks USD"):
            collection.with_user(self.salesperson).action_send_link()
        self.assertFalse(collection.show_link)
        self.assertFalse(collection.link_text)
