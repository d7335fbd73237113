import base64

from odoo import Command, fields
from odoo.modules.migration import load_script
from odoo.modules.module import get_module_path
from odoo.tests import Form, new_test_user

from odoo.addons.mpesa_payment.kenya_time import to_kenya
from odoo.addons.mpesa_payment.tests.common import SHORTCODE, MpesaHttpCommon

__all__ = [
    "HEADER",
    "PREAMBLE",
    "SHORTCODE",
    "DollarBooksCommon",
    "ReconciliationCommon",
    "StaffCollectionCommon",
    "statement",
]

HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,"
    "Linked Transaction ID,A/C No.\n"
)
PREAMBLE = "Jua Kali Traders Ltd\nShortcode 174379\nPeriod: 01-03-2026 - 02-03-2026\n\n"


def statement(rows):
    """An org-portal statement (CSV) of ``rows``."""
    return (PREAMBLE + HEADER + "".join(rows)).encode()


class ReconciliationCommon(MpesaHttpCommon):
    """M-PESA money flowing into the provider's bank journal, with real callbacks."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.journal = cls.mpesa.journal_id

    def _upgrade_mpesa_payment(self, version, from_version):
        """Run mpesa_payment's end- migration script of ``version`` on the test
        database, as an upgrade from ``from_version`` does."""
        path = f"{get_module_path('mpesa_payment')}/migrations/{version}"
        upgrade = load_script(f"{path}/end-migration.py", "end-migration")
        with self._db_lock():
            upgrade.migrate(self.env.cr, from_version)
            self.env.flush_all()
        self.env.invalidate_all()

    def _allocation_wizard(self, exception, user=None, **values):
        """The Allocate wizard as the exception's button opens it (as ``user``, or
        the test's accountant), saved with ``values``."""
        Wizard = self.env["mpesa.exception.allocate"]
        if user:
            Wizard = Wizard.with_user(user)
        return Wizard.with_context(default_exception_id=exception.id).create(values)

    def _journal_balance(self):
        lines = self.env["account.bank.statement.line"].search(
            [("journal_id", "=", self.journal.id)]
        )
        return sum(lines.mapped("amount"))

    def _import_reversal_row(self, reversal, receipt):
        """M-PESA's statement lists the reversal: money out, linked to the payment."""
        when = to_kenya(fields.Datetime.now()).strftime("%d-%m-%Y %H:%M:%S")
        row = (
            f"{reversal},{when},{when},Reversal,Completed,,-{receipt.amount:.2f},,,"
            f"Reversal,2547****149 - JOHN,{receipt.name},\n"
        )
        with self._db_lock():
            self.env["mpesa.statement.import"].create(
                {
                    "provider_id": self.mpesa.id,
                    "source": "file",
                    "data_file": base64.b64encode(statement([row])),
                    "filename": "statement.csv",
                }
            ).action_import()
            self.env.flush_all()

    # === THE BOOKS, AS AN ACCOUNTANT CHECKS THEM === #

    def _receivable_balance(self, partner):
        """The customer's receivable: what they owe (negative: what we owe them)."""
        self.env.flush_all()
        lines = self.env["account.move.line"].search(
            [
                ("partner_id", "=", partner.commercial_partner_id.id),
                ("account_type", "=", "asset_receivable"),
                ("parent_state", "=", "posted"),
                ("company_id", "=", self.company.id),
            ]
        )
        return sum(lines.mapped("balance"))

    def assertBooksOfPayment(self, receipts, partner, receivable_before, paid):
        """The books of M-PESA money (shared ARCHITECTURE.md): every payment of each
        receipt matched, its statement line reconciled with those payments and never
        with the receivable itself, nothing left in Outstanding Receipts, the customer's
        receivable moved by exactly ``paid``, and the books check clean."""
        self.env.invalidate_all()
        for receipt in receipts:
            txs = receipt.application_ids
            payments = txs.payment_id.filtered(lambda pay: pay.state != "canceled")
            self.assertTrue(payments, f"{receipt.name}: no payment")
            line = receipt.statement_line_id
            self.assertTrue(line.is_reconciled, f"{receipt.name}: line not reconciled")
            liquidity = line.journal_id.default_account_id
            counterparts = line.move_id.line_ids.filtered(
                lambda aml, liquidity=liquidity: aml.account_id != liquidity
            )
            self.assertNotIn(
                "asset_receivable",
                counterparts.mapped("account_type"),
                f"{receipt.name}: the bank line paid the receivable beside its payment",
            )
            for payment in payments:
                self.assertEqual(payment.state, "paid", f"{payment.name} not matched")
                outstanding = payment.move_id.line_ids.filtered(
                    lambda aml, p=payment: aml.account_id == p.outstanding_account_id
                )
                self.assertTrue(
                    all(outstanding.mapped("reconciled")),
                    f"{payment.name} left in Outstanding Receipts",
                )
        self.assertAlmostEqual(
            self._receivable_balance(partner) - receivable_before,
            -paid,
            places=2,
            msg="the customer's receivable moved by something else than the money paid",
        )
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def _order(self, *prices, confirm=False):
        """A sales order of the test customer, in the company's currency, one
        untaxed line per price; confirmed if ``confirm``."""
        with self._db_lock():
            order = self.env["sale.order"].create(
                {
                    "partner_id": self.partner.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product_a.id,
                                "price_unit": price,
                                "tax_id": False,
                            }
                        )
                        for price in prices
                    ],
                }
            )
            if confirm:
                order.action_confirm()
            self.env.flush_all()
        return order


class DollarBooksCommon(ReconciliationCommon):
    """A company keeping its books in US dollars, its M-PESA journal in shillings
    (129 to the dollar), like the live test database's."""

    books_currency = "USD"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.currency.rate"].create(
            {
                "name": "2020-01-01",
                "currency_id": cls.currency_kes.id,
                "rate": 129.0,
                "company_id": cls.company.id,
            }
        )
        cls.journal = cls.env["account.journal"].create(
            {
                "name": "M-PESA (KES)",
                "code": "MPKES",
                "type": "bank",
                "currency_id": cls.currency_kes.id,
            }
        )
        cls.mpesa.journal_id = cls.journal

    def _dollar_invoice(self, amount):
        """A posted invoice of ``amount`` in the company's dollars, untaxed."""
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

    def _dollar_order(self, *prices, confirm=False):
        """An order in the company's dollars, one untaxed line per price."""
        order = self._order(*prices, confirm=confirm)
        self.assertEqual(order.currency_id, self.env.ref("base.USD"))
        return order


class StaffCollectionCommon(ReconciliationCommon):
    """A salesperson of a sales team asking customers' phones for payments from
    the backend (Request M-PESA Payment), and the dialog's buttons."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["crm.team"].create({"name": "Counter"})
        cls.salesperson = new_test_user(
            cls.env,
            "counter_clerk",
            name="Carol Counter",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "account.group_account_invoice,mpesa_payment.group_mpesa_user",
            company_id=cls.env.company.id,
        )
        cls.team.member_ids = cls.salesperson
        cls.colleague = new_test_user(
            cls.env,
            "other_clerk",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "account.group_account_invoice,mpesa_payment.group_mpesa_user",
            company_id=cls.env.company.id,
        )

    def _dialog(self, document, user=None, phone=None, amount=None):
        """What 'Request M-PESA Payment' opens, filled in and saved."""
        user = user or self.salesperson
        with self._db_lock():
            action = document.with_user(user).action_mpesa_request_payment()
            form = Form(
                self.env["mpesa.collection"]
                .with_user(user)
                .with_context(**action["context"])
            )
            if phone:
                form.phone = phone
            if amount:
                form.amount = amount
            collection = form.save()
            self.env.flush_all()
        return collection

    def _send(self, collection):
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        with self._db_lock():
            collection.action_send()
            self.env.flush_all()
        return before

    def _follow(self, collection, before):
        """The dialog polling until the customer answered."""
        self._wait_callbacks(before + 1)
        with self._db_lock():
            collection.mpesa_poll()
            self.env.flush_all()
            self.env.invalidate_all()
        return collection.state

    def _call(self, collection, method, *args):
        """A button of the dialog, clicked in the browser (JSON-RPC as the user)."""
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/mpesa.collection/{method}",
            {
                "model": "mpesa.collection",
                "method": method,
                "args": [collection.ids, *args],
                "kwargs": {},
            },
        )
