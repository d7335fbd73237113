"""A paybill payment Safaricom never notifies, found by the pull job (Daraja's Pull
Transactions API) on a real multi-worker server, where OCA's automatic reconciliation
runs on the bank line the pulled row makes, as in production."""

from daraja_emulator import DEFAULT_SHORTCODE

from .harness import wait_until


def test_paybill_payment_without_its_callback_is_booked_by_the_pull_job(mpesa):
    """The customer pays an invoice on the paybill; M-PESA takes the money but its
    confirmation never reaches us. The pull job (registered from the provider form)
    brings the payment in: it pays the invoice its account number names, booked
    once, as an accountant checks it."""
    mpesa.set_provider({"mpesa_pull_nominated_number": "0722 000 000"})
    mpesa.rpc("payment.provider", "action_mpesa_register_pull", [mpesa.provider_id])
    phone, amount = "254711000660", 1250
    invoice_id, invoice_name = mpesa.create_invoice(amount)
    mpesa.emulator.set_scenario(phone, no_callback=True)
    code = mpesa.emulator.c2b_pay(DEFAULT_SHORTCODE, phone, amount, invoice_name)
    wait_until(lambda: code in mpesa.emulator.payments, 10, "M-PESA to take the money")
    assert mpesa.receipts(code) == [], "no confirmation was sent"

    mpesa.rpc.run_cron("mpesa_reconciliation.cron_mpesa_pull")
    mpesa.settle_inbox()
    mpesa.post_process()

    (receipt,) = mpesa.receipts(code)
    assert receipt["state"] == "applied", receipt
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    tx_ids = [
        tx_id
        for (tx_id,) in mpesa.sql.all(
            "SELECT id FROM payment_transaction WHERE mpesa_source_receipt_id = %s",
            [receipt["id"]],
        )
    ]
    assert len(tx_ids) == 1, tx_ids
    mpesa.assert_books(tx_ids, [invoice_id])
