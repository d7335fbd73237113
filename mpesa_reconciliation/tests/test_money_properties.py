"""Random sequences of what finance does with M-PESA money, on a few receipts; after
every step the money path's invariants hold: no receipt applied beyond what was paid,
its live payments are exactly what it applied, the journal holds the ledger, and the
books check is clean."""

import base64
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.common import MpesaCommon

from .common import statement

PROPERTIES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same sequences every run: CI stays reproducible
)
ACTIONS = ("import", "apply", "allocate", "split", "credit", "reopen", "reverse")
steps = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(min_value=0, max_value=2)),
    min_size=1,
    max_size=7,
)


@tagged("post_install", "-at_install")
class TestMoneyProperties(MpesaCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.invoices = [
            cls.init_invoice(
                "out_invoice",
                partner=cls.partner,
                amounts=[amount],
                currency=cls.currency_kes,
                taxes=[],
                post=True,
            )
            for amount in (500, 300, 200, 400)
        ]
        # Paid in full by number, paid for an unknown account, paid over the due.
        cls.rows = [
            ("PROP000001", 500, cls.invoices[0].name),
            ("PROP000002", 350, "NOSUCHREF"),
            ("PROP000003", 450, cls.invoices[1].name.lower()),
        ]

    def _statement(self):
        lines = [
            f"{code},01-03-2026 10:0{i}:00,01-03-2026 10:0{i}:00,Pay Bill,Completed,"
            f'"{amount:.2f}",,,TRUE,Pay Bill Online,2547****149 - JOHN,,{ref}\n'
            for i, (code, amount, ref) in enumerate(self.rows)
        ]
        self.env["mpesa.statement.import"].create(
            {
                "provider_id": self.mpesa.id,
                "source": "file",
                "data_file": base64.b64encode(statement(lines)),
                "filename": "statement.csv",
            }
        ).action_import()

    def _receipt(self, index):
        return self.env["mpesa.receipt"].search([("name", "=", self.rows[index][0])])

    def _exception(self, receipt):
        return receipt.exception_ids.filtered(lambda e: e.state == "open")[:1]

    def _allocate(self, exception, split):
        wizard = (
            self.env["mpesa.exception.allocate"]
            .with_context(default_exception_id=exception.id)
            .create({"partner_id": self.partner.id})
        )
        if split:
            left = exception.receipt_id._mpesa_left()
            wizard.line_ids = [Command.clear()] + [
                Command.create({"invoice_id": invoice.id, "amount": left / 2})
                for invoice in self.invoices[2:]
            ]
        wizard.action_allocate()

    def _do(self, action, receipt):
        exception = self._exception(receipt)
        resolved = receipt.exception_ids.filtered(lambda e: e.state != "open")[:1]
        if action == "import":
            self._statement()
        elif action == "apply":
            receipt._apply_by_reference()
        elif action in ("allocate", "split") and exception:
            self._allocate(exception, split=action == "split")
        elif action == "credit" and exception:
            exception.action_keep_as_credit()
        elif action == "reopen" and resolved:
            with contextlib.suppress(UserError):  # refused while money is applied
                resolved.action_reopen()
            resolved.action_undo_and_reopen()
        elif action == "reverse" and receipt.state != "reversed":
            # what M-PESA's reversal result applies: its money out is booked too
            receipt._mark_reversed()
            receipt._mpesa_book_reversal(f"RV{receipt.name[2:]}", 0.0, receipt.paid_at)

    def _assert_invariants(self, history):
        receipts = self.env["mpesa.receipt"].search(
            [("provider_id", "=", self.mpesa.id)]
        )
        # what the post-processing job does a moment later
        receipts.application_ids.filtered(
            lambda tx: not tx.is_post_processed
        )._post_process()
        self.env.flush_all()
        self.env.invalidate_all()
        for receipt in receipts:
            live = receipt.application_ids.payment_id.filtered(
                lambda pay: pay.state != "canceled"
            )
            self.assertLessEqual(
                receipt.applied_amount, receipt.amount + 0.005, history
            )
            self.assertAlmostEqual(
                sum(live.mapped("amount")), receipt.applied_amount, 2, history
            )
            if receipt.state == "reversed":
                self.assertFalse(live, history)
        fed = receipts.filtered("statement_line_id")
        self.assertAlmostEqual(
            self.mpesa.journal_id._mpesa_journal_balance(),
            sum(r.amount if r.kind == "payment" else -r.amount for r in fed),
            2,
            history,
        )
        self.assertEqual(self.mpesa._mpesa_check_books(), [], history)

    @PROPERTIES
    @given(steps)
    def test_finance_actions_keep_the_money_whole(self, sequence):
        self.env.cr.execute("SAVEPOINT money_properties")
        try:
            self._statement()
            self._assert_invariants(["import"])
            history = ["import"]
            for action, index in sequence:
                history.append(f"{action} {self.rows[index][0]}")
                # a refusal with a message is a fine answer
                with contextlib.suppress(UserError), self.env.cr.savepoint():
                    self._do(action, self._receipt(index))
                self._assert_invariants(history)
        finally:
            self.env.cr.execute("ROLLBACK TO SAVEPOINT money_properties")
            self.env.invalidate_all()
