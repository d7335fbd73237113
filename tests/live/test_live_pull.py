"""A paybill payment Safaricom never notifies, found by the pull job (Daraja's Pull
Transactions API) or by the reconciler's statement import, on a real multi-worker
server, where OCA's automatic reconciliation runs on the bank line the row makes, as
in production."""

import datetime as dt
from zoneinfo import ZoneInfo

from daraja_emulator import DEFAULT_SHORTCODE

from .harness import wait_until


def test_paybill_payment_without_its_callback_is_booked_by_the_pull_job(mpesa):
    """The customer pays an invoice on the paybill; M-PESA takes the money but its
    confirmation never reaches us. The pull job (registered from the provider form)
    brings the payment in: it pays the invoice its account number names, booked
    once, as an accountant checks it."""
    mpesa.set_provider({"mpesa_pull_nominated_number": "0722 000 000"})
    mpesa.rpc("payment.provider", "action_mpesa_register_pull", [mpesa.provider_id])
    invoice_id, invoice_name = mpesa.create_invoice(1250)
    code = _paid_without_callback(mpesa, "254711000660", 1250, invoice_name)

    mpesa.rpc.run_cron("mpesa_reconciliation.cron_mpesa_pull")
    mpesa.settle_inbox()
    mpesa.post_process()

    _assert_paid_by(mpesa, code, invoice_id)


def test_paybill_payment_without_its_callback_is_booked_from_the_statement(mpesa):
    """The same payment, from a customer known by phone only, found by the
    reconciler who imports the org portal's statement: it pays the invoice its
    account number names, booked once."""
    phone = "254711000890"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, invoice_name = mpesa.create_invoice(1450, partner_id=partner_id)
    code = _paid_without_callback(mpesa, phone, 1450, invoice_name)
    when = dt.datetime.now(ZoneInfo("Africa/Nairobi")).strftime("%d-%m-%Y %H:%M:%S")
    mpesa.import_statement(
        f'{code},{when},{when},Pay Bill from 2547****890,Completed,"1,450.00",,,,'
        f"Pay Bill Online,2547****890 - JOHN,,{invoice_name}\n"
    )
    mpesa.settle_inbox()
    mpesa.post_process()
    _assert_paid_by(mpesa, code, invoice_id)


def _paid_without_callback(mpesa, phone, amount, account):
    """M-PESA takes the money but never sends its confirmation: the receipt code."""
    mpesa.emulator.set_scenario(phone, no_callback=True)
    code = mpesa.emulator.c2b_pay(DEFAULT_SHORTCODE, phone, amount, account)
    wait_until(lambda: code in mpesa.emulator.payments, 10, "M-PESA to take the money")
    assert mpesa.receipts(code) == [], "no confirmation was sent"
    return code


def _assert_paid_by(mpesa, code, invoice_id):
    """The receipt applied, the invoice paid by its one payment, booked once."""
    (receipt,) = mpesa.receipts(code)
    assert receipt["state"] == "applied", receipt
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    mpesa.assert_books(tx_ids, [invoice_id])
