"""Customers paying in the ways the books find hardest, on a real multi-worker
server (OCA's automatic reconciliation runs on every bank line, as in production;
Odoo's test mode switches it off): a contact person paying the company's invoice,
an invoice partly paid by bank transfer first, a second browser tab after the
first prompt was paid, and an overpayment's credit used on the next invoice."""

from .harness import http, wait_until
from .mpesa_live import PHONE_LOCAL
from .test_live_allocation import _allocate


def _paid_from_the_portal(mpesa, invoice_id, phone=PHONE_LOCAL):
    """The customer pays what the invoice still owes from its portal page by STK
    push; returns the transaction's id once post-processed."""
    client, processing = mpesa.portal_transaction(invoice_id)
    assert mpesa.stk_push(client, processing, phone)["state"] in ("pending", "done")
    tx = mpesa.tx(processing["reference"])
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.post_process()
    return tx["id"]


def test_contact_person_pays_the_companys_invoice(mpesa):
    """The invoice is addressed to a contact person of a company customer; its
    receivable is on the company (the commercial partner). The contact pays it from
    the portal by STK push: the payment is the company's, matched with its bank
    line, the invoice paid, booked once."""
    company_id = mpesa.rpc(
        "res.partner", "create", {"name": "Jua Kali Traders Ltd", "is_company": True}
    )
    contact_id = mpesa.rpc(
        "res.partner",
        "create",
        {"name": "Achieng Otieno", "parent_id": company_id, "mobile": "0711000910"},
    )
    invoice_id, _name = mpesa.create_invoice(1900, partner_id=contact_id)
    receivable_partners = mpesa.sql.all(
        "SELECT DISTINCT aml.partner_id FROM account_move_line aml"
        " JOIN account_account acc ON acc.id = aml.account_id"
        " WHERE aml.move_id = %s AND acc.account_type = 'asset_receivable'",
        [invoice_id],
    )
    assert receivable_partners == [(company_id,)], receivable_partners

    tx_id = _paid_from_the_portal(mpesa, invoice_id, "254711000910")

    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    payment_partner = mpesa.sql.scalar(
        "SELECT p.partner_id FROM account_payment p"
        " JOIN payment_transaction tx ON tx.payment_id = p.id WHERE tx.id = %s",
        [tx_id],
    )
    assert payment_partner == company_id
    mpesa.assert_books([tx_id], [invoice_id])


def test_rest_paid_by_m_pesa_after_a_bank_transfer(mpesa):
    """The accountant registers a bank transfer of 1,000 on an invoice of 3,000 in
    the company's ordinary bank journal (account.payment.register, as its form
    does); the customer pays the other 2,000 from the portal by STK push. The
    invoice is paid; the M-PESA payment is matched with its bank line, not the
    receivable, and the receivable over the invoice and both payments is 0."""
    bank_id = mpesa.rpc(
        "account.journal",
        "create",
        {"name": "Equity Bank KES", "code": "EQKS", "type": "bank"},
    )
    mpesa.rpc("account.journal", "write", [bank_id], {"currency_id": mpesa.kes_id})
    invoice_id, _name = mpesa.create_invoice(3000)
    clerk = mpesa.accountant()
    context = {"active_model": "account.move", "active_ids": [invoice_id]}
    wizard_id = clerk(
        "account.payment.register",
        "create",
        {"amount": 1000, "journal_id": bank_id, "currency_id": mpesa.kes_id},
        context=context,
    )
    clerk(
        "account.payment.register",
        "action_create_payments",
        [wizard_id],
        context=context,
    )
    [transfer_move] = mpesa.sql.all(
        "SELECT p.move_id FROM account_payment p WHERE p.journal_id = %s", [bank_id]
    )[0]
    invoice = mpesa.invoice(invoice_id)
    assert (invoice["payment_state"], invoice["amount_residual"]) == ("partial", 2000)

    tx_id = _paid_from_the_portal(mpesa, invoice_id)

    assert mpesa.tx(tx_id=tx_id)["amount"] == 2000
    assert mpesa.invoice(invoice_id)["amount_residual"] == 0
    mpesa.assert_books([tx_id], [invoice_id, transfer_move])


def test_second_tab_after_the_first_prompt_was_paid(mpesa):
    """Two browser tabs on one invoice, each with its transaction. The customer
    pays the first tab's prompt; its callback has not come yet when the second tab
    asks for a prompt. M-PESA is asked about the first: paid, so the second tab
    sends no prompt and is cancelled, saying so. The first's callback then books the
    money once; nothing is taken or booked twice."""
    phone = "254711000920"
    mpesa.emulator.set_scenario(phone, no_callback=True)
    invoice_id, _name = mpesa.create_invoice(1600)
    first_tab, second_tab = (mpesa.portal_transaction(invoice_id) for _tab in "ab")
    assert mpesa.stk_push(*first_tab, phone)["state"] == "pending"
    first = mpesa.tx(first_tab[1]["reference"])
    path, body = mpesa.stk_callback(first)  # paid on the phone; callback not sent

    answer = mpesa.stk_push(*second_tab, phone)

    assert answer["state"] == "cancel", answer
    assert "paid already by the earlier payment request" in answer["message"]
    prompts = [p for p in mpesa.emulator.prompts.values() if p.phone == phone]
    assert len(prompts) == 1, "one prompt only reached the phone"
    second = mpesa.tx(second_tab[1]["reference"])
    assert (second["state"], second["payment_id"]) == ("cancel", None), second
    # The callback M-PESA had not sent yet arrives: the receipt and its bank line.
    response = http().post(
        mpesa.url + path,
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    mpesa.settle_inbox()
    wait_until(
        lambda: mpesa.tx(tx_id=first["id"])["mpesa_receipt_code"],
        30,
        "the receipt code",
    )
    mpesa.post_process()
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books([first["id"]], [invoice_id])


def test_overpayments_credit_used_on_the_next_invoice(mpesa):
    """A paybill payment of 1,500 naming an invoice of 1,000: an Overpaid
    exception. The reconciler allocates as proposed (1,000 to the invoice, the rest
    kept as credit); later the accountant uses that credit on the customer's next
    invoice of 500 (Add on the invoice's outstanding credits). Both invoices paid,
    each payment matched with the bank line, nothing owed, books check clean."""
    phone = "254711000930"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, invoice_name = mpesa.create_invoice(1000, partner_id=partner_id)
    code = mpesa.paybill_payment(phone, 1500, invoice_name)
    exception = mpesa.open_exception("r.name = %s", [code])
    assert (exception["kind"], exception["expected_amount"]) == ("overpaid", 1000)
    _allocate(mpesa.reconciler(), exception["id"])
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 2, tx_ids
    mpesa.assert_books(tx_ids, [invoice_id], credit=500)

    next_id, _name = mpesa.create_invoice(500, partner_id=partner_id)
    [credit_line] = mpesa.sql.all(
        "SELECT aml.id FROM account_move_line aml"
        " JOIN account_account acc ON acc.id = aml.account_id"
        " JOIN account_payment p ON p.move_id = aml.move_id"
        " JOIN payment_transaction tx ON tx.payment_id = p.id"
        " WHERE tx.id = ANY(%s) AND acc.account_type = 'asset_receivable'"
        " AND NOT aml.reconciled",
        [tx_ids],
    )[0]
    mpesa.accountant()(
        "account.move", "js_assign_outstanding_line", [next_id], credit_line
    )

    assert mpesa.invoice(next_id)["payment_state"] == "paid"
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books(tx_ids, [invoice_id, next_id])
