import base64
from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.common import PHONE, SHORTCODE

from .common import ReconciliationCommon, statement

MONEY_OUT_AWAITED = (
    "reversed on M-PESA, but its money out is not booked (import the statement "
    "that lists the reversal)"
)


@tagged("post_install", "-at_install")
class TestExceptions(ReconciliationCommon):
    """Each kind of exception, and each action finance can take on one."""

    def _exception(self, receipt):
        self.env.invalidate_all()
        return receipt.exception_ids.filtered(lambda e: e.state == "open")

    # === kinds === #

    def test_underpaid_and_overpaid_from_the_payment_flow(self):
        for paid, kind in ((1000, "underpaid"), (1500, "overpaid")):
            self.emulator.set_scenario(PHONE, amount=paid)
            tx = self._push(self._create_mpesa_tx(reference=f"AMT-{paid}"))
            self._wait_callbacks()
            self._wait_callbacks(kind="result")  # Transaction Status confirms it
            self.emulator.reset()
            receipt = self.env["mpesa.receipt"].search(
                [("name", "=", tx.mpesa_receipt_code)]
            )
            exception = self._exception(receipt)
            self.assertEqual(exception.kind, kind)
            self.assertEqual(exception.expected_amount, 1250)
            self.assertEqual(exception.difference, paid - 1250)
            self.assertEqual(receipt.reconcile_state, "exception")

    def test_paid_from_another_phone(self):
        self.emulator.set_scenario(PHONE, paid_phone="254722000111")
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        self.assertEqual(tx.state, "done", "the money is for this order all the same")
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        exception = self._exception(receipt)
        self.assertEqual(exception.kind, "other_phone")
        self.assertIn("254722000111", exception.reason)

    def test_reference_missing_unknown_ambiguous_duplicate(self):
        self.assertEqual(self._exception(self._c2b("", 50)).kind, "no_reference")
        self.assertEqual(
            self._exception(self._c2b("NOSUCHREF", 50)).kind, "unknown_reference"
        )
        self.partner.mpesa_account_ref = "AMB1"
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "order_line": [
                    (0, 0, {"product_id": self.product_a.id, "price_unit": 50})
                ],
            }
        )
        order.name = "AMB-1"
        self.env.flush_all()
        self.assertEqual(self._exception(self._c2b("amb 1", 50)).kind, "ambiguous")
        invoice = self._invoice(300)
        first = self._c2b(invoice.name, 300)
        self._post_process(first)
        again = self._c2b(invoice.name, 300)
        duplicate = self._exception(again)
        self.assertEqual(duplicate.kind, "duplicate")
        self.assertIn("already paid", duplicate.reason)
        self.assertEqual(duplicate.review_document, invoice)
        self.assertEqual(
            (duplicate.expected_amount, duplicate.difference),
            (0, 300),
            "nothing was due on the invoice it names",
        )

    def test_second_payment_before_the_first_is_booked_is_a_duplicate(self):
        """Two phones pay the same invoice by paybill seconds apart, before the
        framework's job books the first (post-processing): the second waits as a
        duplicate for finance, instead of becoming the customer's silent credit."""
        invoice = self._invoice(2500)
        receivable = self._receivable_balance(self.partner)
        first = self._c2b(invoice.name, 2500, style="plain")
        self.assertEqual(first.state, "applied")
        self.assertFalse(first.application_ids.is_post_processed, "not booked yet")
        second = self._c2b(invoice.name, 2500, msisdn="254722000333", style="plain")
        duplicate = self._exception(second)
        self.assertEqual((second.state, duplicate.kind), ("review", "duplicate"))
        self.assertEqual((duplicate.expected_amount, duplicate.difference), (0, 2500))
        self.assertFalse(second.application_ids, "its money paid nothing")
        self._post_process(first)
        self.assertBooksOfPayment(first, self.partner, receivable, 2500)
        self.assertEqual(invoice.payment_state, "paid")

    def test_invoice_in_dollars_takes_shillings_at_the_rate(self):
        """An export invoice of USD 100 (KES 10,000 at the rate) paid KES 5,000 by
        paybill: half of it is paid, not an overpayment of a "KES 100" invoice."""
        usd = self.env.ref("base.USD")
        with self._db_lock():
            usd.active = True
            rates = self.env["res.currency.rate"]
            rates.search([("currency_id", "=", usd.id)]).unlink()
            rates.create({"currency_id": usd.id, "name": "2020-01-01", "rate": 0.01})
            invoice = self.init_invoice(
                "out_invoice",
                partner=self.partner,
                amounts=[100],
                currency=usd,
                taxes=[],
                invoice_date=fields.Date.today(),
                post=True,
            )
            self.env.flush_all()
        receipt = self._c2b(invoice.name, 5000, style="plain")
        self.assertEqual(receipt.state, "applied", receipt.review_reason)
        self._post_process(receipt)
        self.assertEqual(invoice.amount_residual, 50, "USD 50 left")
        self.assertEqual(invoice.payment_state, "partial")

    def test_upgrade_names_the_documents_of_payments_already_in_review(self):
        """Payments that went to review before 18.0.1.3.0 kept no named document,
        so their exceptions expected the whole payment; those older than
        review_cause kept no cause either. The upgrade names the document: an
        overpayment expects what its invoice asks, a duplicate nothing. A payment
        whose account number named nothing stays as it was, though an invoice has
        that number now."""
        invoice, paid = self._invoice(790), self._invoice(300)
        self._post_process(self._c2b(paid.name, 300))
        overpaid = self._c2b(invoice.name, 1290, style="plain")
        duplicate = self._c2b(paid.name, 300, style="plain")
        unknown = self._c2b("INV/2026/07777", 500, style="plain")
        with self._db_lock():
            old = {"review_document": False, "review_due": 0.0}
            overpaid.sudo().write(old)
            (duplicate | unknown).sudo().write({**old, "review_cause": False})
            self.env.flush_all()
        self._named_invoice("INV/2026/07777", self.partner)
        exception = self._exception(overpaid)
        self.assertEqual((exception.expected_amount, exception.difference), (1290, 0))
        self._upgrade_mpesa_payment("18.0.1.3.0", "18.0.1.2.0")
        self.assertEqual(exception.review_document, invoice)
        self.assertEqual((exception.expected_amount, exception.difference), (790, 500))
        self.assertEqual(
            (duplicate.review_document, duplicate.expected_amount), (paid, 0)
        )
        self.assertFalse(unknown.review_document, "it named nothing when it came")
        self.assertEqual(unknown.expected_amount, 500)

    def test_slip_onto_another_customers_invoice(self):
        """Paid from the customer's phone for another customer's invoice, one typo
        from the payer's own invoice of the same amount: a kind of its own, not an
        unknown reference (the reference is known: it is someone else's)."""
        self._named_invoice("INV/2026/00012", self.partner)
        self._named_invoice("INV/2026/00021", self.partner_b)
        exception = self._exception(self._c2b("INV/2026/00021", 1000, style="plain"))
        self.assertEqual(exception.kind, "slip")
        self.assertIn("INV/2026/00012", exception.reason)

    def test_kinds_whatever_the_language_of_who_imports(self):
        """An accountant working in Swahili imports a statement: the recovered
        payments that wait for review say why in Swahili, and their kinds are the
        same as in English (the kind once followed the English text)."""
        with self._db_lock():
            self.env["res.lang"]._activate_lang("sw")
        paid = self._invoice(300)
        self._post_process(self._c2b(paid.name, 300))
        open_invoice = self._invoice(640)
        row = '{code},01-03-2026 10:00:00,,Pay Bill,Completed,"{paid}",,,,,,,{ref}\n'
        rows = [
            row.format(code="SKL0000021", paid="300.00", ref=paid.name),
            row.format(code="SKL0000022", paid="900.00", ref=open_invoice.name),
        ]
        with self._db_lock():
            wizard = (
                self.env["mpesa.statement.import"]
                .with_context(lang="sw")
                .create(
                    {
                        "provider_id": self.mpesa.id,
                        "source": "file",
                        "data_file": base64.b64encode(statement(rows)),
                        "filename": "statement.csv",
                    }
                )
            )
            wizard.action_import()
            self.env.flush_all()
        receipts = self.env["mpesa.receipt"].search(
            [("name", "in", ("SKL0000021", "SKL0000022"))], order="name"
        )
        self.assertEqual(receipts.mapped("state"), ["review", "review"])
        duplicate, overpaid = (self._exception(r) for r in receipts)
        self.assertEqual(duplicate.kind, "duplicate")
        self.assertIn("imeshalipwa", duplicate.reason)
        self.assertEqual(overpaid.kind, "overpaid")
        self.assertIn("zaidi ya kinachodaiwa", overpaid.reason)

    def test_paid_but_document_not_updated(self):
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        self.assertFalse(tx.is_post_processed)
        with self._db_lock():
            tx.last_state_change = fields.Datetime.now() - timedelta(hours=1)
            self.env["payment.transaction"]._cron_mpesa_not_applied()
            self.env.flush_all()
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        self.assertEqual(self._exception(receipt).kind, "not_applied")

    def test_customer_claim_found_by_status_query(self):
        code = self.emulator.add_payment(700, phone=PHONE, first_name="Jane Doe")
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            wizard = self.env["mpesa.receipt.lookup"].create(
                {"code": code, "provider_id": self.mpesa.id}
            )
            wizard.action_lookup()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
        exception = self._exception(receipt)
        self.assertEqual(exception.kind, "claim")
        self.assertEqual(exception.amount, 700)
        self.assertEqual(len(receipt.statement_line_id), 1, "now in the books")

    # === actions === #

    def test_allocate_split_over_two_invoices(self):
        first, second = self._invoice(600), self._invoice(400)
        receipt = self._c2b("", 1000, style="plain")
        exception = self._exception(receipt)
        # The phone suggests the customer; finance decides (issue 11, finding 3).
        self.assertFalse(exception.partner_id)
        self.assertEqual(exception.suggested_partner_id, self.partner, "by phone")
        exception.action_use_suggested_partner()
        wizard = self._allocation_wizard(exception)
        self.assertEqual(wizard.partner_id, self.partner, "chosen by finance")
        self.assertEqual(wizard.line_ids.mapped("invoice_id"), first | second)
        self.assertEqual(wizard.line_ids.mapped("amount"), [600, 400])
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self.assertEqual(
            (first | second).mapped("payment_state"), [first.payment_state] * 2
        )
        self.assertIn(first.payment_state, ("paid", "in_payment"))
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(exception.resolution, "allocated")
        message = exception.message_ids[:1]
        self.assertIn(first.name, message.body)
        self.assertEqual(message.author_id, self.env.user.partner_id)

    def test_reconciler_allocates_the_payment_of_a_customer_without_email(self):
        """Found on a live server (the tests' customers all had an email address):
        a reconciler allocating the payment of a customer known by phone only
        failed. Odoo signs the payment's note on the invoice as the customer and
        refuses a sender without email, which undid the whole allocation."""
        reconciler = self._staff(
            "allocating_reconciler",
            "base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
        )
        self.partner.email = False
        invoice = self._invoice(900)
        before = self._receivable_balance(self.partner)
        receipt = self._c2b("", 900, style="plain")
        exception = self._exception(receipt).with_user(reconciler)
        exception.action_use_suggested_partner()
        wizard = self._allocation_wizard(exception, user=reconciler)
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self.assertEqual(exception.resolution, "allocated")
        self.assertBooksOfPayment(receipt, self.partner, before, 900)
        tx = receipt.application_ids
        notes = invoice.message_ids.filtered(lambda m: tx.reference in (m.body or ""))
        self.assertEqual(notes.author_id, reconciler.partner_id, "signed by staff")

    def test_allocation_proposes_first_the_invoice_the_payment_was_for(self):
        """An underpaid prompt for the newer invoice: the allocation proposes that
        invoice first, not the customer's older one."""
        older, meant = self._invoice(500), self._invoice(1250)
        self.emulator.set_scenario(PHONE, amount=1000)
        with self._db_lock():
            tx = self._create_mpesa_tx(
                reference="MEANT-1", invoice_ids=[Command.set(meant.ids)]
            )
            self.env.flush_all()
        self._push(tx)
        self._wait_callbacks()
        self._wait_callbacks(kind="result")  # Transaction Status confirms it
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        exception = self._exception(receipt)
        self.assertEqual(exception.kind, "underpaid")
        receivable = self._receivable_balance(self.partner)
        wizard = self._allocation_wizard(exception)
        self.assertEqual(
            [(line.invoice_id, line.amount) for line in wizard.line_ids],
            [(meant, 1000), (older, 0)],
        )
        with self._db_lock():
            wizard.action_allocate()
            self.env.flush_all()
        self.assertBooksOfPayment(receipt, self.partner, receivable, 1000)
        self.assertEqual((meant.amount_residual, older.amount_residual), (250, 500))

    def test_allocation_over_the_amount_is_refused(self):
        invoice = self._invoice(5000)
        receipt = self._c2b("", 1000, style="plain")
        wizard = self.env["mpesa.exception.allocate"].create(
            {
                "exception_id": self._exception(receipt).id,
                "line_ids": [(0, 0, {"invoice_id": invoice.id, "amount": 1500})],
            }
        )
        with self.assertRaisesRegex(UserError, "only KES 1,000.00 of this payment"):
            wizard.action_allocate()

    def test_keep_as_credit(self):
        receipt = self._c2b("NOSUCHREF", 250, style="plain")
        exception = self._exception(receipt)
        with self._db_lock(), self.assertRaisesRegex(UserError, "Choose the customer"):
            exception.action_keep_as_credit()  # not on a phone match alone
        with self._db_lock():
            exception.partner_id = exception.suggested_partner_id
            exception.action_keep_as_credit()
            self.env.flush_all()
        self.assertEqual(exception.resolution, "credit")
        payment = receipt.transaction_id.payment_id
        self.assertEqual(payment.partner_id, self.partner)
        self.assertEqual(payment.amount, 250)
        self.assertTrue(receipt.statement_line_id.is_reconciled)

    def test_reconciler_buttons_answer_over_xmlrpc(self):
        """Found on a live server: "This is the customer" (the phone match) and the other buttons
        returned None, which XML-RPC cannot send. The change was committed, yet the
        caller (an integration, a script) got a Fault and could not tell it had
        worked. Each button answers True."""
        self._staff(
            "rpc_reconciler",
            "base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
        )
        before = self._receivable_balance(self.partner)
        receipt = self._c2b("NOSUCHREF", 350, style="plain")
        exception = self._exception(receipt)
        self.env.flush_all()
        uid = self.xmlrpc_common.authenticate(
            self.env.cr.dbname, "rpc_reconciler", "rpc_reconciler", {}
        )

        def click(method):
            return self.xmlrpc_object.execute_kw(
                self.env.cr.dbname,
                uid,
                "rpc_reconciler",
                "mpesa.exception",
                method,
                [exception.ids],
            )

        for method in (
            "action_use_suggested_partner",
            "action_keep_as_credit",
            "action_undo_and_reopen",
            "action_use_suggested_partner",
            "action_keep_as_credit",
        ):
            self.assertIs(click(method), True, method)
            self.env.invalidate_all()
        self.assertEqual(exception.resolution, "credit")
        self.assertBooksOfPayment(receipt, self.partner, before, 350)

    def test_refund_by_reversal(self):
        """Finding 6: the exception closes when M-PESA says the money went back, not
        when the reversal is only requested."""
        receipt = self._c2b("NOSUCHREF", 250)
        exception = self._exception(receipt)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            exception.action_request_reversal()
            self.env.flush_all()
            self.assertEqual(exception.state, "open", "only requested")
            self.assertIn("waiting for its result", exception.message_ids[0].body)
        self._wait_callbacks(before + 1, kind="result")
        self.assertEqual(exception.resolution, "reversed")
        self.assertEqual(receipt.state, "reversed")
        lines = self._assert_reversal_booked(receipt, 250)
        self.assertTrue(
            all(lines.mapped("is_reconciled")), "no customer: cleared as a pair"
        )

    def _assert_reversal_booked(self, receipt, amount):
        """The money that went back left the journal: M-PESA's balance and the
        journal's stay equal, and the books check is clean."""
        money_out = self.env["mpesa.receipt"].search(
            [("kind", "=", "reversal"), ("linked_receipt", "=", receipt.name)]
        )
        self.assertEqual(len(money_out), 1)
        self.assertEqual(money_out.amount, amount)
        lines = receipt.statement_line_id | money_out.statement_line_id
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines.journal_id, self.mpesa.journal_id)
        self.assertEqual(sorted(lines.mapped("amount")), [-amount, amount])
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        return lines

    def test_reversal_of_a_known_customers_payment_leaves_nothing_in_suspense(self):
        receipt = self._c2b("NOSUCHREF", 300)
        exception = self._exception(receipt)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            receipt.sudo().partner_id = self.partner  # finance knows the payer
            receivable = self._receivable_balance(self.partner)
            exception.action_request_reversal()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        lines = self._assert_reversal_booked(receipt, 300)
        self.assertTrue(all(lines.mapped("is_reconciled")), "nothing in suspense")
        self.assertEqual(self._receivable_balance(self.partner), receivable)

    # === reversals M-PESA reports as done, without the reversal's code === #

    def _result_of(self, action):
        """Run ``action`` (a request to M-PESA) and wait for M-PESA's result."""
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            action()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")

    def _assert_money_out_awaited(self, receipt):
        """Reversed, but no money out in the journal: the books check says so and
        the queue tells the accountant what brings it."""
        self.assertEqual(receipt.state, "reversed")
        self.assertIn(
            (SHORTCODE, receipt.name, MONEY_OUT_AWAITED),
            self.mpesa._mpesa_check_books(),
        )
        exception = self._exception(receipt)
        self.assertEqual(exception.kind, "reversal_unbooked")
        self.assertIn("statement", exception.reason)
        return exception

    def test_reversal_m_pesa_had_done_is_booked_from_the_statement(self):
        """Reversed on the organisation's portal: our request gets R000001. The
        invoice reopens, the money out waits for the statement's row, which books
        it and meets the money in on the customer's receivable."""
        invoice = self._invoice(300)
        receivable = self._receivable_balance(self.partner)
        receipt = self._c2b(invoice.name, 300)
        self._post_process(receipt)
        reversal = self.emulator.reverse_payment(receipt.name)
        self._result_of(receipt.action_request_reversal)
        self.assertEqual(receipt.statement_line_id.amount, 300)
        self.assertEqual(invoice.payment_state, "not_paid")
        exception = self._assert_money_out_awaited(receipt)
        self._import_reversal_row(reversal, receipt)
        lines = self._assert_reversal_booked(receipt, 300)
        self.assertTrue(all(lines.mapped("is_reconciled")), "nothing in suspense")
        self.assertEqual(self._receivable_balance(self.partner), receivable)
        self.assertEqual(exception.resolution, "reversed")

    def test_reversal_row_imported_before_m_pesa_says_the_payment_was_reversed(self):
        """The statement that lists the portal's reversal is imported first: its
        row, money out linked to a payment not reversed yet, is a withdrawal. Then
        our request gets R000001: that row is the reversal's money out, met with the
        money in; nothing waits in the queue."""
        invoice = self._invoice(300)
        receivable = self._receivable_balance(self.partner)
        receipt = self._c2b(invoice.name, 300)
        self._post_process(receipt)
        reversal = self.emulator.reverse_payment(receipt.name)
        self._import_reversal_row(reversal, receipt)
        self._result_of(receipt.action_request_reversal)
        self.assertEqual(receipt.state, "reversed")
        lines = self._assert_reversal_booked(receipt, 300)
        self.assertTrue(all(lines.mapped("is_reconciled")), "nothing in suspense")
        self.assertEqual(self._receivable_balance(self.partner), receivable)
        self.assertFalse(receipt.exception_ids.filtered(lambda e: e.state == "open"))

    def test_reversal_a_status_query_finds_is_booked_from_the_statement(self):
        """A status query says "Reversed" for a payment of nobody we know: booked
        from the statement all the same, the pair cleared against each other."""
        receipt = self._c2b("NOSUCHREF", 250)
        reversal = self.emulator.reverse_payment(receipt.name)
        self._result_of(receipt.action_query_status)
        exception = self._assert_money_out_awaited(receipt)
        self._import_reversal_row(reversal, receipt)
        lines = self._assert_reversal_booked(receipt, 250)
        self.assertTrue(all(lines.mapped("is_reconciled")), "nothing in suspense")
        self.assertEqual(exception.resolution, "reversed")

    def test_closing_without_moving_money_needs_the_money_applied(self):
        """Duplicate or dismissed, with the money still unapplied, would leave it
        stranded behind a closed exception."""
        exception = self._exception(self._c2b("NOSUCHREF", 20))
        with self.assertRaisesRegex(UserError, "KES 20.00 of receipt .* not applied"):
            exception.action_mark_duplicate()
        with self.assertRaisesRegex(UserError, "Say why"):
            exception.action_dismiss()
        dismiss = self.env["mpesa.exception.dismiss"].create(
            {"exception_id": exception.id, "reason": "Test payment by our cashier"}
        )
        with self.assertRaisesRegex(UserError, "not applied"):
            dismiss.action_dismiss()
        self.assertEqual(exception.state, "open")

    def test_dismiss_and_frozen_once_resolved(self):
        self.emulator.set_scenario(PHONE, paid_phone="254722000111")
        tx = self._push(self._create_mpesa_tx())
        self._wait_callbacks()
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        exception = self._exception(receipt)  # paid from another phone: applied
        exception.action_mark_duplicate()
        self.assertEqual(exception.resolution, "duplicate")
        self.assertEqual(exception.resolved_by, self.env.user)
        with self.assertRaisesRegex(UserError, "cannot be changed"):
            exception.partner_id = self.partner
        with self.assertRaisesRegex(UserError, "already resolved"):
            exception.action_keep_as_credit()
        exception.action_reopen()
        self.assertEqual(exception.state, "open")
        self.assertIn("Reopened", exception.message_ids[0].body)
        self.env["mpesa.exception.dismiss"].create(
            {
                "exception_id": exception.id,
                "reason": "Test payment by our cashier",
            }
        ).action_dismiss()
        self.assertEqual(exception.resolution, "dismissed")
        self.assertIn("Test payment by our cashier", exception.resolution_note)
