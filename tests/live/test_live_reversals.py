"""Reversals from the exception queue on a real multi-worker server: the M-PESA
manager's click, M-PESA's result reaching another worker (or, for a payment M-PESA
had reversed already, the reconciler's statement import), and the books of the money
that went back, as an accountant checks them: the money out booked once, and the
pair (money in, money out) cleared against each other, nothing in suspense. Odoo's
test mode switches OCA's automatic reconciliation off; here it runs on every bank
line, as in production."""

from daraja_emulator import DEFAULT_SHORTCODE

from .harness import wait_until
from .mpesa_live import PHONE

# What the books check says of a reversed payment whose money out is not booked
# (mpesa_reconciliation/models/reversal.py, MONEY_OUT_UNBOOKED).
MONEY_OUT_UNBOOKED = (
    "reversed on M-PESA, but its money out is not booked (import the statement that "
    "lists the reversal)"
)


def _exception(mpesa, exception_id):
    return mpesa.sql.one(
        "SELECT state, resolution FROM mpesa_exception WHERE id = %s", [exception_id]
    )


def _assert_pair_cleared(mpesa, code, amount, account_id):
    """One money out of ``amount`` for the payment ``code``, in the paybill's journal
    like its money in; both bank lines reconciled, their counterparts on
    ``account_id`` only (nothing in suspense or Outstanding Receipts) and cleared
    against each other; the books check clean."""
    lines = mpesa.sql.dicts(
        "SELECT r.kind, r.state, l.journal_id, l.amount, l.is_reconciled, l.move_id"
        " FROM mpesa_receipt r"
        " LEFT JOIN account_bank_statement_line l ON l.id = r.statement_line_id"
        " WHERE r.name = %s OR (r.kind = 'reversal' AND r.linked_receipt = %s)"
        " ORDER BY l.amount DESC",
        [code, code],
    )
    moves = [line.pop("move_id") for line in lines]
    journal = mpesa.journal_id
    assert lines == [
        {
            "kind": "payment",
            "state": "reversed",
            "journal_id": journal,
            "amount": amount,
            "is_reconciled": True,
        },
        {
            "kind": "reversal",
            "state": "applied",
            "journal_id": journal,
            "amount": -amount,
            "is_reconciled": True,
        },
    ], lines
    counterparts = mpesa.sql.all(
        "SELECT aml.account_id, aml.amount_currency, aml.reconciled,"
        " aml.full_reconcile_id IS NOT NULL"
        " FROM account_move_line aml JOIN account_journal j ON j.id = aml.journal_id"
        " WHERE aml.move_id = ANY(%s) AND aml.account_id <> j.default_account_id"
        " ORDER BY aml.amount_currency",
        [moves],
    )
    assert counterparts == [
        (account_id, -amount, True, True),
        (account_id, amount, True, True),
    ], counterparts
    cleared_together = mpesa.sql.scalar(
        "SELECT count(DISTINCT full_reconcile_id) FROM account_move_line"
        " WHERE move_id = ANY(%s) AND account_id = %s",
        [moves, account_id],
    )
    assert cleared_together == 1, "the money in and out cleared against each other"
    assert mpesa.check_books() == []


def test_unidentified_payment_refunded_by_reversal(mpesa):
    """A paybill payment nobody can identify waits in the queue; the M-PESA manager
    sends it back with Refund (Reversal). M-PESA's result, applied by another worker,
    books the money out, and the pair is cleared on the company's liquidity transfer
    account (no customer)."""
    code = mpesa.paybill_payment("254711000830", 250, "NOSUCHREF")
    exception = mpesa.open_exception("r.name = %s", [code])
    assert exception["kind"] == "unknown_reference", exception

    mpesa.manager()("mpesa.exception", "action_request_reversal", [exception["id"]])
    wait_until(
        lambda: _exception(mpesa, exception["id"])["state"] == "resolved",
        60,
        "M-PESA's result to close the exception",
    )
    mpesa.settle_inbox()

    assert _exception(mpesa, exception["id"]) == {
        "state": "resolved",
        "resolution": "reversed",
    }
    assert mpesa.emulator.state.payments[code]["status"] == "Reversed"
    transfer_account = mpesa.sql.scalar(
        "SELECT c.transfer_account_id FROM account_journal j"
        " JOIN res_company c ON c.id = j.company_id WHERE j.id = %s",
        [mpesa.journal_id],
    )
    _assert_pair_cleared(mpesa, code, 250, transfer_account)


def test_reversal_m_pesa_had_done_is_booked_from_the_statement(mpesa):
    """A customer's invoice paid on the paybill, then reversed on the organisation's
    portal: the manager's Request Reversal gets R000001 ("already reversed"), the
    invoice reopens and the money out waits in the queue for the statement's row. The
    reconciler imports the statement: the row books the money out, the pair is cleared
    on the customer's receivable, and the exception closes."""
    invoice_id, invoice_name = mpesa.create_invoice(300)
    code = mpesa.paybill_payment(PHONE, 300, invoice_name)
    mpesa.post_process()
    (receipt,) = mpesa.receipts(code)
    mpesa.assert_books([receipt["transaction_id"]], [invoice_id])
    reversal = mpesa.emulator.reverse_payment(code)

    mpesa.manager()("mpesa.receipt", "action_request_reversal", [receipt["id"]])
    exception = mpesa.open_exception(
        "r.name = %s AND e.kind = 'reversal_unbooked'", [code]
    )
    mpesa.settle_inbox()
    assert mpesa.invoice(invoice_id)["payment_state"] == "not_paid"
    waiting = [d for d in mpesa.check_books() if d[1] == code]
    assert waiting == [[DEFAULT_SHORTCODE, code, MONEY_OUT_UNBOOKED]], waiting

    mpesa.import_reversal_row(reversal, code, 300)
    assert _exception(mpesa, exception["id"]) == {
        "state": "resolved",
        "resolution": "reversed",
    }
    [partner] = mpesa.rpc(
        "res.partner", "read", [mpesa.partner_id], ["property_account_receivable_id"]
    )
    _assert_pair_cleared(mpesa, code, 300, partner["property_account_receivable_id"][0])
    invoice = mpesa.invoice(invoice_id)
    assert (invoice["payment_state"], invoice["amount_residual"]) == ("not_paid", 300)
