"""The customer's STK push flow against a real multi-worker Odoo."""

import json

from .mpesa_live import PHONE_LOCAL


def test_portal_invoice_paid_by_stk_push(mpesa):
    """Portal invoice -> /invoice/transaction -> /payment/mpesa/stk_push -> the emulator
    calls back into another worker -> done; post-processing pays the invoice."""
    invoice_id, tx = mpesa.pay_invoice_by_push(2500, PHONE_LOCAL)
    assert tx["state"] == "pending", tx
    assert tx["mpesa_checkout_request_id"]

    (delivery,) = mpesa.stk_deliveries(tx, 1)
    assert delivery.status == 200, delivery.response_text
    assert json.loads(delivery.response_text) == {
        "ResultCode": 0,
        "ResultDesc": "Accepted",
    }
    tx = mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    code = tx["mpesa_receipt_code"]
    assert code
    sent_code = json.loads(delivery.body)["Body"]["stkCallback"]["CallbackMetadata"]
    assert {"Name": "MpesaReceiptNumber", "Value": code} in sent_code["Item"]

    mpesa.post_process()
    tx = mpesa.tx(tx_id=tx["id"])
    assert tx["is_post_processed"] and tx["payment_id"], tx
    invoice = mpesa.invoice(invoice_id)
    assert invoice["payment_state"] in ("paid", "in_payment"), invoice
    assert invoice["amount_residual"] == 0, invoice

    (receipt,) = mpesa.receipts(code)
    assert receipt["transaction_id"] == tx["id"]
    assert receipt["amount"] == 2500
    (line,) = mpesa.statement_lines(code)
    assert line["mpesa_receipt_id"] == receipt["id"]
    assert line["amount"] == 2500
    # The statement line met the online payment: the invoice is paid, not in payment.
    assert line["is_reconciled"], line
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    assert mpesa.callback_states("transaction_id = %s", [tx["id"]]) == {"processed": 1}
    # As an accountant checks it, on a server where OCA's automatic reconciliation
    # runs (it is off in Odoo's test mode): booked once.
    mpesa.assert_books([tx["id"]], [invoice_id])


def test_invoice_paid_in_two_instalments(mpesa):
    """A payment link for part of the invoice, then the rest: the last instalment
    equals the invoice's balance, which OCA's Perfect Match rule would take."""
    invoice_id, _name = mpesa.create_invoice(3000)
    tx_ids = []
    for amount in (1000, 2000):
        client, processing = mpesa.portal_transaction(invoice_id, amount=amount)
        assert mpesa.stk_push(client, processing)["state"] in ("pending", "done")
        tx = mpesa.tx(processing["reference"])
        mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
        mpesa.post_process()
        tx_ids.append(tx["id"])
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books(tx_ids, [invoice_id])


def test_callback_before_api_response(mpesa):
    """Daraja calls back before answering our push: the callback (another worker) cannot
    see the CheckoutRequestID yet and waits; the push's post-commit re-check completes
    the payment without any cron."""
    phone = "254711000300"
    mpesa.emulator.set_scenario(phone, before_response=True)
    _invoice_id, tx = mpesa.pay_invoice_by_push(1500, phone)

    (delivery,) = mpesa.stk_deliveries(tx, 1, timeout=10)
    assert delivery.status == 200, delivery.response_text
    tx = mpesa.wait_tx_state(tx["id"], ("done",), timeout=10)
    assert tx["mpesa_receipt_code"]
    # Stored while the push was not committed. Processed by the push's post-commit
    # re-check, after one try by the inbox job (unmatched) if the job reached it
    # first: one or two attempts, never an error, never twice.
    ((state, attempts),) = mpesa.sql.all(
        "SELECT state, attempts FROM mpesa_callback WHERE transaction_id = %s",
        [tx["id"]],
    )
    assert (state, attempts in (1, 2)) == ("processed", True), (state, attempts)
    assert len(mpesa.receipts(tx["mpesa_receipt_code"])) == 1
