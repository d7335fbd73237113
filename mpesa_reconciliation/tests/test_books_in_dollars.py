from odoo import Command, fields
from odoo.tests import tagged

from .common import DollarBooksCommon


@tagged("post_install", "-at_install")
class TestShillingsInDollarBooks(DollarBooksCommon):
    """What finance sees of M-PESA money in a company keeping its books in US
    dollars: shillings, never the company's dollars read as shillings."""

    def _dollar_invoice(self, amount):
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.partner,
            amounts=[amount],
            currency=self.env.ref("base.USD"),
            taxes=[],
            post=True,
            invoice_date=fields.Date.today(),
        )
        self.env.flush_all()
        return invoice

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
