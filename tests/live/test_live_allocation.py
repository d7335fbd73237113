"""The accountant splits one paybill payment over two invoices from the exception
queue, on a real multi-worker server: one bank line, two payments, and OCA's
automatic reconciliation running on that line, as in production."""

from .mpesa_live import PHONE


def test_payment_without_account_number_allocated_to_two_invoices(mpesa):
    """The customer pays two invoices at once on the paybill and types no account
    number. The payment waits in the queue; the reconciler takes the customer the
    phone suggests and allocates it with the wizard, as the form does. Each invoice
    is paid by its own payment, the one bank line meets both, nothing is owed."""
    first, _name = mpesa.create_invoice(600)
    second, _name = mpesa.create_invoice(400)
    code = mpesa.paybill_payment(PHONE, 1000, "")
    exception = mpesa.open_exception("r.name = %s", [code])
    reconciler = mpesa.reconciler()
    reconciler("mpesa.exception", "action_use_suggested_partner", [exception["id"]])
    context = {"default_exception_id": exception["id"]}
    wizard = reconciler(
        "mpesa.exception.allocate",
        "default_get",
        ["exception_id", "partner_id", "line_ids"],
        context=context,
    )
    assert wizard["partner_id"] == mpesa.partner_id, wizard
    proposed = {cmd[2]["invoice_id"]: cmd[2]["amount"] for cmd in wizard["line_ids"]}
    assert proposed == {first: 600, second: 400}, proposed
    wizard_id = reconciler(
        "mpesa.exception.allocate", "create", wizard, context=context
    )
    reconciler("mpesa.exception.allocate", "action_allocate", [wizard_id])
    mpesa.post_process()

    assert mpesa.sql.one(
        "SELECT state, resolution FROM mpesa_exception WHERE id = %s",
        [exception["id"]],
    ) == {"state": "resolved", "resolution": "allocated"}
    tx_ids = [
        tx_id
        for (tx_id,) in mpesa.sql.all(
            "SELECT tx.id FROM payment_transaction tx"
            " JOIN mpesa_receipt r ON r.id = tx.mpesa_source_receipt_id"
            " WHERE r.name = %s ORDER BY tx.id",
            [code],
        )
    ]
    assert len(tx_ids) == 2, tx_ids
    mpesa.assert_books(tx_ids, [first, second])
