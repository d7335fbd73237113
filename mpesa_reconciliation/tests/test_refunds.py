"""Refunds of M-PESA payments (issue 12, point 4), over the real emulator: Odoo's
Refund button (payment.refund.wizard), M-PESA's result on our signed result URL,
and the books an accountant checks afterwards."""

import time

from daraja_emulator import DEFAULT_INITIATOR_PASSWORD

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.common import PHONE

from .common import ReconciliationCommon

B2C_SHORTCODE = "600000"


@tagged("post_install", "-at_install")
class TestRefunds(ReconciliationCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.b2c_code = cls.emulator.add_shortcode(B2C_SHORTCODE, balance=10000)
        cls.b2c_journal = cls.env["account.journal"].create(
            {
                "name": "M-PESA B2C",
                "type": "bank",
                "code": "MB2C",
                "company_id": cls.company.id,
            }
        )
        cls.mpesa.write(
            {
                "mpesa_b2c_shortcode": B2C_SHORTCODE,
                "mpesa_b2c_initiator_name": "testapi",
                # encrypted with the emulator's certificate, as the admin would
                "mpesa_b2c_initiator_password": DEFAULT_INITIATOR_PASSWORD,
                "mpesa_b2c_journal_id": cls.b2c_journal.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.addCleanup(setattr, self.emulator, "b2c_silent", False)

    # === helpers: what the customer and the accountant do === #

    def _stk_pay(self, invoice, phone=PHONE):
        with self._db_lock():
            tx = self._create_mpesa_tx(
                amount=invoice.amount_residual,
                reference=f"{invoice.name}-1",
                invoice_ids=[Command.set(invoice.ids)],
            )
            self.env.flush_all()
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        self._push(tx, phone=phone)
        self._wait_callbacks(before + 1)
        self._wait_results_settled()
        with self._db_lock():
            tx._post_process()
            self.env.flush_all()
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        return tx

    def _credit_note(self, invoice, amount):
        with self._db_lock():
            note = self.init_invoice(
                "out_refund",
                partner=invoice.partner_id,
                amounts=[amount],
                currency=self.currency_kes,
                taxes=[],
                invoice_date=fields.Date.today(),
            )
            note.reversed_entry_id = invoice
            note.action_post()
            self.env.flush_all()
        return note

    def _refund(self, tx, amount, wait=True):
        """The accountant clicks Refund on the payment and confirms the wizard."""
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            wizard = (
                self.env["payment.refund.wizard"]
                .with_context(
                    active_model="account.payment", active_id=tx.payment_id.id
                )
                .create({"amount_to_refund": amount})
            )
            summary = (wizard.mpesa_refund_method, wizard.mpesa_refund_phone)
            credit_note = wizard.mpesa_credit_note_id
            wizard.action_refund()
            self.env.flush_all()
        if wait:
            self._wait_callbacks(before + 1, kind="result")
        refund = tx.child_transaction_ids.filtered(lambda t: t.operation == "refund")
        return refund, summary, credit_note

    def _wait_results_settled(self, timeout=15):
        """Every initiator request sent so far (e.g. the status query verifying a
        payment) has had its result delivered: none lands during what follows."""
        deadline = time.monotonic() + timeout
        while True:
            asked = [
                path
                for _method, path, _body in self.emulator.request_log
                if path.startswith("/mpesa/transactionstatus/")
            ]
            done = [d for d in self.emulator.deliveries if d.kind == "result"]
            if len(done) >= len(asked):
                self._apply_inbox()
                return
            self.assertLess(time.monotonic(), deadline, "a result never came")
            time.sleep(0.05)

    def _refund_receipt(self, refund):
        return self.env["mpesa.receipt"].search(
            [("transaction_id", "=", refund.id), ("kind", "=", "refund")]
        )

    def assertRefundBooked(self, refund, credit_note, journal):
        """Paid out of ``journal`` once, the credit note paid, the bank line
        reconciled with the outgoing payment, the books check clean."""
        self.env.invalidate_all()
        self.assertEqual(refund.state, "done")
        payment = refund.payment_id
        self.assertEqual(payment.payment_type, "outbound")
        self.assertEqual(payment.amount, -refund.amount)
        self.assertEqual(payment.journal_id, journal)
        self.assertEqual(payment.state, "paid", "the payment meets its bank line")
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        receipt = self._refund_receipt(refund)
        self.assertEqual(receipt.name, refund.mpesa_receipt_code)
        line = receipt.statement_line_id
        self.assertEqual(line.journal_id, journal)
        self.assertEqual(line.amount, refund.amount, "money out of the M-PESA account")
        self.assertTrue(line.is_reconciled)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        told = credit_note.message_ids.filtered(
            lambda m: refund.partner_id in m.partner_ids
        )
        self.assertIn(refund.mpesa_receipt_code, told[:1].body, "the customer is told")

    def assertNothingBooked(self, refund, credit_note, why):
        self.env.invalidate_all()
        self.assertEqual(refund.state, "error")
        self.assertIn(why, refund.state_message)
        self.assertFalse(refund.payment_id)
        self.assertFalse(self._refund_receipt(refund))
        self.assertEqual(credit_note.payment_state, "not_paid")
        exception = self.env["mpesa.exception"].search(
            [("refund_transaction_id", "=", refund.id)]
        )
        self.assertEqual((exception.kind, exception.state), ("refund_failed", "open"))
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        self.assertEqual(self.b2c_code.balance, 10000, "no money left M-PESA")

    # === tests === #

    def test_full_refund_by_reversal(self):
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, 1000)
        refund, (method, phone), proposed = self._refund(tx, 1000)
        self.assertEqual((method, phone), ("reversal", False))
        self.assertEqual(proposed, credit_note, "the invoice's open credit note")
        self.assertRefundBooked(refund, credit_note, self.mpesa.journal_id)
        source = tx.mpesa_source_receipt_id
        self.assertEqual(source.state, "applied", "the invoice stays paid")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_partial_refund_by_b2c(self):
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, 300)
        refund, (method, phone), _note = self._refund(tx, 300)
        self.assertEqual((method, phone), ("b2c", PHONE), "the confirmation shows")
        self.assertRefundBooked(refund, credit_note, self.b2c_journal)
        self.assertEqual(self.b2c_code.balance, 9700)
        request = refund.mpesa_refund_request_ids
        (sent,) = [
            payment
            for payment in self.emulator.b2c_payments.values()
            if payment["originator"] == request.originator_conversation_id
        ]
        self.assertEqual((sent["phone"], sent["amount"]), (PHONE, 300))
        self.assertEqual(tx.payment_id.amount_available_for_refund, 700)
        # M-PESA repeats its result: nothing more is booked
        callback = request.env["mpesa.callback"].search(
            [("api_request_id", "=", request.id), ("kind", "=", "result")]
        )
        self.assertEqual(request.state, "done")
        self.assertEqual(request._apply_result(callback._payload()), "duplicate")

    def test_refused_b2c_books_nothing(self):
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice, phone="254700002040")  # not a registered customer
        credit_note = self._credit_note(invoice, 300)
        refund, _summary, _note = self._refund(tx, 300)
        self.assertNothingBooked(refund, credit_note, "Credit Party customer type")

    def test_refund_never_answered_books_nothing(self):
        self.emulator.b2c_silent = True
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, 300)
        refund, _summary, _note = self._refund(tx, 300, wait=False)
        with self.assertRaisesRegex(UserError, "waiting for M-PESA's answer"):
            self._refund(tx, 100, wait=False)  # no second refund meanwhile
        with self._db_lock():
            self.assertEqual(refund.state, "pending")
            self.env["payment.transaction"]._cron_mpesa_refund_overdue()
            self.assertEqual(refund.state, "pending", "not before the timeout")
            self.mpesa.mpesa_refund_timeout = 0
            self.env["payment.transaction"]._cron_mpesa_refund_overdue()
            self.env.flush_all()
        self.assertNothingBooked(refund, credit_note, "has not answered")

    def _late_results(self):
        """M-PESA's queue times out on each request, and its result still follows."""
        self.emulator.queue_timeouts = self.emulator.result_after_timeout = True
        self.addCleanup(setattr, self.emulator, "queue_timeouts", False)
        self.addCleanup(setattr, self.emulator, "result_after_timeout", False)

    def test_queue_timeout_then_late_success_books_it_then(self):
        """Not paid as far as we know after the queue timeout (an exception); when
        M-PESA's result still comes, the refund is booked and the exception closes."""
        self._late_results()
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, 300)
        refund, _summary, _note = self._refund(tx, 300)  # waits for the result
        timeout = self.env["mpesa.callback"].search(
            [("api_request_id", "=", refund.mpesa_refund_request_ids.id)]
        )
        self.assertEqual(sorted(timeout.mapped("kind")), ["result", "timeout"])
        exception = self.env["mpesa.exception"].search(
            [("refund_transaction_id", "=", refund.id)]
        )
        self.assertEqual(exception.kind, "refund_failed", "opened at the timeout")
        self.assertEqual(exception.resolution, "reversed", "closed by the result")
        self.assertRefundBooked(refund, credit_note, self.b2c_journal)

    def test_reversal_row_imported_before_the_late_result_is_the_refunds(self):
        """A refund by reversal times out in M-PESA's queue, its result comes later;
        meanwhile the paybill's statement listing the reversal is imported (its row
        a withdrawal). The result takes that row as the refund's money out: booked
        once, met with the refund's payment, the timeout's exception closed."""
        self._late_results()
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, 1000)
        receivable = self._receivable_balance(self.partner)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        refund, _summary, _note = self._refund(tx, 1000, wait=False)
        # Our result URL has stored both answers; the statement is imported first.
        result = self.emulator.wait_for_deliveries(before + 1, kind="result")[-1]
        code = result.payload["Result"]["TransactionID"]
        self._import_reversal_row(code, tx.mpesa_source_receipt_id)
        self._apply_inbox()
        self.assertEqual(refund.mpesa_receipt_code, code)
        self.assertRefundBooked(refund, credit_note, self.mpesa.journal_id)
        money_out = self.env["mpesa.receipt"].search([("name", "=", code)])
        self.assertEqual(money_out.linked_receipt, tx.mpesa_source_receipt_id.name)
        self.assertEqual(money_out.statement_line_id.partner_id, self.partner)
        lines = self.env["account.bank.statement.line"].search(
            [("journal_id", "=", self.mpesa.journal_id.id), ("amount", "<", 0)]
        )
        self.assertEqual(lines, money_out.statement_line_id, "money out booked once")
        self.assertEqual(
            self._receivable_balance(self.partner) - receivable,
            1000,
            "the credit note paid back: the customer is owed nothing",
        )
        exception = self.env["mpesa.exception"].search(
            [("refund_transaction_id", "=", refund.id)]
        )
        self.assertEqual(exception.resolution, "reversed", "closed by the result")

    def _refund_answer_lost(self, amount):
        """The accountant refunds; M-PESA takes the request (and sends its result)
        but its answer to our call never reaches us."""
        self.emulator.initiator_response_lost = True
        self.addCleanup(setattr, self.emulator, "initiator_response_lost", False)
        invoice = self._invoice(1000)
        tx = self._stk_pay(invoice)
        credit_note = self._credit_note(invoice, amount)
        refund, _summary, _note = self._refund(tx, amount)  # waits for the result
        (request,) = refund.mpesa_refund_request_ids
        callbacks = self.env["mpesa.callback"].search(
            [("api_request_id", "=", request.id)]
        )
        self.assertEqual(
            callbacks.mapped("state"), ["processed"], "M-PESA's result is stored"
        )
        self.assertEqual(request.state, "done", "M-PESA's result is the answer")
        # M-PESA repeats its result: nothing more is booked
        self.assertEqual(request._apply_result(callbacks._payload()), "duplicate")
        return tx, refund, credit_note

    def test_reversal_whose_answer_was_lost_is_booked_by_its_result(self):
        tx, refund, credit_note = self._refund_answer_lost(1000)
        self.assertRefundBooked(refund, credit_note, self.mpesa.journal_id)
        self.assertEqual(tx.mpesa_source_receipt_id.state, "applied")
        self.assertEqual(len(self._refund_receipt(refund)), 1, "booked once")

    def test_b2c_refund_whose_answer_was_lost_is_booked_by_its_result(self):
        _tx, refund, credit_note = self._refund_answer_lost(300)
        self.assertRefundBooked(refund, credit_note, self.b2c_journal)
        self.assertEqual(self.b2c_code.balance, 9700, "sent once")
        self.assertEqual(len(self._refund_receipt(refund)), 1, "booked once")

    def test_overpayment_sent_back_from_the_exception_queue(self):
        invoice = self._invoice(1250)
        self.emulator.set_scenario(PHONE, amount=1500)
        with self._db_lock():
            tx = self._create_mpesa_tx(
                reference="OVER-1", invoice_ids=[Command.set(invoice.ids)]
            )
            self.env.flush_all()
        self._push(tx)
        self._wait_callbacks()
        self.emulator.set_scenario(PHONE)  # the customer pays as asked again
        self._wait_results_settled()
        with self._db_lock():
            receipt = self.env["mpesa.receipt"].search(
                [("name", "=", tx.mpesa_receipt_code)]
            )
            exception = receipt.exception_ids
            self.assertEqual(exception.kind, "overpaid")
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            action = exception.action_return_overpayment()
            wizard = self.env[action["res_model"]].with_context(**action["context"])
            wizard = wizard.create({})
            self.assertEqual((wizard.amount_due, wizard.amount), (1250, 250))
            self.assertEqual(wizard.phone, PHONE)
            wizard.action_confirm()
            self.env.flush_all()
            self.assertEqual(exception.state, "open", "until M-PESA answers")
        self._wait_callbacks(before + 1, kind="result")
        self.env.invalidate_all()
        refund = exception.refund_transaction_id
        self.assertEqual(refund.state, "done")
        self.assertEqual(exception.resolution, "reversed")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.b2c_code.balance, 9750)
        self.assertEqual(self._refund_receipt(refund).statement_line_id.amount, -250)
        self.assertTrue(self._refund_receipt(refund).statement_line_id.is_reconciled)
        self.assertEqual(
            self._receivable_balance(self.partner),
            0.0,
            "invoice paid, credit sent back: the customer owes nothing, is owed nothing",
        )
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_paybill_overpayment_pays_its_invoice_and_sends_the_rest_back(self):
        """A paybill payment of 1,290 quoting an invoice with 790 due: the queue
        expects 790, and Send Back by B2C pays the invoice its 790 before the 500
        left goes back, as for an overpaid payment request."""
        invoice = self._invoice(790)
        receipt = self._c2b(invoice.name, 1290, style="plain")
        with self._db_lock():
            exception = receipt.exception_ids
            self.assertEqual(exception.kind, "overpaid")
            self.assertEqual(exception.review_document, invoice, "shown on the form")
            self.assertEqual(
                (exception.expected_amount, exception.difference), (790, 500)
            )
            action = exception.action_return_overpayment()
            wizard = self.env[action["res_model"]].with_context(**action["context"])
            wizard = wizard.create({})
            self.assertEqual(
                (wizard.document, wizard.amount_due, wizard.amount, wizard.phone),
                (invoice.display_name, 790, 500, PHONE),
            )
            before = len([d for d in self.emulator.deliveries if d.kind == "result"])
            wizard.action_confirm()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        self.env.invalidate_all()
        refund = exception.refund_transaction_id
        self.assertEqual((refund.state, refund.amount), ("done", -500))
        self.assertEqual(exception.resolution, "reversed")
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(self.b2c_code.balance, 9500, "only what was not due went back")
        line = self._refund_receipt(refund).statement_line_id
        self.assertEqual((line.amount, line.is_reconciled), (-500, True))
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertEqual(
            self._receivable_balance(self.partner),
            0.0,
            "invoice paid, the rest sent back: the customer owes nothing, is owed nothing",
        )
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_masked_paybill_overpayment_cannot_go_back_by_b2c(self):
        """M-PESA masked the payer's number: the confirmation says the money cannot
        go back by B2C (no phone, no Send button), and confirming anyway moves
        nothing."""
        invoice = self._invoice(790)
        receipt = self._c2b(invoice.name, 1290)  # masked, as M-PESA sends it today
        with self._db_lock():
            exception = receipt.exception_ids
            action = exception.action_return_overpayment()
            wizard = self.env[action["res_model"]].with_context(**action["context"])
            wizard = wizard.create({})
            self.assertEqual((wizard.amount_due, wizard.amount), (790, 500))
            self.assertFalse(wizard.phone, "the form warns and offers no Send button")
            # assertRaises, in a savepoint (unlike assertRaisesRegex): what the
            # refused request wrote is rolled back, as it would be for the user
            with self.assertRaises(UserError) as refused:
                wizard.action_confirm()
            self.assertIn("masked", str(refused.exception))
            self.env.invalidate_all()
            self.assertEqual(receipt._mpesa_left(), 1290, "nothing applied")
            self.assertEqual(invoice.payment_state, "not_paid")
            self.assertEqual(exception.state, "open")
            self.assertFalse(exception.refund_transaction_id)
        self.assertEqual(self.b2c_code.balance, 10000, "no money left M-PESA")

    def test_part_of_a_masked_paybill_payment_is_refused_before_m_pesa(self):
        """The Refund button on a paybill payment whose number M-PESA masked: the
        wizard says only a reversal is possible, and refunding part of it is refused
        with that reason, without sending M-PESA a masked number to pay."""
        invoice = self._invoice(1000)
        receipt = self._c2b(invoice.name, 1000)
        self._post_process(receipt)
        tx = receipt.application_ids
        self._credit_note(invoice, 300)
        asked_before = len(self.emulator.request_log)
        with self._db_lock():
            wizard = (
                self.env["payment.refund.wizard"]
                .with_context(
                    active_model="account.payment", active_id=tx.payment_id.id
                )
                .create({"amount_to_refund": 300})
            )
            self.assertEqual(
                (wizard.mpesa_refund_method, wizard.mpesa_refund_phone), ("b2c", False)
            )
            self.assertIn("masked", wizard.mpesa_refund_summary)
            with self.assertRaises(UserError) as refused:
                wizard.action_refund()
            self.assertIn("masked", str(refused.exception))
        sent = [path for _m, path, _b in self.emulator.request_log[asked_before:]]
        self.assertFalse([p for p in sent if "b2c" in p], "nothing asked of M-PESA")
        self.assertEqual(self.b2c_code.balance, 10000)
