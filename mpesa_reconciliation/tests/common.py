import base64

from odoo import fields
from odoo.modules.migration import load_script
from odoo.modules.module import get_module_path

from odoo.addons.mpesa_payment.kenya_time import to_kenya
from odoo.addons.mpesa_payment.tests.common import SHORTCODE, MpesaHttpCommon

__all__ = [
    "HEADER",
    "PREAMBLE",
    "SHORTCODE",
    "DollarBooksCommon",
    "ReconciliationCommon",
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
