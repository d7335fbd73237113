"""One path applies a receipt's money; the exception queue cannot book it twice,
strand it or leave a reversed payment standing (findings 2, 3, 4 and 6 of the
money-integrity issue), each driven through the wizard or button finance uses."""

import base64
import json
import time

import psycopg2

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mpesa_payment.tests.common import PHONE, stk_payload

from .common import ReconciliationCommon, statement


@tagged("post_install", "-at_install")
class TestMoneyPath(ReconciliationCommon):
    def _open_exception(self, receipt):
        self.env.invalidate_all()
        return receipt.exception_ids.filtered(lambda e: e.state == "open")

    def _allocate(self, exception, lines=None):
        """Allocate to Invoices: the wizard's proposal, or ``lines`` (invoice, amount)."""
        with self._db_lock():
            wizard = self._allocation_wizard(exception)
            if lines is not None:
                wizard.line_ids = [Command.clear()] + [
                    Command.create({"invoice_id": inv.id, "amount": amount})
                    for inv, amount in lines
                ]
            wizard.action_allocate()
            self.env.flush_all()

    def _live_payments(self, receipt):
        return receipt.application_ids.payment_id.filtered(
            lambda pay: pay.state != "canceled"
        )

    def _push_for(self, invoice):
        """The customer asks for a prompt for the whole invoice (portal)."""
        with self._db_lock():
            tx = self._create_mpesa_tx(
                amount=invoice.amount_residual,
                reference=f"{invoice.name}-STK",
                invoice_ids=[Command.set(invoice.ids)],
            )
            self.env.flush_all()
        return self._push(tx)

    def _stk_for_invoice(self, invoice, paid):
        """The customer pays ``paid`` for ``invoice`` by STK push."""
        self.emulator.set_scenario(PHONE, amount=paid)
        # Read before the push: once it is out, the server may be writing.
        asked = invoice.amount_residual
        tx = self._push_for(invoice)
        self._wait_callbacks()
        if paid != asked:
            # Another amount than asked: booked once Transaction Status confirms it.
            self._wait_callbacks(kind="result")
        return tx, self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )

    # === finding 2: allocate, reopen, allocate === #

    def test_reopening_an_allocation_is_refused_until_it_is_undone(self):
        invoice = self._invoice(1000)
        before = self._receivable_balance(invoice.partner_id)
        receipt = self._c2b("", 1000, style="plain")
        exception = self._open_exception(receipt)
        self._allocate(exception, [(invoice, 1000)])
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        with self.assertRaisesRegex(UserError, "undo it first"):
            exception.action_reopen()
        self.assertEqual(exception.state, "resolved")

        with self._db_lock():
            exception.action_undo_and_reopen()
            self.env.flush_all()
        self.assertEqual(exception.state, "open")
        self.assertEqual(invoice.payment_state, "not_paid", "the payment was cancelled")
        self.assertEqual(receipt.applied_amount, 0)
        self.assertFalse(self._live_payments(receipt))

        self._allocate(exception, [(invoice, 1000)])
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(len(self._live_payments(receipt)), 1)
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_a_suggestion_accepted_after_allocation_pays_nothing_twice(self):
        invoice, other = self._invoice(1000), self._invoice(1000)
        receipt = self._c2b("", 1000, style="plain")
        line = receipt.statement_line_id
        with self._db_lock():
            line._mpesa_refresh_suggestions(auto=False)
            suggestion = line.mpesa_suggestion_ids.filtered(
                lambda s: s.res_id == other.id
            )
            self.env.flush_all()
        self._allocate(self._open_exception(receipt), [(invoice, 1000)])
        with self._db_lock():
            suggestion._accept()
            self.env.flush_all()
        self.assertEqual(other.payment_state, "not_paid")
        self.assertEqual(len(self._live_payments(receipt)), 1)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_a_waiting_line_matched_by_hand_in_oca_is_refused(self):
        """The accountant matches a waiting payment's bank line with the invoice's
        receivable in OCA's screen: refused, since the queue would then credit the
        customer a second time. Allocated from its exception, it is paid once."""
        invoice = self._invoice(420)
        before = self._receivable_balance(self.partner)
        receipt = self._c2b("", 420, style="plain")
        line = receipt.statement_line_id
        receivable = invoice.line_ids.filtered(
            lambda aml: aml.account_type == "asset_receivable"
        )
        with self._db_lock():
            line._add_account_move_line(receivable)
            with self.assertRaises(UserError) as refusal:
                line.reconcile_bank_line()
        self.assertIn("KES 420.00 of M-PESA receipt", str(refusal.exception))
        self.assertIn("is not applied yet", str(refusal.exception))
        self.assertFalse(line.is_reconciled)
        self.assertEqual(invoice.payment_state, "not_paid")
        self._allocate(self._open_exception(receipt), [(invoice, 420)])
        self.assertBooksOfPayment(receipt, self.partner, before, 420)

    def test_keep_as_credit_of_an_allocated_receipt_is_refused(self):
        invoice = self._invoice(600)
        receipt = self._c2b("", 600, style="plain")
        exception = self._open_exception(receipt)
        self._allocate(exception, [(invoice, 600)])
        with self._db_lock():
            exception.action_undo_and_reopen()
            exception.action_keep_as_credit()
            with self.assertRaisesRegex(UserError, "already resolved"):
                exception.action_keep_as_credit()
            self.env.flush_all()
        self.assertEqual(receipt.applied_amount, 600)
        self.assertEqual(len(self._live_payments(receipt)), 1)
        with self.assertRaisesRegex(UserError, "left to apply"):
            receipt._mpesa_apply(self.partner)

    def test_the_database_refuses_more_than_the_receipt_holds(self):
        receipt = self._c2b("NOSUCHREF", 300)
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(psycopg2.errors.CheckViolation),
            self.env.cr.savepoint(),
        ):
            self.env.cr.execute(
                "UPDATE mpesa_receipt SET applied_amount = 301 WHERE id = %s",
                [receipt.id],
            )

    # === finding 3: reversing a split payment === #

    def test_reversing_a_split_receipt_reopens_every_invoice(self):
        first, second = self._invoice(600), self._invoice(400)
        receipt = self._c2b("", 1000, style="plain")
        self._allocate(self._open_exception(receipt), [(first, 600), (second, 400)])
        self.assertEqual(len(self._live_payments(receipt)), 2)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            receipt.action_request_reversal()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        self.assertEqual(receipt.state, "reversed")
        self.assertEqual((first | second).mapped("payment_state"), ["not_paid"] * 2)
        self.assertFalse(self._live_payments(receipt))
        self.assertEqual(receipt._mpesa_left(), 0, "reversed money pays nothing more")

    # === finding 4: under- and overpaid prompts === #

    def test_underpaid_prompt_becomes_a_partial_payment(self):
        invoice = self._invoice(1250)
        before = self._receivable_balance(invoice.partner_id)
        tx, receipt = self._stk_for_invoice(invoice, paid=1000)
        exception = self._open_exception(receipt)
        self.assertEqual(exception.kind, "underpaid")
        self._allocate(exception)  # the proposal: 1,000 to the invoice
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(invoice.amount_residual, 250)
        self.assertEqual(tx.state, "cancel", "the prompt ends; its money paid instead")
        self.assertIn("Allocated: ", exception.resolution_note)
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1000)

    def test_overpaid_prompt_pays_the_invoice_and_keeps_the_rest_as_credit(self):
        invoice = self._invoice(1250)
        before = self._receivable_balance(invoice.partner_id)
        _tx, receipt = self._stk_for_invoice(invoice, paid=1500)
        exception = self._open_exception(receipt)
        self.assertEqual(exception.kind, "overpaid")
        self._allocate(exception)  # 1,250 to the invoice, 250 as credit
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(
            sorted(self._live_payments(receipt).mapped("amount")), [250, 1250]
        )
        self.assertIn("rest kept as credit", exception.resolution_note)
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1500)

    def test_keep_an_underpaid_prompt_as_credit(self):
        invoice = self._invoice(1250)
        _tx, receipt = self._stk_for_invoice(invoice, paid=1000)
        exception = self._open_exception(receipt)
        with self._db_lock():
            exception.action_keep_as_credit()
            self.env.flush_all()
        (payment,) = self._live_payments(receipt)
        self.assertEqual(payment.amount, 1000)
        self.assertIn("KES 1,000.00 kept as credit", exception.resolution_note)
        self.assertTrue(receipt.statement_line_id.is_reconciled)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    # === finding 6: reversal results === #

    def test_refused_reversal_keeps_the_exception_open(self):
        receipt = self._c2b("NOSUCHREF", 250)
        exception = self._open_exception(receipt)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            # M-PESA no longer knows the receipt: R000002
            self.env.cr.execute(
                "UPDATE mpesa_receipt SET name = 'UNKNOWN001' WHERE id = %s",
                [receipt.id],
            )
            receipt.invalidate_recordset()
            exception.action_request_reversal()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        self.assertEqual(exception.state, "open")
        self.assertNotEqual(receipt.state, "reversed")
        self.assertIn("did not reverse", exception.message_ids[0].body)

    def test_result_after_a_queue_timeout_is_applied(self):
        receipt = self._c2b("NOSUCHREF", 250)
        exception = self._open_exception(receipt)
        self.emulator.queue_timeouts = True
        self.emulator.result_after_timeout = True
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        try:
            with self._db_lock():
                exception.action_request_reversal()
                self.env.flush_all()
            self._wait_callbacks(before + 1, kind="result", timeout=15)
        finally:
            self.emulator.queue_timeouts = False
            self.emulator.result_after_timeout = False
        self.assertEqual(receipt.state, "reversed")
        self.assertEqual(exception.resolution, "reversed")

    # === findings 13 and 16: late confirmations of a pending prompt === #

    def test_receipt_pulled_while_the_prompt_is_processing(self):
        """The statement shows the money while the STK query still says "being
        processed": the statement row is M-PESA's own record, so it completes the
        prompt at once (no review, no exception, no wait for the STK query); the
        status job's later answer about the prompt changes nothing."""
        invoice = self._invoice(1250)
        before = self._receivable_balance(invoice.partner_id)
        self.emulator.auto_complete = False  # the customer has not answered yet
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push_for(invoice)
        row = (
            f"SKL0000077,01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill,Completed,"
            f'"1250.00",,"1250.00",TRUE,Pay Bill Online,2547****149 - JOHN,,'
            f"{tx.mpesa_account_reference}\n"
        )
        self._import_statement([row])
        receipt = self.env["mpesa.receipt"].search([("name", "=", "SKL0000077")])
        self.assertEqual(receipt.transaction_id, tx)
        self.assertEqual(receipt.state, "applied")
        self.assertFalse(receipt.exception_ids)
        self.assertEqual(tx.state, "done")

        self.emulator.resolve_prompt(tx.mpesa_checkout_request_id, "approve")
        time.sleep(0.3)
        with self._db_lock():
            tx._mpesa_query_and_apply()  # what the status job does
            tx._post_process()
            self.env.flush_all()
        self.assertEqual(tx.state, "done")
        self.assertEqual(receipt.state, "applied")
        self.assertFalse(receipt.exception_ids.filtered(lambda e: e.state == "open"))
        self.assertBooksOfPayment(receipt, invoice.partner_id, before, 1250)

    def test_status_query_completes_the_pending_prompt_it_confirms(self):
        """The customer quotes the code of a prompt whose callback never came: the
        Transaction Status result pays that prompt's invoice at once."""
        invoice = self._invoice(1250)
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push_for(invoice)
        time.sleep(0.3)
        code = self.emulator.prompts[tx.mpesa_checkout_request_id].receipt
        self.assertTrue(code)
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            self.env["mpesa.receipt.lookup"].create(
                {"code": code, "provider_id": self.mpesa.id}
            ).action_lookup()
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
        self.assertEqual(tx.state, "done")
        self.assertEqual(receipt.state, "applied")
        self.assertEqual(receipt.application_ids, tx)
        self.assertFalse(receipt.exception_ids)

    def test_receipt_code_of_a_prompt_confirmed_by_status_query_comes_late(self):
        """The callback is late: the status query confirms the prompt (its answer has
        no receipt code) and the invoice is paid. When the callback comes with the
        code, the money goes on the ledger under it: a receipt applied to that
        payment, its bank line reconciled, nothing paid twice."""
        invoice = self._invoice(1250)
        before = self._receivable_balance(self.partner)
        self.emulator.set_scenario(PHONE, no_callback=True)
        tx = self._push_for(invoice)
        time.sleep(0.3)
        with self._db_lock():
            tx._mpesa_query_and_apply()
            tx._post_process()
            self.env.flush_all()
        self.assertEqual((tx.state, tx.mpesa_receipt_code), ("done", False))
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        response = self.url_open(
            f"/payment/daraja/stk/{token}",
            data=json.dumps(stk_payload(tx, 0, receipt="QLATECODE1")),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        self._apply_inbox()
        self.env.invalidate_all()
        receipt = self.env["mpesa.receipt"].search([("name", "=", "QLATECODE1")])
        self.assertEqual(tx.mpesa_receipt_code, "QLATECODE1")
        self.assertEqual((receipt.state, receipt.application_ids), ("applied", tx))
        self.assertEqual(len(self._live_payments(receipt)), 1, "the one payment")
        self.assertBooksOfPayment(receipt, self.partner, before, 1250)

    # === the invoice changed while the customer answered the prompt === #

    def _prompt_answered_after(self, invoice, change):
        """A prompt for ``invoice`` that the customer answers two seconds later;
        ``change`` runs meanwhile. Returns the prompt, its receipt and exception."""
        self.emulator.set_scenario(PHONE, delay=2.0)
        tx = self._push_for(invoice)
        with self._db_lock():
            change()
            self.env.flush_all()
        self._wait_callbacks()
        receipt = self.env["mpesa.receipt"].search(
            [("name", "=", tx.mpesa_receipt_code)]
        )
        self.assertEqual((tx.state, tx.mpesa_needs_review), ("pending", True))
        self.assertEqual(receipt.state, "review")
        self.assertFalse(self._live_payments(receipt), "no silent credit")
        return tx, receipt, self._open_exception(receipt)

    def test_prompt_paid_after_its_invoice_was_cancelled_waits_for_finance(self):
        invoice = self._invoice(1250)

        def cancel():
            invoice.button_draft()
            invoice.button_cancel()

        _tx, _receipt, exception = self._prompt_answered_after(invoice, cancel)
        self.assertEqual(exception.kind, "review")
        self.assertIn("was cancelled or reset to draft", exception.reason)

    def test_prompt_paid_after_its_invoice_was_paid_in_cash_waits_for_finance(self):
        invoice = self._invoice(1250)
        receivable = self._receivable_balance(self.partner)

        def pay_in_cash():
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=invoice.ids
            ).create({})._create_payments()

        _tx, receipt, exception = self._prompt_answered_after(invoice, pay_in_cash)
        self.assertIn("had KES 0.00 left to pay", exception.reason)
        self.assertEqual(
            self._receivable_balance(self.partner),
            receivable - 1250,
            "the cash only: the M-PESA money waits, it is no credit yet",
        )
        self.assertFalse(receipt.statement_line_id.is_reconciled)

    def _prompt_paid_then_invoice_changed(self, invoice, change):
        """M-PESA confirms a prompt for ``invoice``; ``change`` runs before the
        framework's job books it (post-processing, a cron job: it never runs by
        itself in tests), then the job's work is done. Returns the receipt, the
        customer's receivable once ``change`` is done, and the exception."""
        tx = self._push_for(invoice)
        self._wait_callbacks()
        self.env.invalidate_all()
        self.assertEqual((tx.state, tx.is_post_processed), ("done", False))
        receipt = tx.mpesa_source_receipt_id
        with self._db_lock():
            change()
            self.env.flush_all()
            before = self._receivable_balance(self.partner)
        self._post_process(receipt)  # the job's work (the job itself commits)
        self.env.invalidate_all()
        self.assertTrue(tx.is_post_processed)
        return receipt, before, self._open_exception(receipt)

    def test_invoice_cancelled_before_its_paid_prompt_was_booked_waits(self):
        """Core books a payment of a cancelled invoice as the customer's credit
        (account_payment _create_payment skips it), with nobody told: as when the
        invoice is cancelled while the prompt is open, the money waits instead."""
        invoice = self._invoice(1250)

        def cancel():
            invoice.button_draft()
            invoice.button_cancel()

        receipt, before, exception = self._prompt_paid_then_invoice_changed(
            invoice, cancel
        )
        self.assertEqual(exception.kind, "review")
        self.assertIn(invoice.name, exception.reason)
        self.assertEqual((receipt.state, receipt._mpesa_left()), ("review", 1250))
        self.assertFalse(self._live_payments(receipt), "no silent credit")
        self.assertEqual(self._receivable_balance(self.partner), before)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        # Finance decides, and the books are those of one payment kept as credit.
        with self._db_lock():
            exception.action_keep_as_credit()
            self.env.flush_all()
        self.assertBooksOfPayment(receipt, self.partner, before, 1250)

    def test_invoice_paid_in_cash_before_its_paid_prompt_was_booked_waits(self):
        invoice = self._invoice(1250)

        def pay_in_cash():
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=invoice.ids
            ).create({})._create_payments()

        receipt, before, exception = self._prompt_paid_then_invoice_changed(
            invoice, pay_in_cash
        )
        self.assertEqual(exception.kind, "review")
        self.assertIn(invoice.name, exception.reason)
        self.assertFalse(self._live_payments(receipt), "no silent credit")
        self.assertEqual(
            self._receivable_balance(self.partner),
            before,
            "the cash only: the M-PESA money waits, it is no credit yet",
        )
        self.assertFalse(receipt.statement_line_id.is_reconciled)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    # === a paybill payment while the prompt is open (review of 2026-12-07) === #

    def _open_prompt_for(self, name, amount):
        """The customer asks for a prompt for invoice ``name`` from the portal; it
        stays open on the phone (did not show, say) until the test answers it."""
        invoice = self._named_invoice(name, self.partner, amount)
        before = self._receivable_balance(invoice.partner_id)
        self.emulator.auto_complete = False
        return invoice, before, self._push_for(invoice)

    def _answer_prompt(self, tx, action):
        """The customer answers the prompt on the phone: its callback is applied."""
        before = len([d for d in self.emulator.deliveries if d.kind == "stk_callback"])
        self.emulator.resolve_prompt(tx.mpesa_checkout_request_id, action)
        self._wait_callbacks(before + 1)

    def _assert_paid_by_paybill(self, invoice, receipt, before):
        """The paybill money pays the invoice by its reference, once, and the books
        are right; no person is asked to look at it."""
        self._post_process(receipt)
        self.env.invalidate_all()
        self.assertEqual(
            (receipt.state, receipt.review_reason), ("applied", False), receipt.name
        )
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(invoice.amount_residual, 0)
        self.assertEqual(len(self._live_payments(receipt)), 1)
        self.assertFalse(self._open_exception(receipt))
        self.assertBooksOfPayment(
            receipt, invoice.partner_id, before, invoice.amount_total
        )

    def test_paybill_while_the_prompt_is_open_pays_when_the_prompt_is_declined(self):
        """The prompt does not show, so the customer pays the same amount by paybill,
        quoting the reference the prompt asked for; Transaction Status confirms it;
        then they decline the prompt after all (1032). The paybill money pays the
        invoice: it never waits on a prompt that failed."""
        invoice, before, tx = self._open_prompt_for("INV/2026/00066", 1700)
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        self.assertEqual(receipt.verification, "verified")
        self._answer_prompt(tx, "decline")
        self._assert_paid_by_paybill(invoice, receipt, before)
        self.assertEqual(receipt.application_ids.invoice_ids, invoice)

    def test_unconfirmed_paybill_waiting_on_a_prompt_that_times_out_is_applied(self):
        """Without initiator credentials the paybill money cannot be confirmed by
        Transaction Status: it waits on the open prompt (whose STK query still says
        "being processed"). When the prompt times out (1037), the money is released
        from it and pays the invoice its account number names."""
        with self._db_lock():
            self.mpesa.mpesa_security_credential = False
            self.env.flush_all()
        invoice, before, tx = self._open_prompt_for("INV/2026/00067", 1700)
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        self.assertEqual(receipt.verification, "unverified")
        self.assertEqual(
            (receipt.transaction_id, receipt.state), (tx, "received"), "it waits"
        )
        self._answer_prompt(tx, "timeout")
        self.assertEqual(tx.state, "cancel")
        self._assert_paid_by_paybill(invoice, receipt, before)
        self.assertNotEqual(receipt.transaction_id, tx, "released from the prompt")
        # The status job asks about the timed-out prompt again, and it expires at
        # last (1019): the money is released once, nothing more is paid.
        with self._db_lock():
            tx._mpesa_query_and_apply()
            tx._mpesa_apply_failure(1019, "Transaction has expired")
            self.env.flush_all()
        self.assertEqual(len(self._live_payments(receipt)), 1)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_upgrade_releases_paybill_money_left_waiting_on_a_failed_prompt(self):
        """Before 18.0.1.4.0 the prompt's failure did not release the paybill money
        waiting on it: the receipt stayed 'received', the invoice due. The upgrade
        applies it as the money path now does."""
        with self._db_lock():
            self.mpesa.mpesa_security_credential = False
            self.env.flush_all()
        invoice, before, tx = self._open_prompt_for("INV/2026/00068", 1700)
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        with self._db_lock():  # the old version: the prompt failed, nothing else
            tx.sudo()._set_canceled("Request cancelled by user.")
            self.env.flush_all()
        self.assertEqual((receipt.transaction_id, receipt.state), (tx, "received"))
        self._upgrade_mpesa_payment("18.0.1.4.0", "18.0.1.3.0")
        self._assert_paid_by_paybill(invoice, receipt, before)
        self.assertEqual(self.mpesa._mpesa_check_books(), [])

    def test_confirmed_paybill_after_the_prompt_timed_out_is_not_sent_to_review(self):
        """The prompt timed out first (1037, still rechecked); then the customer pays
        by paybill. Transaction Status confirmed the receipt: the STK query of the
        prompt (1037) says nothing about it, so it sends nothing to review."""
        invoice, before, tx = self._open_prompt_for("INV/2026/00068", 1700)
        self._answer_prompt(tx, "timeout")
        self.assertEqual((tx.state, tx.mpesa_recheck), ("cancel", True))
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        self.assertEqual(receipt.verification, "verified")
        self._assert_paid_by_paybill(invoice, receipt, before)
        self.assertFalse(tx.mpesa_needs_review)
        self.assertNotIn("status query answers", tx.state_message or "")

    def test_unconfirmed_paybill_after_the_prompt_timed_out_pays_by_its_reference(self):
        """The same without initiator credentials: the STK query of the prompt is
        asked, answers 1037 (the prompt, not the paybill payment, failed), and the
        money pays the invoice its account number names instead of going to review."""
        with self._db_lock():
            self.mpesa.mpesa_security_credential = False
            self.env.flush_all()
        invoice, before, tx = self._open_prompt_for("INV/2026/00069", 1700)
        self._answer_prompt(tx, "timeout")
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        self.assertEqual(receipt.verification, "unverified")
        self._assert_paid_by_paybill(invoice, receipt, before)
        self.assertEqual((tx.state, tx.mpesa_needs_review), ("cancel", False))
        self.assertFalse(
            tx.mpesa_receipt_code, "the prompt's code is not the paybill's"
        )

    def test_prompt_approved_after_the_paybill_paid_is_a_second_receipt(self):
        """The paybill money paid the invoice (the prompt it completed stays open on
        the phone); then the customer approves the prompt too. The prompt's money is
        a second receipt, confirmed by M-PESA and waiting for review as a possible
        duplicate: never lost, never paying the invoice twice."""
        invoice, before, tx = self._open_prompt_for("INV/2026/00070", 1700)
        receipt = self._c2b(tx.mpesa_account_reference, 1700)
        self._post_process(receipt)  # the job, woken by the payment, within seconds
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        results = len([d for d in self.emulator.deliveries if d.kind == "result"])
        self._answer_prompt(tx, "approve")
        self._wait_callbacks(results + 1, kind="result")
        code = self.emulator.prompts[tx.mpesa_checkout_request_id].receipt
        with self._db_lock():
            second = self.env["mpesa.receipt"].search([("name", "=", code)])
        self.assertTrue(second, "the prompt's money is in the ledger")
        self._wait_confirmed(second)
        self.assertEqual(second.verification, "verified")
        self.assertEqual((second.state, second.review_cause), ("review", "duplicate"))
        self.assertTrue(self._open_exception(second))
        self.assertFalse(second.application_ids)
        self._assert_paid_by_paybill(invoice, receipt, before)

    def _import_statement(self, rows):
        with self._db_lock():
            self.env["mpesa.statement.import"].create(
                {
                    "provider_id": self.mpesa.id,
                    "source": "file",
                    "data_file": base64.b64encode(statement(rows)),
                    "filename": "statement.csv",
                }
            ).action_import()
            self.env.flush_all()
