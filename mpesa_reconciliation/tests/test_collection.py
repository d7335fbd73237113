"""Staff collection (issue 13): a salesperson requests an M-PESA payment from an
invoice, the customer answers on the (emulated) phone, and the request is followed
to its end. Each flow ends with the books as an accountant checks them."""

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import StaffCollectionCommon

DECLINES = "0700001032"  # the emulator's customer who cancels every prompt
UNREACHABLE = "0700001037"  # the emulator's phone that is switched off


@tagged("post_install", "-at_install")
class TestStaffCollection(StaffCollectionCommon):
    def test_salesperson_requests_and_customer_pays(self):
        invoice = self._invoice(1000)
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(invoice)
        self.assertEqual(collection.phone, "0708374149", "the customer's mobile")
        self.assertEqual((collection.amount, collection.amount_due), (1000, 1000))
        self.assertEqual(collection.user_id, self.salesperson)
        self.assertEqual(collection.team_id, self.team)
        before = self._send(collection)
        self.assertEqual(collection.state, "pending")
        self.assertEqual(self._follow(collection, before), "done")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertEqual(receipt.name, collection.receipt_code)
        self.assertEqual(receipt.user_id, self.salesperson, "the staff member")
        self.assertEqual(receipt.team_id, self.team)
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 1000)
        mine = (
            self.env["mpesa.collection"]
            .with_user(self.salesperson)
            .search([("user_id", "=", self.salesperson.id), ("state", "=", "done")])
        )
        self.assertEqual(mine, collection, "in My Collections, paid")
        self.assertIn(
            "sent to 2547****149 by Carol Counter",
            " ".join(invoice.message_ids.mapped("body")),
        )

    def test_customer_known_by_phone_only_pays_the_request(self):
        """Many M-PESA customers have no email address. Odoo signs a payment's note
        on its invoice as the customer, unless a backend action, and refuses a
        sender without email: the request is followed to its end and booked, and
        the note is signed by staff."""
        self.partner.email = False
        invoice = self._invoice(800)
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(invoice)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "done")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 800)
        reference = collection.transaction_id.reference
        notes = invoice.message_ids.filtered(lambda m: reference in (m.body or ""))
        self.assertIn(self.salesperson.partner_id, notes.author_id, "staff signed")

    def test_request_from_an_invoiced_order_pays_its_invoice(self):
        """Requested from an order already invoiced (review finding): the money
        pays the invoice, not credit beside it while the invoice stays due."""
        with self._db_lock():
            order = self.env["sale.order"].create(
                {
                    "partner_id": self.partner.id,
                    "user_id": self.salesperson.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product_a.id,
                                "price_unit": 1200,
                                "tax_id": False,
                            }
                        )
                    ],
                }
            )
            order.action_confirm()
            invoice = order._create_invoices()
            invoice.action_post()
            self.env.flush_all()
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(order, phone="0708374149")
        self.assertEqual(collection.amount, 1200)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "done")
        self.assertEqual(collection.transaction_id.invoice_ids, invoice)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 1200)

    def test_declined_prompt_then_sent_again(self):
        invoice = self._invoice(700)
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(invoice, phone=DECLINES)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "failed")
        self.assertIn("You cancelled", collection.state_message)
        self.assertEqual(invoice.payment_state, "not_paid")
        with self._db_lock():
            collection.phone = "0708374149"
        before = self._send_again(collection)
        self.assertEqual(self._follow(collection, before), "done")
        self.assertEqual(len(collection.transaction_ids), 2)
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 700)

    def _send_again(self, collection):
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        with self._db_lock():
            collection.action_send_again()
            self.env.flush_all()
        return before

    def test_unreachable_phone_says_why(self):
        invoice = self._invoice(500)
        collection = self._dialog(invoice, phone=UNREACHABLE)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "failed")
        self.assertIn("could not be reached", collection.state_message)
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_instalment_smaller_than_the_amount_due(self):
        invoice = self._invoice(1000)
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(invoice, amount=400)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "done")
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(invoice.amount_residual, 600)
        receipt = collection.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 400)
        with self.assertRaisesRegex(UserError, "more than the KES 600.00 still due"):
            self._send(self._dialog(invoice, amount=601))

    def test_second_request_while_one_is_pending(self):
        invoice = self._invoice(900)
        receivable = self._receivable_balance(invoice.partner_id)
        self.emulator.auto_complete = False  # the customer has not answered yet
        first = self._dialog(invoice)
        self._send(first)
        second = self._dialog(invoice, user=self.colleague)
        with self.assertRaisesRegex(
            UserError, "already waiting on 2547\\*\\*\\*\\*149"
        ):
            self._send(second)
        self.assertEqual(second.state, "draft")
        prompts = list(self.emulator.prompts)
        self.assertEqual(len(prompts), 1, "one prompt on the phone")
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        self.emulator.resolve_prompt(prompts[0], "approve")
        self.assertEqual(self._follow(first, before), "done")
        receipt = first.transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 900)

    def test_nothing_sent_while_the_provider_is_disabled(self):
        invoice = self._invoice(300)
        collection = self._dialog(invoice)
        with self._db_lock():
            self.mpesa.state = "disabled"
        with self.assertRaisesRegex(UserError, "M-PESA is not enabled"):
            self._send(collection)
        self.assertFalse(self.emulator.prompts)

    def test_staff_member_limit(self):
        first, second = self._invoice(100), self._invoice(200)
        with self._db_lock():
            self.mpesa.mpesa_push_limit_user = 1
        self._send(self._dialog(first))
        with self.assertRaisesRegex(UserError, "You sent too many payment requests"):
            self._send(self._dialog(second))
        self.assertEqual(len(self.emulator.prompts), 1)

    def test_order_and_subscription_ask_for_what_they_owe(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "currency_id": self.currency_kes.id,
                "order_line": [
                    Command.create(
                        {
                            "name": "Solar lamp",
                            "product_uom_qty": 1,
                            "price_unit": 2500,
                            "tax_id": [Command.clear()],
                        }
                    )
                ],
            }
        )
        collection = self._dialog(order)
        self.assertEqual(collection.sale_order_id, order)
        self.assertEqual(collection.amount, order.amount_total)

    def test_subscription_asks_for_its_oldest_open_invoice(self):
        template = self.env["sale.subscription.template"].create(
            {"name": "Monthly hosting", "code": "HOSTC", "invoicing_mode": "invoice"}
        )
        product = self.env["product.product"].create(
            {"name": "Hosting", "subscribable": True, "taxes_id": [Command.clear()]}
        )
        subscription = self.env["sale.subscription"].create(
            {
                "partner_id": self.partner.id,
                "template_id": template.id,
                "pricelist_id": self.partner.property_product_pricelist.id,
                "sale_subscription_line_ids": [
                    Command.create({"product_id": product.id, "price_unit": 1500})
                ],
            }
        )
        with self._db_lock():
            subscription.generate_invoice()
            self.env.flush_all()
        invoice = subscription.invoice_ids
        self.assertEqual(invoice.state, "posted")
        receivable = self._receivable_balance(invoice.partner_id)
        collection = self._dialog(subscription)
        self.assertEqual(collection.subscription_id, subscription)
        self.assertEqual(collection.amount, invoice.amount_residual)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "done")
        self.assertEqual(collection.transaction_id.invoice_ids, invoice)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        receipt = collection.sudo().transaction_id.mpesa_source_receipt_id
        self.assertBooksOfPayment(receipt, invoice.partner_id, receivable, 1500)

    def test_plain_user_sees_own_and_their_branchs_requests(self):
        """A plain M-PESA user sees their own requests and their branch's (with the
        receipts they bring), not another branch's."""
        westlands = self.env["mpesa.branch"].create({"name": "Westlands"})
        mombasa = self.env["mpesa.branch"].create({"name": "Mombasa Road"})
        self.team.mpesa_branch_id = westlands
        neighbour = new_test_user(
            self.env,
            "westlands_clerk",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "account.group_account_invoice,mpesa_payment.group_mpesa_user",
            company_id=self.env.company.id,
        )
        neighbour.mpesa_branch_ids = westlands
        self.colleague.mpesa_branch_ids = mombasa
        first, second = self._invoice(100), self._invoice(200)
        mine = self._dialog(first)
        theirs = self._dialog(second, user=self.colleague)
        self.assertEqual((mine.branch_id, theirs.branch_id), (westlands, mombasa))
        before = self._send(mine)
        self.assertEqual(self._follow(mine, before), "done")
        visible = self.env["mpesa.collection"].with_user(self.salesperson).search([])
        self.assertIn(mine, visible)
        self.assertNotIn(theirs, visible)
        for user, expected in ((neighbour, mine), (self.colleague, theirs)):
            self.assertEqual(
                self.env["mpesa.collection"].with_user(user).search([]), expected
            )
        receipt = mine.sudo().transaction_id.mpesa_source_receipt_id
        self.assertEqual(receipt.branch_id, westlands)
        self.assertIn(
            receipt, self.env["mpesa.receipt"].with_user(neighbour).search([])
        )
        self.assertNotIn(
            receipt, self.env["mpesa.receipt"].with_user(self.colleague).search([])
        )
        with self.assertRaises(AccessError):
            theirs.with_user(self.salesperson).write({"phone": "0711000000"})

    def test_payment_link_instead_when_the_customer_is_not_at_hand(self):
        invoice = self._invoice(1200)
        collection = self._dialog(invoice, amount=500)
        self.authenticate(self.salesperson.login, self.salesperson.login)
        self._call(collection, "action_send_link")
        [values] = self._call(collection, "read", ["link_text"])
        text = values["link_text"]
        self.assertIn(invoice.name, text)
        self.assertIn("KES 500.00", text)
        self.assertIn(f"{self.base_url()}/", text)
        self.assertIn("amount=500", text)
        self.assertIn("token=", text)
        self._call(collection, "action_email_link")
        message = invoice.message_ids[:1]
        self.assertIn("amount=500", message.body)
        self.assertEqual(message.partner_ids, invoice.partner_id)
        self.assertFalse(self.emulator.prompts, "no prompt sent")

    def test_outcome_recorded_on_the_document(self):
        invoice = self._invoice(650)
        collection = self._dialog(invoice, phone=DECLINES)
        before = self._send(collection)
        self.assertEqual(self._follow(collection, before), "failed")
        bodies = " ".join(invoice.message_ids.mapped("body"))
        self.assertIn("sent to 2547****032 by Carol Counter", bodies)
        self.assertIn(collection.transaction_id.reference, bodies, "the outcome")
