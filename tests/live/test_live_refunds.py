"""Refunds on a real multi-worker server: the accountant's Refund button on an M-PESA
payment, M-PESA's result reaching another worker, and the books of the money that
went back, as an accountant checks them (Odoo's test mode switches OCA's automatic
reconciliation off; here it runs on every bank line, as in production)."""

from types import SimpleNamespace

import pytest
from daraja_emulator import DEFAULT_INITIATOR, DEFAULT_INITIATOR_PASSWORD

from .harness import wait_until
from .mpesa_live import PHONE, PHONE_LOCAL

B2C_SHORTCODE = "600000"
B2C_FLOAT = 10000


@pytest.fixture(scope="module")
def b2c(live):
    """A B2C shortcode with its own KES journal, set up as the admin would; returns
    the emulator's shortcode (its balance is the money it holds) and the journal."""
    code = live.emulator.add_shortcode(B2C_SHORTCODE, balance=B2C_FLOAT)
    journal_id = live.rpc(
        "account.journal",
        "create",
        {
            "name": "M-PESA B2C Live",
            "code": "MB2L",
            "type": "bank",
            "currency_id": live.kes_id,
        },
    )
    live.set_provider(
        {
            "mpesa_b2c_shortcode": B2C_SHORTCODE,
            "mpesa_b2c_initiator_name": DEFAULT_INITIATOR,
            "mpesa_b2c_initiator_password": DEFAULT_INITIATOR_PASSWORD,
            "mpesa_b2c_journal_id": journal_id,
        }
    )
    return SimpleNamespace(code=code, journal_id=journal_id)


def _paid_invoice(mpesa, amount):
    """An invoice the customer paid from the portal by STK push, booked once."""
    invoice_id, tx = mpesa.pay_invoice_by_push(amount, PHONE_LOCAL)
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.post_process()
    mpesa.assert_books([tx["id"]], [invoice_id])
    return invoice_id, mpesa.tx(tx_id=tx["id"])


def _credit_note(mpesa, invoice_id, amount):
    """A posted credit note of ``amount`` against the invoice."""
    note_id, _name = mpesa.create_invoice(
        amount, move_type="out_refund", reversed_entry_id=invoice_id
    )
    return note_id


def _click_refund(mpesa, tx, amount, user=None):
    """The accountant (or ``user``, an XML-RPC client) opens the payment, clicks
    Refund and confirms the wizard; returns what the wizard showed (method, phone,
    credit note id)."""
    rpc = user or mpesa.rpc
    context = {"active_model": "account.payment", "active_id": tx["payment_id"]}
    wizard_id = rpc(
        "payment.refund.wizard",
        "create",
        {"amount_to_refund": amount},
        context=context,
    )
    [shown] = rpc(
        "payment.refund.wizard",
        "read",
        [wizard_id],
        ["mpesa_refund_method", "mpesa_refund_phone", "mpesa_credit_note_id"],
    )
    rpc("payment.refund.wizard", "action_refund", [wizard_id], context=context)
    return (
        shown["mpesa_refund_method"],
        shown["mpesa_refund_phone"],
        shown["mpesa_credit_note_id"] and shown["mpesa_credit_note_id"][0],
    )


def _refund_of(mpesa, tx):
    (refund_id,) = mpesa.sql.all(
        "SELECT id FROM payment_transaction"
        " WHERE source_transaction_id = %s AND operation = 'refund'",
        [tx["id"]],
    )[0]
    return mpesa.wait_tx_state(refund_id, ("done",), timeout=60)


def _results_of(mpesa, refund):
    """The states of M-PESA's results for the refund's request, as stored."""
    return mpesa.callback_states(
        "kind = 'result' AND api_request_id IN"
        " (SELECT id FROM mpesa_api_request WHERE transaction_id = %s)",
        [refund["id"]],
    )


def _refund_books(mpesa, refund):
    """What the accountant reads of the refund: its outgoing payment, the bank line
    of M-PESA's refund receipt, and whether each is cleared."""
    (books,) = mpesa.books_of_payments([refund["id"]])
    del books["reference"]
    return books


def _assert_refund_booked(mpesa, refund, amount, journal_id, moves, tx_ids):
    books = _refund_books(mpesa, refund)
    assert books == {
        "payment_type": "outbound",
        "payment_state": "paid",
        "journal_id": journal_id,
        "amount": amount,
        "outstanding_cleared": True,
        "receipt": refund["mpesa_receipt_code"],
        "line_journal_id": journal_id,
        "line_amount": -amount,
        "line_reconciled": True,
        "line_on_receivable": False,
    }, books
    for move_id in moves:
        assert mpesa.invoice(move_id)["payment_state"] == "paid", mpesa.invoice(move_id)
    owed = mpesa.receivable_of(moves, tx_ids)
    assert abs(owed) < 0.005, f"the customer's account is off by {owed}"
    assert mpesa.check_books() == []


def _refund_through_the_button(mpesa, paid, refunded, proposed, journal_id):
    """An invoice of ``paid`` paid from the portal, a credit note of ``refunded``,
    the Refund button: the wizard shows ``proposed`` (method, phone), and the refund
    is booked in ``journal_id``. Returns (tx, refund)."""
    invoice_id, tx = _paid_invoice(mpesa, paid)
    note_id = _credit_note(mpesa, invoice_id, refunded)

    shown = _click_refund(mpesa, tx, refunded)
    assert shown == (*proposed, note_id), shown
    refund = _refund_of(mpesa, tx)
    mpesa.settle_inbox()

    moves, tx_ids = [invoice_id, note_id], [tx["id"], refund["id"]]
    _assert_refund_booked(mpesa, refund, refunded, journal_id, moves, tx_ids)
    assert _results_of(mpesa, refund) == {"processed": 1}
    return tx, refund


def test_full_refund_by_reversal(mpesa):
    """The whole payment back: M-PESA reverses it on the paybill, whose journal
    books the money out against the credit note."""
    tx, _refund = _refund_through_the_button(
        mpesa, 1800, 1800, ("reversal", False), mpesa.journal_id
    )
    (source,) = mpesa.receipts(tx["mpesa_receipt_code"])
    assert source["state"] == "applied", "the invoice's payment stays applied"


def test_partial_refund_by_b2c(mpesa, b2c):
    """Part of the payment back: a B2C payment from the B2C shortcode to the phone
    that paid, booked in that shortcode's journal against the credit note; the
    invoice keeps its payment."""
    _refund_through_the_button(mpesa, 2000, 450, ("b2c", PHONE), b2c.journal_id)
    assert b2c.code.balance == B2C_FLOAT - 450, "the money left the B2C shortcode once"


@pytest.fixture
def late_results(mpesa):
    """``start()``: from then on M-PESA's queue times out on each initiator
    request and the Result still comes, but only when the test releases it (the
    emulator keeps it back). Back to prompt results after the test."""
    emulator = mpesa.emulator

    def start():
        emulator.queue_timeouts = emulator.result_after_timeout = True
        emulator.hold_results = True
        return emulator

    yield SimpleNamespace(start=start)
    emulator.queue_timeouts = emulator.result_after_timeout = False
    emulator.hold_results = False


def _receivable_of_customer(mpesa):
    """The customer's whole receivable in KES (negative: what we owe them)."""
    return mpesa.sql.scalar(
        "SELECT coalesce(sum(aml.amount_currency), 0) FROM account_move_line aml"
        " JOIN account_account acc ON acc.id = aml.account_id"
        " WHERE acc.account_type = 'asset_receivable' AND aml.parent_state = 'posted'"
        " AND aml.partner_id = %s",
        [mpesa.partner_id],
    )


def test_reversal_row_imported_before_the_late_result_is_the_refunds(
    mpesa, late_results
):
    """The M-PESA manager refunds a whole payment by reversal. M-PESA's queue times
    out and its Result is late; meanwhile the reconciler imports the statement,
    whose row is the reversal's money out (a withdrawal linked to the payment). The
    late Result takes that row as the refund's money out: booked once, met with the
    refund's payment, the credit note paid, the customer's account back to even."""
    invoice_id, tx = _paid_invoice(mpesa, 1000)
    note_id = _credit_note(mpesa, invoice_id, 1000)
    owed_before = _receivable_of_customer(mpesa)

    first_callback = mpesa.sql.scalar("SELECT coalesce(max(id), 0) FROM mpesa_callback")
    emulator = late_results.start()
    shown = _click_refund(mpesa, tx, 1000, user=mpesa.manager())
    assert shown == ("reversal", False, note_id), shown
    mpesa.deliveries(lambda d: d.kind == "timeout", 1, timeout=30)
    [(_url, late)] = wait_until(
        lambda: emulator.held_results, 30, "M-PESA to make the reversal's Result"
    )
    code = late["Result"]["TransactionID"]
    source = tx["mpesa_receipt_code"]
    assert emulator.payments[source]["status"] == "Reversed"
    mpesa.settle_inbox()
    (refund_id,) = mpesa.sql.all(
        "SELECT id FROM payment_transaction"
        " WHERE source_transaction_id = %s AND operation = 'refund'",
        [tx["id"]],
    )[0]
    assert mpesa.tx(tx_id=refund_id)["state"] == "error", "not paid, as far as we know"

    mpesa.import_reversal_row(code, source, 1000)
    imported = mpesa.sql.all(
        "SELECT kind, linked_receipt FROM mpesa_receipt WHERE name = %s", [code]
    )
    assert imported == [("withdrawal", source)], "the row waits as a withdrawal"

    [delivery] = emulator.release_results()
    assert (delivery.status, delivery.response_json()) == (
        200,
        {"ResultCode": 0, "ResultDesc": "Accepted"},
    ), delivery
    mpesa.settle_inbox()
    callbacks = mpesa.callback_states(
        "api_request_id IN"
        " (SELECT id FROM mpesa_api_request WHERE transaction_id = %s)",
        [refund_id],
    )
    assert callbacks == {"processed": 2}, "the timeout and the Result, applied"
    since = mpesa.callback_states("id > %s", [first_callback])
    assert since == {"processed": 2}, "no other callback, none in error"
    refund = mpesa.tx(tx_id=refund_id)
    assert (refund["state"], refund["mpesa_receipt_code"]) == ("done", code), refund

    [money_out] = mpesa.sql.dicts(
        "SELECT r.kind, r.linked_receipt, r.transaction_id, l.partner_id"
        " FROM mpesa_receipt r"
        " JOIN account_bank_statement_line l ON l.id = r.statement_line_id"
        " WHERE r.name = %s",
        [code],
    )
    assert money_out == {
        "kind": "refund",
        "linked_receipt": source,
        "transaction_id": refund_id,
        "partner_id": mpesa.partner_id,
    }, money_out
    assert [line["amount"] for line in mpesa.statement_lines(code)] == [-1000]
    moves, tx_ids = [invoice_id, note_id], [tx["id"], refund_id]
    _assert_refund_booked(mpesa, refund, 1000, mpesa.journal_id, moves, tx_ids)
    mpesa.assert_books(tx_ids, moves)
    assert _receivable_of_customer(mpesa) - owed_before == 1000, "moved by the refund"
    assert mpesa.sql.all(
        "SELECT state, resolution FROM mpesa_exception"
        " WHERE refund_transaction_id = %s",
        [refund_id],
    ) == [("resolved", "reversed")]


def _send_back_by_b2c(mpesa, b2c, exception, invoice_id, phone):
    """The M-PESA manager's Send Back by B2C (XML-RPC as that user) on an overpaid
    exception of 1,290 for an invoice with 790 due: the invoice gets its 790, the
    500 left goes to ``phone`` from the B2C shortcode, and the books are what an
    accountant expects."""
    manager = mpesa.manager()
    assert (exception["kind"], exception["expected_amount"]) == ("overpaid", 790)
    context = {"default_exception_id": exception["id"]}
    wizard_id = manager("mpesa.exception.return", "create", {}, context=context)
    [shown] = manager(
        "mpesa.exception.return", "read", [wizard_id], ["amount_due", "amount", "phone"]
    )
    assert shown == {"id": wizard_id, "amount_due": 790, "amount": 500, "phone": phone}
    manager("mpesa.exception.return", "action_confirm", [wizard_id], context=context)

    [refund_id] = mpesa.rpc(
        "mpesa.exception", "read", [exception["id"]], ["refund_transaction_id"]
    )[0]["refund_transaction_id"][:1]
    refund = mpesa.wait_tx_state(refund_id, ("done",), timeout=60)
    mpesa.settle_inbox()
    mpesa.post_process()
    tx_ids = [
        tx_id
        for (tx_id,) in mpesa.sql.all(
            "SELECT id FROM payment_transaction"
            " WHERE mpesa_source_receipt_id = %s OR id = ("
            "   SELECT transaction_id FROM mpesa_receipt WHERE id = %s)",
            [exception["receipt_id"], exception["receipt_id"]],
        )
    ]
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    books = _refund_books(mpesa, refund)
    assert (books["journal_id"], books["amount"], books["line_amount"]) == (
        b2c.journal_id,
        500,
        -500,
    ), books
    assert books["line_reconciled"] and books["outstanding_cleared"], books
    assert not books["line_on_receivable"], books
    owed = mpesa.receivable_of([invoice_id], [*tx_ids, refund_id])
    assert abs(owed) < 0.005, f"the customer's account is off by {owed}"
    assert b2c.code.balance == B2C_FLOAT - 500, "only what was not due went back"
    assert mpesa.check_books() == []


def test_paybill_overpayment_sent_back_by_b2c(mpesa, b2c):
    """A paybill payment of 1,290 for an invoice with 790 due goes to the exception
    queue; the manager's Send Back by B2C pays the invoice its 790 and sends the 500
    left to the phone that paid, booked in the B2C journal. The customer is known by
    phone only."""
    phone = "254711000820"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, invoice_name = mpesa.create_invoice(790, partner_id=partner_id)
    code = mpesa.emulator.c2b_pay(
        "174379", phone, 1290, invoice_name, msisdn_style="plain"
    )
    assert mpesa.wait_confirmed(code) == "verified"
    mpesa.settle_inbox()
    exception = mpesa.open_exception("r.name = %s", [code])
    _send_back_by_b2c(mpesa, b2c, exception, invoice_id, phone)


def test_stk_overpayment_sent_back_by_b2c(mpesa, b2c):
    """M-PESA confirms 1,290 for a prompt of 790 (one of the ugly cases the emulator
    plays): the payment waits in the queue as overpaid, and Send Back by B2C takes
    the same lock and the same request path as for a paybill payment."""
    phone = "254711000821"
    mpesa.emulator.set_scenario(phone, amount=1290)
    invoice_id, tx = mpesa.pay_invoice_by_push(790, phone)
    mpesa.stk_deliveries(tx)
    mpesa.settle_inbox()
    exception = mpesa.open_exception("r.transaction_id = %s", [tx["id"]])
    # Another amount than asked: its money moves once Transaction Status confirms it
    # (before, Send Back is refused: "M-PESA has not confirmed receipt ...").
    assert mpesa.wait_confirmed(exception["code"]) == "verified"
    _send_back_by_b2c(mpesa, b2c, exception, invoice_id, phone)
