"""What the accountant does to an invoice while, or after, the customer pays it by
M-PESA, on a real multi-worker server where OCA's automatic reconciliation runs on
every bank line (Odoo's test mode switches it off): cancelling it or crediting it in
full while the STK prompt is open on the phone, resetting a paid invoice to draft
and posting it again, and importing a statement that lists payments already booked."""

import contextlib

from daraja_emulator import DEFAULT_SHORTCODE
from daraja_emulator.helpers import kenya_now

from .harness import wait_until
from .mpesa_live import PHONE_LOCAL


@contextlib.contextmanager
def _prompt_open(mpesa, invoice_id):
    """The customer asks for a prompt for the whole invoice from its portal page; it
    stays open on the phone while the block runs, then the customer approves it.
    Yields the transaction row; after the block the callback has been applied."""
    mpesa.emulator.auto_complete = False
    try:
        client, processing = mpesa.portal_transaction(invoice_id)
        assert mpesa.stk_push(client, processing)["state"] == "pending"
        tx = mpesa.tx(processing["reference"])
        assert tx["state"] == "pending", tx
        yield tx
        assert not [d for d in mpesa.emulator.deliveries if d.kind == "stk_callback"]
        mpesa.emulator.resolve_prompt(tx["mpesa_checkout_request_id"], "approve")
    finally:
        mpesa.emulator.auto_complete = True
    (delivery,) = mpesa.stk_deliveries(tx, 1)
    assert delivery.status == 200, delivery.response_text
    mpesa.settle_inbox()


def _waits_for_finance(mpesa, tx, invoice_id, reason):
    """The money is in the ledger and the journal, not applied to the invoice: an
    open review exception tells finance why; no payment, the bank line waits
    (not reconciled, in particular not with a receivable by OCA's rules), and the
    books check is clean. Returns the exception."""
    mpesa.post_process()
    tx = mpesa.tx(tx_id=tx["id"])
    assert (tx["state"], tx["mpesa_needs_review"]) == ("pending", True), tx
    assert not tx["payment_id"], tx
    exception = mpesa.open_exception("r.transaction_id = %s", [tx["id"]])
    assert exception["kind"] == "review", exception
    assert reason in mpesa.sql.scalar(
        "SELECT reason FROM mpesa_exception WHERE id = %s", [exception["id"]]
    )
    code = tx["mpesa_receipt_code"]
    (receipt,) = mpesa.receipts(code)
    assert receipt["state"] == "review", receipt
    (line,) = mpesa.statement_lines(code)
    assert (line["amount"], line["is_reconciled"]) == (tx["amount"], False), line
    assert mpesa.payments_of(code) == []
    assert mpesa.invoice(invoice_id)["payment_state"] != "paid"
    assert mpesa.check_books() == []
    return exception


def _kept_as_credit(mpesa, exception, invoice_ids, amount):
    """The reconciler keeps the money as the customer's credit: one payment, matched
    with the bank line, the customer's receivable at minus the amount."""
    mpesa.reconciler()("mpesa.exception", "action_keep_as_credit", [exception["id"]])
    tx_ids = mpesa.payments_of(exception["code"])
    assert len(tx_ids) == 1, tx_ids
    mpesa.assert_books(tx_ids, invoice_ids, credit=amount)


def test_invoice_cancelled_while_its_prompt_is_open(mpesa):
    """The accountant cancels the invoice (Reset to Draft, Cancel) while the
    customer's prompt is open; the customer then pays. The money is not applied
    to the cancelled invoice nor left as silent credit: it waits for finance,
    who keeps it as the customer's credit; booked once."""
    accountant = mpesa.accountant()
    invoice_id, _name = mpesa.create_invoice(1310)
    with _prompt_open(mpesa, invoice_id) as tx:
        accountant("account.move", "button_draft", [invoice_id])
        accountant("account.move", "button_cancel", [invoice_id])
    assert mpesa.invoice(invoice_id)["state"] == "cancel"
    exception = _waits_for_finance(
        mpesa, tx, invoice_id, "was cancelled or reset to draft"
    )
    _kept_as_credit(mpesa, exception, [invoice_id], 1310)
    assert mpesa.invoice(invoice_id)["state"] == "cancel"


def test_invoice_credited_in_full_while_its_prompt_is_open(mpesa):
    """The accountant credits the invoice in full (Credit Note wizard, then Confirm
    on the credit note) while the prompt is open; the customer then pays. The
    invoice is settled by the credit note: the money waits for finance, then is
    kept as credit; the receivable over invoice, credit note and payment is minus
    what was paid."""
    accountant = mpesa.accountant()
    invoice_id, _name = mpesa.create_invoice(1320)
    with _prompt_open(mpesa, invoice_id) as tx:
        context = {"active_model": "account.move", "active_ids": [invoice_id]}
        wizard_id = accountant(
            "account.move.reversal",
            "create",
            {"reason": "Goods returned", "journal_id": _sales_journal(mpesa)},
            context=context,
        )
        action = accountant(
            "account.move.reversal", "refund_moves", [wizard_id], context=context
        )
        note_id = action["res_id"]
        accountant("account.move", "action_post", [note_id])
    assert mpesa.invoice(invoice_id)["payment_state"] == "reversed"
    exception = _waits_for_finance(mpesa, tx, invoice_id, "left to pay")
    _kept_as_credit(mpesa, exception, [invoice_id, note_id], 1320)


@contextlib.contextmanager
def _booking_held_back(mpesa):
    """Core's post-processing job, which books a confirmed payment, does not run
    while the block runs. In production a cron worker runs it a moment after M-PESA
    confirms the payment; an accountant's click can come in that moment."""
    cron_id = mpesa.rpc.xmlid("payment.cron_post_process_payment_tx")
    mpesa.rpc("ir.cron", "write", [cron_id], {"active": False})
    try:
        yield
    finally:
        mpesa.rpc("ir.cron", "write", [cron_id], {"active": True})


def test_invoice_cancelled_after_its_prompt_was_paid_before_it_was_booked(mpesa):
    """M-PESA confirms the prompt; before the job books the payment, the accountant
    cancels the invoice. Core would book the money as the customer's credit with
    nobody told (it skips a cancelled invoice): the payment it made is cancelled at
    once and the money waits for finance, as when the invoice is cancelled while
    the prompt is open; kept as credit, it is booked once."""
    accountant = mpesa.accountant()
    with _booking_held_back(mpesa):
        invoice_id, tx = mpesa.pay_invoice_by_push(1370, "254711000371")
        mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
        mpesa.settle_inbox()
        assert not mpesa.tx(tx_id=tx["id"])["is_post_processed"]
        accountant("account.move", "button_draft", [invoice_id])
        accountant("account.move", "button_cancel", [invoice_id])
    mpesa.post_process()
    tx = mpesa.tx(tx_id=tx["id"])
    assert (tx["state"], tx["is_post_processed"]) == ("done", True), tx
    exception = mpesa.open_exception("r.name = %s", [tx["mpesa_receipt_code"]])
    assert exception["kind"] == "review", exception
    name = mpesa.invoice(invoice_id)["name"]
    assert name in mpesa.sql.scalar(
        "SELECT reason FROM mpesa_exception WHERE id = %s", [exception["id"]]
    )
    (receipt,) = mpesa.receipts(exception["code"])
    assert receipt["state"] == "review", receipt
    assert mpesa.payments_of(exception["code"]) == [], "no silent credit"
    (line,) = mpesa.statement_lines(exception["code"])
    assert not line["is_reconciled"], line
    assert mpesa.check_books() == []
    _kept_as_credit(mpesa, exception, [invoice_id], 1370)
    assert mpesa.invoice(invoice_id)["state"] == "cancel"


def _sales_journal(mpesa):
    return mpesa.sql.scalar(
        "SELECT journal_id FROM account_move WHERE move_type = 'out_invoice'"
        " ORDER BY id DESC LIMIT 1"
    )


def test_paid_invoice_reset_to_draft_and_posted_again(mpesa):
    """An invoice paid by STK push; the accountant resets it to draft (core
    unreconciles it from the payment) and posts it again. While it is a draft the
    payment is the customer's credit, still matched with its bank line; posted
    again, the invoice takes its M-PESA payment back (mpesa_reconciliation's
    ``_post``): paid, booked once, books clean. Removed from the invoice by hand
    (its payment widget), the books check names it; added back, books clean."""
    accountant = mpesa.accountant()
    invoice_id, tx = mpesa.pay_invoice_by_push(1330, PHONE_LOCAL)
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.post_process()
    mpesa.assert_books([tx["id"]], [invoice_id])

    accountant("account.move", "button_draft", [invoice_id])
    assert mpesa.invoice(invoice_id)["state"] == "draft"
    # The payment and its bank line are untouched: matched together, the money the
    # customer's credit meanwhile (the draft owes nothing yet).
    mpesa.assert_books([tx["id"]], [], credit=1330)

    accountant("account.move", "action_post", [invoice_id])
    invoice = mpesa.invoice(invoice_id)
    assert (invoice["payment_state"], invoice["amount_residual"]) == ("paid", 0)
    code = mpesa.tx(tx_id=tx["id"])["mpesa_receipt_code"]
    assert mpesa.payments_of(code) == [tx["id"]]
    mpesa.assert_books([tx["id"]], [invoice_id])

    # The accountant removes the payment from the invoice (its payment widget):
    # the books check names the receipt, in the shillings M-PESA paid (the live
    # company keeps its books in USD), and the accountant adds it back.
    [(partial_id, payment_line_id)] = mpesa.sql.all(
        "SELECT p.id, p.credit_move_id FROM account_partial_reconcile p"
        " JOIN account_move_line aml ON aml.id = p.debit_move_id"
        " WHERE aml.move_id = %s",
        [invoice_id],
    )
    accountant(
        "account.move", "js_remove_outstanding_partial", [invoice_id], partial_id
    )
    assert mpesa.invoice(invoice_id)["payment_state"] == "not_paid"
    assert mpesa.check_books() == [
        [
            DEFAULT_SHORTCODE,
            code,
            (
                f"paid for {invoice['name']}, which is still due: 1,330.00 is the "
                "customer's credit instead (payment not matched with the invoice)"
            ),
        ]
    ]
    accountant(
        "account.move", "js_assign_outstanding_line", [invoice_id], payment_line_id
    )
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books([tx["id"]], [invoice_id])


def test_statement_listing_booked_payments_and_one_never_notified(mpesa):
    """Two payments booked from their callbacks (STK push, paybill) and a paybill
    payment M-PESA never notified: the reconciler imports the statement listing all
    three. Nothing is booked twice; the third pays its invoice, once."""
    stk_invoice, stk_tx = mpesa.pay_invoice_by_push(1340, PHONE_LOCAL)
    mpesa.wait_tx_state(stk_tx["id"], ("done",), timeout=30)
    mpesa.post_process()
    stk_code = mpesa.tx(tx_id=stk_tx["id"])["mpesa_receipt_code"]
    phone = "254711000341"
    partner_id = mpesa.phone_only_customer(phone)
    paybill_invoice, paybill_name = mpesa.create_invoice(1350, partner_id=partner_id)
    paybill_code = mpesa.paybill_payment(phone, 1350, paybill_name)
    mpesa.post_process()
    silent_invoice, silent_name = mpesa.create_invoice(1360, partner_id=partner_id)
    mpesa.emulator.set_scenario(phone, no_callback=True)
    silent_code = mpesa.emulator.c2b_pay(DEFAULT_SHORTCODE, phone, 1360, silent_name)
    wait_until(lambda: silent_code in mpesa.emulator.payments, 10, "the money")
    assert mpesa.receipts(silent_code) == []
    booked = {c: mpesa.payments_of(c) for c in (stk_code, paybill_code)}
    assert all(len(tx_ids) == 1 for tx_ids in booked.values()), booked

    when = kenya_now().strftime("%d-%m-%Y %H:%M:%S")
    stk_ref = mpesa.sql.scalar(
        "SELECT mpesa_account_reference FROM payment_transaction WHERE id = %s",
        [stk_tx["id"]],
    )
    mpesa.import_statement(
        *(
            f'{code},{when},{when},Pay Bill from 2547****{tail},Completed,"{amount}",'
            f",,,Pay Bill Online,2547****{tail} - JOHN,,{account}\n"
            for code, amount, tail, account in (
                (stk_code, "1,340.00", "149", stk_ref),
                (paybill_code, "1,350.00", "341", paybill_name),
                (silent_code, "1,360.00", "341", silent_name),
            )
        )
    )
    mpesa.settle_inbox()
    mpesa.post_process()
    for code in (stk_code, paybill_code, silent_code):
        assert len(mpesa.receipts(code)) == 1, code
        assert len(mpesa.statement_lines(code)) == 1, code
    assert {c: mpesa.payments_of(c) for c in booked} == booked
    silent_tx_ids = mpesa.payments_of(silent_code)
    assert len(silent_tx_ids) == 1, silent_tx_ids
    for invoice_id in (stk_invoice, paybill_invoice, silent_invoice):
        assert mpesa.invoice(invoice_id)["payment_state"] == "paid", invoice_id
    mpesa.assert_books(
        [stk_tx["id"], *booked[paybill_code], *silent_tx_ids],
        [stk_invoice, paybill_invoice, silent_invoice],
    )
