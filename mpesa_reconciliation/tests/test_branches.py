from odoo import Command, fields
from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from .common import ReconciliationCommon


class BranchCommon(ReconciliationCommon):
    """Two shops, each with its sales team; a salesperson; a cashier of one shop."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        one_company = {
            "company_id": company.id,
            "company_ids": [Command.set(company.ids)],
        }
        Branch = cls.env["mpesa.branch"]
        cls.westlands = Branch.create({"name": "Westlands Shop"})
        cls.mombasa = Branch.create({"name": "Mombasa Road Shop"})
        Team = cls.env["crm.team"]
        cls.team_westlands = Team.create(
            {"name": "Westlands Sales", "mpesa_branch_id": cls.westlands.id}
        )
        cls.team_mombasa = Team.create(
            {"name": "Mombasa Road Sales", "mpesa_branch_id": cls.mombasa.id}
        )
        cls.seller = new_test_user(
            cls.env,
            "mpesa_seller",
            groups="base.group_user,sales_team.group_sale_salesman",
            **one_company,
        )
        cls.cashier = new_test_user(
            cls.env,
            "mpesa_westlands_cashier",
            groups="base.group_user,mpesa_payment.group_mpesa_user",
            **one_company,
        )
        cls.manager = new_test_user(
            cls.env,
            "mpesa_branch_manager",
            groups="base.group_user,mpesa_payment.group_mpesa_manager",
            **one_company,
        )

    def _sold_invoice(self, amount, team, salesperson=None):
        """A posted invoice sold by ``salesperson`` of ``team``."""
        with self._db_lock():
            invoice = self.init_invoice(
                "out_invoice",
                partner=self.partner,
                amounts=[amount],
                currency=self.currency_kes,
                taxes=[],
                invoice_date=fields.Date.today(),
            )
            invoice.write(
                {
                    "invoice_user_id": (salesperson or self.seller).id,
                    "team_id": team.id,
                }
            )
            invoice.action_post()
            self.env.flush_all()
        return invoice

    def _join_branch(self, branch, user):
        """An M-PESA manager adds ``user`` to ``branch`` on the branch's form."""
        with self._db_lock():
            with Form(branch.with_user(self.manager)) as form:
                form.user_ids.add(user)
            self.env.flush_all()


@tagged("post_install", "-at_install")
class TestBranches(BranchCommon):
    """Issue 11, finding 9: a receipt belongs to the salesperson, sales team and branch
    of what its money pays, so the branch's M-PESA users see it."""

    def test_paybill_for_an_invoice_takes_its_salesperson_team_and_branch(self):
        invoice = self._sold_invoice(800, self.team_westlands)
        receipt = self._c2b(invoice.name, 800)
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.invoice_id, invoice)
        self.assertEqual(receipt.user_id, self.seller)
        self.assertEqual(receipt.team_id, self.team_westlands)
        self.assertEqual(receipt.branch_id, self.westlands)
        self.assertEqual(
            receipt.exception_ids.branch_id, self.env["mpesa.branch"], "no exception"
        )

    def test_stk_payment_of_an_order_takes_its_salesperson_team_and_branch(self):
        with self._db_lock():
            order = self.env["sale.order"].create(
                {
                    "partner_id": self.partner.id,
                    "user_id": self.seller.id,
                    "team_id": self.team_mombasa.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product_a.id,
                                "price_unit": 1250,
                                "tax_id": False,
                            }
                        )
                    ],
                }
            )
            tx = self._create_mpesa_tx(
                amount=order.amount_total,
                reference="SO-BRANCH-1",
                sale_order_ids=[Command.set(order.ids)],
            )
            self.env.flush_all()
        self._push(tx)
        self._wait_callbacks()
        self.assertEqual(tx.state, "done")
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        self.assertEqual(receipt.application_ids, tx)
        self.assertEqual(receipt.user_id, self.seller)
        self.assertEqual(receipt.team_id, self.team_mombasa)
        self.assertEqual(receipt.branch_id, self.mombasa)

    def test_a_payment_of_no_document_belongs_to_the_shortcodes_branch(self):
        with self._db_lock():
            self.mpesa.mpesa_branch_id = self.mombasa
            self.env.flush_all()
        receipt = self._c2b("NOSUCHREF", 90)
        self.assertEqual(receipt.state, "review")
        self.assertEqual(receipt.branch_id, self.mombasa)
        self.assertFalse(receipt.user_id)
        self.assertFalse(receipt.team_id)
        exception = receipt.exception_ids
        self.assertEqual(exception.branch_id, self.mombasa, "the shop's queue too")

    def test_credit_of_a_customer_takes_the_customers_salesperson(self):
        """A customer's account number: their salesperson and the salesperson's team;
        a team of no branch leaves the shortcode's."""
        with self._db_lock():
            self.mpesa.mpesa_branch_id = self.mombasa
            team = self.env["crm.team"].create(
                {"name": "Key Accounts", "member_ids": [Command.link(self.seller.id)]}
            )
            self.partner.user_id = self.seller
            self.partner.action_mpesa_generate_account_ref()
            self.env.flush_all()
        receipt = self._c2b(self.partner.mpesa_account_ref, 300)
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.user_id, self.seller)
        self.assertEqual(receipt.team_id, team)
        self.assertEqual(receipt.branch_id, self.mombasa)

    def test_allocation_by_finance_takes_the_invoices_branch(self):
        """Money in review sits in the shortcode's branch; once finance allocates it
        to an invoice, it is that invoice's team's branch's."""
        with self._db_lock():
            self.mpesa.mpesa_branch_id = self.mombasa
            self.env.flush_all()
        invoice = self._sold_invoice(500, self.team_westlands)
        receipt = self._c2b("", 500, style="plain")
        self.assertEqual(receipt.branch_id, self.mombasa)
        exception = receipt.exception_ids
        with self._db_lock():
            exception.partner_id = self.partner
            wizard = self._allocation_wizard(exception)
            self.assertEqual(wizard.line_ids.invoice_id, invoice)
            wizard.action_allocate()
            self.env.flush_all()
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(receipt.user_id, self.seller)
        self.assertEqual(receipt.team_id, self.team_westlands)
        self.assertEqual(receipt.branch_id, self.westlands)

    def test_a_managers_assignment_is_kept(self):
        invoice = self._sold_invoice(400, self.team_westlands)
        receipt = self._c2b("", 400, style="plain")
        with self._db_lock():
            with Form(receipt.with_user(self.manager)) as form:
                form.branch_id = self.mombasa
            exception = receipt.exception_ids
            exception.partner_id = self.partner
            wizard = self._allocation_wizard(exception)
            self.assertEqual(wizard.line_ids.invoice_id, invoice)
            wizard.action_allocate()
            self.env.flush_all()
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.branch_id, self.mombasa, "chosen by the manager")
        self.assertEqual(receipt.user_id, self.seller, "still empty: filled")
        self.assertEqual(receipt.team_id, self.team_westlands)

    def test_branch_form_members_and_teams(self):
        with self._db_lock():
            with Form(self.env["mpesa.branch"].with_user(self.manager)) as form:
                form.name = "Kisumu Shop"
                form.user_ids.add(self.cashier)
                form.team_ids.add(self.team_mombasa)
            kisumu = form.record
            self.env.flush_all()
        self.assertIn(kisumu, self.cashier.mpesa_branch_ids, "one relation")
        self.assertEqual(self.team_mombasa.mpesa_branch_id, kisumu)
        self.assertEqual(self.mombasa.team_ids, self.env["crm.team"])
        with self._db_lock():
            with Form(kisumu.with_user(self.manager)) as form:
                form.team_ids.remove(self.team_mombasa.id)
            self.env.flush_all()
        self.assertFalse(self.team_mombasa.mpesa_branch_id)
        with self.assertRaises(AccessError):
            self.env["mpesa.branch"].with_user(self.cashier).create({"name": "Mine"})

    def test_a_cashier_sees_their_branchs_payments_only(self):
        """A plain M-PESA user of Westlands: Westlands' payments, not Mombasa Road's;
        a new branch shows at once. No receipt's branch is written by hand."""
        west = self._c2b(self._sold_invoice(700, self.team_westlands).name, 700)
        coast = self._c2b(self._sold_invoice(900, self.team_mombasa).name, 900)
        self._join_branch(self.westlands, self.cashier)
        self.assertEqual(self.cashier.mpesa_branch_ids, self.westlands)
        Receipt = self.env["mpesa.receipt"].with_user(self.cashier)
        visible = Receipt.search([])
        self.assertIn(west, visible)
        self.assertNotIn(coast, visible)
        values = west.with_user(self.cashier).read(["name", "amount", "branch_id"])
        self.assertEqual(values[0]["amount"], 700)
        self.assertEqual(values[0]["branch_id"][0], self.westlands.id)
        with self.assertRaises(AccessError):
            coast.with_user(self.cashier).read(["amount"])
        # Moved to help at the other shop too: seen without a restart.
        self._join_branch(self.mombasa, self.cashier)
        self.assertIn(coast, Receipt.search([]))

    def test_a_staff_request_is_the_requesters(self):
        """A payment a staff member requested from the backend (issue 13) is theirs,
        their team's and their team's branch, whoever sold the invoice."""
        clerk = new_test_user(
            self.env,
            "mpesa_westlands_clerk",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "account.group_account_invoice,mpesa_payment.group_mpesa_user",
            company_id=self.env.company.id,
            company_ids=[Command.set(self.env.company.ids)],
        )
        self.team_westlands.member_ids = clerk
        invoice = self._sold_invoice(650, self.team_mombasa)
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        with self._db_lock():
            action = invoice.with_user(clerk).action_mpesa_request_payment()
            form = Form(
                self.env["mpesa.collection"]
                .with_user(clerk)
                .with_context(**action["context"])
            )
            collection = form.save()
            collection.action_send()
            self.env.flush_all()
        self._wait_callbacks(before + 1)
        with self._db_lock():
            collection.mpesa_poll()
            self.env.flush_all()
            self.env.invalidate_all()
        self.assertEqual(collection.state, "done")
        receipt = collection.sudo().transaction_id.mpesa_source_receipt_id
        self.assertEqual(receipt.user_id, clerk)
        self.assertEqual(receipt.team_id, self.team_westlands)
        self.assertEqual(receipt.branch_id, self.westlands)
        self.assertIn(receipt, self.env["mpesa.receipt"].with_user(clerk).search([]))
