import html
import re

from odoo import Command
from odoo.tests import HttpCase, tagged

from .common import MpesaCommon


@tagged("post_install", "-at_install")
class TestPortalBalance(MpesaCommon, HttpCase):
    """After a deposit confirms the order, the customer sees and can pay the rest."""

    def test_balance_shown_and_payable(self):
        self._check_balance_link()

    def test_balance_payable_when_the_invoice_address_differs(self):
        """Issue 11, finding 8: core checks the link's token against the order's
        invoice address, not its customer."""
        accounts = self.env["res.partner"].create(
            {"name": "Accounts Dept", "type": "invoice", "parent_id": self.partner.id}
        )
        self._check_balance_link(partner_invoice_id=accounts.id)

    def _check_balance_link(self, **order_values):
        self.partner.email = "deposit@example.com"
        self.mpesa.is_published = True
        order = self.env["sale.order"].create(
            {
                **order_values,
                "partner_id": self.partner.id,
                "require_payment": True,
                "prepayment_percent": 0.3,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.product_a.id,
                            "price_unit": 10000,
                            "tax_id": False,
                        }
                    )
                ],
            }
        )
        order.currency_id = self.currency_kes
        order.action_quotation_sent()
        self.assertFalse(
            order._mpesa_balance_due(), "nothing paid yet: no balance block"
        )
        deposit = self._create_mpesa_tx(
            amount=3000, reference="DEP-1", sale_order_ids=[Command.set(order.ids)]
        )
        deposit._set_done()
        deposit._post_process()
        self.assertEqual(order.state, "sale")
        self.assertEqual(order._mpesa_balance_due(), 7000)
        self.env.flush_all()
        page = self.url_open(order.get_portal_url())
        self.assertEqual(page.status_code, 200)
        self.assertIn("o_mpesa_pay_balance", page.text)
        self.assertIn("7,000.00", page.text)
        href = re.search(
            r'href="([^"]*)"[^>]*o_mpesa_pay_balance|o_mpesa_pay_balance[^>]*href="([^"]*)"',
            page.text,
        )
        url = html.unescape(href.group(1) or href.group(2))
        self.assertEqual(url, order._mpesa_balance_payment_url())
        link = self.url_open(url)
        self.assertEqual(link.status_code, 200)
        self.assertIn("7,000.00", link.text)
        self.assertIn(order.name, link.text)
        self.assertIn(
            'name="o_mpesa_phone"', link.text, "M-PESA offered for the balance"
        )
