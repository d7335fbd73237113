"""The reconciler settles paybill payments from the exception queue, as a user of
that role, for customers known by phone only (no email address), on a real
multi-worker server: OCA's automatic reconciliation runs on the bank line, as in
production."""

from .mpesa_live import KES_PER_USD, mistyped


def _payment_waiting_in_the_queue(mpesa, phone, paid, *amounts):
    """A customer of ``phone`` with an open invoice per amount pays ``paid`` on the
    paybill, typing no account number: the payment waits in the queue.
    Returns (invoice ids, receipt code, exception id)."""
    partner_id = mpesa.phone_only_customer(phone)
    invoice_ids = [
        mpesa.create_invoice(amount, partner_id=partner_id)[0] for amount in amounts
    ]
    code = mpesa.paybill_payment(phone, paid, "")
    exception = mpesa.open_exception("r.name = %s", [code])
    return invoice_ids, code, exception["id"]


def _allocate(reconciler, exception_id, invoice_amounts=None):
    """The reconciler's Allocate wizard, as its form opens and saves it: with what it
    proposes, or with ``invoice_amounts`` ({invoice id: amount}) typed instead.
    Returns what it proposed."""
    context = {"default_exception_id": exception_id}
    wizard = reconciler(
        "mpesa.exception.allocate",
        "default_get",
        ["exception_id", "partner_id", "line_ids"],
        context=context,
    )
    proposed = {cmd[2]["invoice_id"]: cmd[2]["amount"] for cmd in wizard["line_ids"]}
    if invoice_amounts is not None:
        wizard["line_ids"] = [
            (0, 0, {"invoice_id": invoice_id, "amount": amount})
            for invoice_id, amount in invoice_amounts.items()
        ]
    wizard_id = reconciler(
        "mpesa.exception.allocate", "create", wizard, context=context
    )
    reconciler("mpesa.exception.allocate", "action_allocate", [wizard_id])
    return proposed


def _exception(mpesa, exception_id):
    return mpesa.sql.one(
        "SELECT state, resolution FROM mpesa_exception WHERE id = %s", [exception_id]
    )


def _assert_allocated(mpesa, exception_id, code, invoice_ids):
    """Once post-processed: the exception resolved as allocated, one payment of the
    receipt's money per invoice, and the books as an accountant checks them."""
    mpesa.post_process()
    assert _exception(mpesa, exception_id) == {
        "state": "resolved",
        "resolution": "allocated",
    }
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == len(invoice_ids), tx_ids
    mpesa.assert_books(tx_ids, invoice_ids)


def test_payment_without_account_number_allocated_to_two_invoices(mpesa):
    """The reconciler takes the customer the phone suggests and allocates the
    payment as the wizard proposes. Each invoice is paid by its own payment, the one
    bank line meets both, nothing is owed."""
    (first, second), code, exception_id = _payment_waiting_in_the_queue(
        mpesa, "254711000840", 1000, 600, 400
    )
    reconciler = mpesa.reconciler()
    reconciler("mpesa.exception", "action_use_suggested_partner", [exception_id])
    assert _allocate(reconciler, exception_id) == {first: 600, second: 400}
    _assert_allocated(mpesa, exception_id, code, [first, second])


def test_allocation_undone_and_made_again(mpesa):
    """The reconciler allocated the payment to the wrong invoices, undoes it (Undo
    and Reopen) and allocates it to the right one: the first payments are
    cancelled, those invoices owe everything again, the bank line meets only the
    new payment, and the books check is clean."""
    (first, second, right), code, exception_id = _payment_waiting_in_the_queue(
        mpesa, "254711000850", 1000, 600, 400, 1000
    )
    reconciler = mpesa.reconciler()
    reconciler("mpesa.exception", "action_use_suggested_partner", [exception_id])
    _allocate(reconciler, exception_id, {first: 600, second: 400})
    mpesa.post_process()
    assert len(mpesa.payments_of(code)) == 2

    reconciler("mpesa.exception", "action_undo_and_reopen", [exception_id])
    assert _exception(mpesa, exception_id)["state"] == "open"
    for invoice_id, amount in ((first, 600), (second, 400)):
        invoice = mpesa.invoice(invoice_id)
        assert (invoice["payment_state"], invoice["amount_residual"]) == (
            "not_paid",
            amount,
        ), invoice
    assert mpesa.payments_of(code) == [], "the first payments are cancelled"

    _allocate(reconciler, exception_id, {right: 1000})
    _assert_allocated(mpesa, exception_id, code, [right])


def test_payment_with_a_mistyped_account_number_matched_by_suggestion(mpesa):
    """The customer mistypes one digit of the invoice's number. The reconciler asks
    for matches on the exception and accepts the best one: the invoice is paid by
    that payment, booked once."""
    phone = "254711000860"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, invoice_name = mpesa.create_invoice(1300, partner_id=partner_id)
    code = mpesa.paybill_payment(phone, 1300, mistyped(invoice_name.replace("/", "")))
    exception_id = mpesa.open_exception("r.name = %s", [code])["id"]
    best = mpesa.best_suggestion(exception_id)
    assert (best["res_model"], best["res_id"]) == ("account.move", invoice_id), best
    reconciler = mpesa.reconciler()
    reconciler("mpesa.match.suggestion", "action_accept", [best["id"]])
    _assert_allocated(mpesa, exception_id, code, [invoice_id])


def test_payment_kept_as_the_customers_credit(mpesa):
    """No invoice is open: the reconciler keeps the payment as the customer's
    credit. One payment, not matched with any invoice; its bank line reconciled with
    it; the customer's receivable is minus what they paid; books check clean."""
    (), code, exception_id = _payment_waiting_in_the_queue(mpesa, "254711000870", 700)
    reconciler = mpesa.reconciler()
    reconciler("mpesa.exception", "action_use_suggested_partner", [exception_id])
    reconciler("mpesa.exception", "action_keep_as_credit", [exception_id])
    mpesa.post_process()

    assert _exception(mpesa, exception_id)["state"] == "resolved"
    mpesa.assert_books(mpesa.payments_of(code), [], credit=700)


def test_payment_allocated_to_an_invoice_in_the_companys_dollars(mpesa):
    """The live company keeps its books in USD. An invoice of $10 (KES 1,290) and a
    paybill payment of KES 1,290 typed without account number: the wizard proposed
    KES 10.00 (the invoice's dollars read as shillings), so allocated as proposed
    the invoice stayed unpaid and KES 1,280 became credit. It proposes KES 1,290:
    the invoice is paid by the one payment, booked once."""
    phone = "254711000855"  # its own number: a suggestion needs one customer
    partner_id = mpesa.phone_only_customer(phone)
    usd_id = mpesa.rpc.xmlid("base.USD")
    invoice_id, _name = mpesa.create_invoice(
        10, partner_id=partner_id, currency_id=usd_id
    )
    code = mpesa.paybill_payment(phone, 10 * KES_PER_USD, "")
    exception_id = mpesa.open_exception("r.name = %s", [code])["id"]
    reconciler = mpesa.reconciler()
    reconciler("mpesa.exception", "action_use_suggested_partner", [exception_id])

    assert _allocate(reconciler, exception_id) == {invoice_id: 10 * KES_PER_USD}
    mpesa.post_process()
    assert _exception(mpesa, exception_id) == {
        "state": "resolved",
        "resolution": "allocated",
    }
    [tx_id] = mpesa.payments_of(code)
    [row] = mpesa.books_of_payments([tx_id])
    assert {
        key: row[key]
        for key in ("payment_state", "outstanding_cleared", "line_reconciled")
    } == {"payment_state": "paid", "outstanding_cleared": True, "line_reconciled": True}
    assert not row["line_on_receivable"], row
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    # Invoice in dollars, payment in shillings: nothing owed in the company's dollars.
    owed = mpesa.sql.scalar(
        "SELECT coalesce(sum(aml.balance), 0) FROM account_move_line aml"
        " JOIN account_account acc ON acc.id = aml.account_id"
        " WHERE acc.account_type = 'asset_receivable' AND aml.parent_state = 'posted'"
        " AND aml.partner_id = %s",
        [partner_id],
    )
    assert abs(owed) < 0.005, owed
    assert mpesa.check_books() == []
