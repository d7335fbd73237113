"""Safaricom delivers the same notification many times at once: four workers race on
it in separate transactions. One payment must come out, whatever the interleaving."""

import json
from collections import Counter

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
COPIES = 100


def _all_accepted(results):
    statuses = Counter(status for status, _text in results)
    refused = [(status, text[:200]) for status, text in results if status != 200]
    assert statuses == {200: len(results)}, (dict(statuses), refused[:5])
    assert {text for _status, text in results} == {json.dumps(ACCEPTED)}


def _recovered(mpesa, where, params, record_property, label):
    """Callback states once the recovery job had its turn. Bodies left "received"
    (retries exhausted) or "unmatched" are the job's by design; "error" is not: it
    means an exception escaped the processing of a well-formed notification."""
    errors = mpesa.sql.all(
        f"SELECT id, error FROM mpesa_callback WHERE ({where}) AND state = 'error'",
        params,
    )
    before = mpesa.recover_stuck_callbacks(where, params)
    record_property(f"{label}_states_before_recovery", dict(before))
    assert sum(before.values()) == COPIES, f"bodies stored: {dict(before)}"
    assert not before.get("error"), f"{dict(before)}; errors: {errors[:3]}"
    return mpesa.callback_states(where, params)


def test_concurrent_identical_stk_callbacks(mpesa, record_property):
    """100 identical success callbacks at once for one push: one receipt, one paid
    transaction, one statement line, 100 stored bodies (1 processed, 99 duplicates)."""
    phone = "254711000100"
    # The customer pays; the callback is kept back and then sent 100 times at once.
    mpesa.emulator.set_scenario(phone, no_callback=True)
    invoice_id, tx = mpesa.pay_invoice_by_push(3100, phone)
    path, body = mpesa.stk_callback(tx)

    _all_accepted(mpesa.fire(path, body, COPIES))
    where, params = "transaction_id = %s", [tx["id"]]
    states = _recovered(mpesa, where, params, record_property, "stk")
    assert states == {"processed": 1, "duplicate": COPIES - 1}
    assert (
        mpesa.sql.scalar(
            "SELECT count(*) FROM mpesa_callback WHERE transaction_id = %s AND body = %s",
            [tx["id"], body.decode()],
        )
        == COPIES
    ), "every body is stored exactly as sent"

    tx = mpesa.tx(tx_id=tx["id"])
    assert tx["state"] == "done", tx
    assert not tx["mpesa_needs_review"], tx
    code = tx["mpesa_receipt_code"]
    assert (
        code
        == json.loads(body)["Body"]["stkCallback"]["CallbackMetadata"]["Item"][1][
            "Value"
        ]
    )
    assert (
        mpesa.sql.scalar(
            "SELECT count(*) FROM payment_transaction WHERE mpesa_receipt_code = %s",
            [code],
        )
        == 1
    )
    (receipt,) = mpesa.receipts(code)
    assert receipt["transaction_id"] == tx["id"]
    assert len(mpesa.statement_lines(code)) == 1

    mpesa.post_process()
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    assert (
        mpesa.sql.scalar(
            "SELECT count(*) FROM account_payment WHERE payment_transaction_id = %s",
            [tx["id"]],
        )
        == 1
    )
    mpesa.assert_books([tx["id"]], [invoice_id])


def test_concurrent_identical_c2b_confirmations(mpesa, record_property):
    """A paybill payment for an invoice number, confirmed 100 times at once: one
    receipt, one transaction, one statement line; the invoice is paid once."""
    phone, amount = "254711000200", 1800
    invoice_id, invoice_name = mpesa.create_invoice(amount)
    # The customer pays on the phone menu (recorded by the emulated M-PESA); the
    # notifications are then sent by hand: one validation, 100 identical confirmations.
    mpesa.emulator.set_scenario(phone, no_callback=True)
    trans_id = mpesa.emulator.c2b_pay("174379", phone, amount, invoice_name)
    body = mpesa.c2b_notification(trans_id, phone, amount, invoice_name)

    ((status, answer),) = mpesa.fire(mpesa.c2b_url("validation"), body, 1)
    assert (status, json.loads(answer)) == (
        200,
        {"ResultCode": "0", "ResultDesc": "Accepted"},
    )
    _all_accepted(mpesa.fire(mpesa.c2b_url("confirmation"), body, COPIES))

    where = "kind = 'c2b_confirmation' AND body = %s"
    params = [body.decode()]
    states = _recovered(mpesa, where, params, record_property, "c2b")
    assert states == {"processed": 1, "duplicate": COPIES - 1}
    # Booked once M-PESA confirms it (one Transaction Status request).
    assert mpesa.wait_confirmed(trans_id) == "verified"

    (receipt,) = mpesa.receipts(trans_id)
    assert receipt["state"] == "applied", receipt
    txs = mpesa.sql.dicts(
        "SELECT id, state FROM payment_transaction WHERE mpesa_receipt_code = %s",
        [trans_id],
    )
    assert len(txs) == 1, txs
    assert txs[0]["state"] == "done"
    assert receipt["transaction_id"] == txs[0]["id"]
    (line,) = mpesa.statement_lines(trans_id)
    assert line["amount"] == amount

    mpesa.post_process()
    invoice = mpesa.invoice(invoice_id)
    assert invoice["payment_state"] == "paid", invoice
    assert (
        mpesa.sql.scalar(
            "SELECT count(*) FROM account_payment WHERE payment_transaction_id = %s",
            [txs[0]["id"]],
        )
        == 1
    )
    mpesa.assert_books([txs[0]["id"]], [invoice_id])
