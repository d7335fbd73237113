"""Sales orders paid by STK push from the order's portal page, on a real multi-worker
Odoo with automatic invoicing on (``sale.automatic_invoice``): post-processing (a cron
worker) confirms the order, invoices it and pays the invoice, while OCA's automatic
reconciliation runs on the M-PESA bank line, as in production."""

import pytest

from .mpesa_live import KES_PER_USD, mistyped


@pytest.fixture
def automatic_invoice(mpesa):
    mpesa.rpc("ir.config_parameter", "set_param", "sale.automatic_invoice", "True")
    yield
    mpesa.rpc("ir.config_parameter", "set_param", "sale.automatic_invoice", "False")


def _quotation(
    mpesa, price, prepayment_percent=1.0, currency_id=None, staff=None, **values
):
    """A quotation the customer must pay online (a deposit of ``prepayment_percent``
    confirms it), for one product invoiced on order, priced in KES (or
    ``currency_id``); created by the administrator (or ``staff``, XML-RPC as that
    user); ``values`` for the order."""
    product_id = mpesa.rpc(
        "product.product",
        "create",
        {"name": "Solar lamp", "type": "consu", "invoice_policy": "order"},
    )
    pricelist_id = mpesa.rpc(
        "product.pricelist",
        "create",
        {"name": "Quotations", "currency_id": currency_id or mpesa.kes_id},
    )
    return (staff or mpesa.rpc)(
        "sale.order",
        "create",
        {
            "partner_id": mpesa.partner_id,
            **values,
            "pricelist_id": pricelist_id,
            "require_signature": False,
            "require_payment": True,
            "prepayment_percent": prepayment_percent,
            "order_line": [
                (
                    0,
                    0,
                    {
                        "product_id": product_id,
                        "price_unit": price,
                        "tax_id": [(6, 0, [])],
                    },
                )
            ],
        },
    )


def _pay_on_the_order_page(mpesa, order_id, amount):
    """What the order's portal page does: open it, create the M-PESA transaction
    through ``/my/orders/<id>/transaction``, send the prompt; the emulator's customer
    accepts it and Safaricom calls back. Returns the transaction once done."""
    client, processing = mpesa.portal_transaction(
        order_id, amount=amount, model="sale.order"
    )
    assert mpesa.stk_push(client, processing)["state"] in ("pending", "done")
    tx = mpesa.tx(processing["reference"])
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.settle_inbox()
    mpesa.post_process()
    return mpesa.tx(tx_id=tx["id"])


def _invoices_of(mpesa, order_id, state="posted"):
    return [
        row[0]
        for row in mpesa.sql.all(
            "SELECT DISTINCT m.id FROM account_move m"
            " JOIN account_move_line l ON l.move_id = m.id"
            " JOIN sale_order_line_invoice_rel r ON r.invoice_line_id = l.id"
            " JOIN sale_order_line sol ON sol.id = r.order_line_id"
            " WHERE sol.order_id = %s AND m.state = %s ORDER BY m.id",
            [order_id, state],
        )
    ]


def test_order_paid_in_full_from_its_portal_page(mpesa, automatic_invoice):
    """The customer pays the whole quotation: confirmed, invoiced, the invoice paid
    by the M-PESA payment and booked once."""
    order_id = _quotation(mpesa, 4200)
    tx = _pay_on_the_order_page(mpesa, order_id, 4200)
    assert tx["is_post_processed"] and tx["payment_id"], tx

    assert (
        mpesa.sql.scalar("SELECT state FROM sale_order WHERE id = %s", [order_id])
        == "sale"
    )
    (invoice_id,) = _invoices_of(mpesa, order_id)
    invoice = mpesa.invoice(invoice_id)
    assert (invoice["payment_state"], invoice["amount_total"]) == ("paid", 4200)
    mpesa.assert_books([tx["id"]], [invoice_id])


def test_deposit_then_the_balance_from_the_portal_page(mpesa, automatic_invoice):
    """A 40 % deposit confirms the order and is invoiced as a down payment; the
    balance, paid later from the same page, gets the final invoice, which deducts
    the deposit. Each payment pays its own invoice; the customer owes nothing and
    the books check is clean."""
    order_id = _quotation(mpesa, 5000, prepayment_percent=0.4)
    deposit = _pay_on_the_order_page(mpesa, order_id, 2000)
    assert (
        mpesa.sql.scalar("SELECT state FROM sale_order WHERE id = %s", [order_id])
        == "sale"
    )
    (down_payment_id,) = _invoices_of(mpesa, order_id)
    assert mpesa.invoice(down_payment_id)["payment_state"] == "paid"

    balance = _pay_on_the_order_page(mpesa, order_id, 3000)
    invoice_ids = _invoices_of(mpesa, order_id)
    assert len(invoice_ids) == 2, invoice_ids
    final = mpesa.invoice(invoice_ids[1])
    assert (final["payment_state"], final["amount_total"]) == ("paid", 3000), final
    mpesa.assert_books([deposit["id"], balance["id"]], invoice_ids)


def test_staff_request_from_an_invoiced_order_pays_its_invoice(mpesa):
    """A salesperson's 'Request M-PESA Payment' on their order already invoiced, for
    a customer known by phone only: the dialog follows the prompt until the money
    is in, and it pays that invoice, not credit beside it while it stays due."""
    salesperson = mpesa.salesperson()
    [salesperson_id] = mpesa.rpc(
        "res.users", "search", [("login", "=", "mpesa_live_salesperson")]
    )
    phone = "254711000880"
    partner_id = mpesa.phone_only_customer(phone)
    order_id = _quotation(mpesa, 1900, partner_id=partner_id, user_id=salesperson_id)
    mpesa.rpc("sale.order", "action_confirm", [order_id])
    mpesa.rpc("sale.order", "write", [order_id], {"require_payment": False})
    # The order's Create Invoice button.
    wizard_id = mpesa.rpc(
        "sale.advance.payment.inv",
        "create",
        {"advance_payment_method": "delivered"},
        context={"active_model": "sale.order", "active_ids": [order_id]},
    )
    mpesa.rpc("sale.advance.payment.inv", "create_invoices", [wizard_id])
    (invoice_id,) = _invoices_of(mpesa, order_id, state="draft")
    mpesa.rpc("account.move", "action_post", [invoice_id])

    action = salesperson("sale.order", "action_mpesa_request_payment", [order_id])
    collection_id = salesperson(
        "mpesa.collection", "create", {}, context=action["context"]
    )
    salesperson("mpesa.collection", "action_send", [collection_id])
    [collection] = salesperson(
        "mpesa.collection", "read", [collection_id], ["transaction_id", "amount"]
    )
    assert collection["amount"] == 1900, collection
    tx_id = collection["transaction_id"][0]
    mpesa.wait_tx_state(tx_id, ("done",), timeout=30)
    # The dialog's poll books the payment at once.
    assert salesperson("mpesa.collection", "mpesa_poll", [collection_id]) == "done"
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books([tx_id], [invoice_id])


def test_mistyped_order_number_settled_by_the_reconcilers_suggestion(mpesa):
    """A customer known by phone only pays a quotation on the paybill and mistypes
    its number. The reconciler accepts the order the suggestions rank first: the
    payment confirms the order and is the customer's credit until it is invoiced,
    matched with its bank line, booked once."""
    phone = "254711000895"
    partner_id = mpesa.phone_only_customer(phone)
    order_id = _quotation(mpesa, 2100, partner_id=partner_id)
    [order] = mpesa.rpc("sale.order", "read", [order_id], ["name"])
    code = mpesa.paybill_payment(phone, 2100, mistyped(order["name"]))
    exception_id = mpesa.open_exception("r.name = %s", [code])["id"]
    best = mpesa.best_suggestion(exception_id)
    assert (best["res_model"], best["res_id"]) == ("sale.order", order_id), best
    reconciler = mpesa.reconciler()
    reconciler("mpesa.match.suggestion", "action_accept", [best["id"]])
    mpesa.post_process()

    assert (
        mpesa.sql.scalar("SELECT state FROM sale_order WHERE id = %s", [order_id])
        == "sale"
    )
    mpesa.assert_books(mpesa.payments_of(code), [], credit=2100)


def _receivable_in_the_companys_currency(mpesa, partner_id):
    """What the customer owes in the books, in the company's currency (dollars on
    the live database): the sum of their posted receivable lines' balances."""
    return mpesa.sql.scalar(
        "SELECT coalesce(sum(aml.balance), 0) FROM account_move_line aml"
        " JOIN account_account acc ON acc.id = aml.account_id"
        " WHERE acc.account_type = 'asset_receivable' AND aml.parent_state = 'posted'"
        " AND aml.partner_id = %s",
        [partner_id],
    )


def test_dollar_quotation_paid_in_two_halves_by_paybill(mpesa):
    """The live company keeps its books in USD. A salesperson's quotation of $10
    (KES 1,290), paid on the paybill with its number in two halves of KES 645: the
    first half was read as $645 paid, which confirmed the quotation, and the second
    half waited for finance as a duplicate ("Order ... is already paid"). Half the
    price leaves it a quotation; the second half is applied to it and confirms it;
    each payment is matched with its bank line, the receivable is down $10."""
    salesperson = mpesa.salesperson()
    phone = "254711000960"  # its own number
    partner_id = mpesa.phone_only_customer(phone)
    usd_id = mpesa.rpc.xmlid("base.USD")
    order_id = _quotation(
        mpesa, 10, currency_id=usd_id, staff=salesperson, partner_id=partner_id
    )
    fields = ["name", "state", "currency_id", "amount_total", "amount_paid"]

    def order():
        [values] = salesperson("sale.order", "read", [order_id], fields)
        return values

    quotation = order()
    assert (quotation["currency_id"][0], quotation["amount_total"]) == (usd_id, 10)
    before = _receivable_in_the_companys_currency(mpesa, partner_id)
    half = 10 * KES_PER_USD / 2  # KES 645

    first = mpesa.paybill_payment(phone, half, quotation["name"])
    mpesa.post_process()
    half_paid = order()
    # Half the price does not confirm the quotation.
    assert half_paid["state"] in ("draft", "sent"), half_paid
    assert half_paid["amount_paid"] == 5, half_paid

    second = mpesa.paybill_payment(phone, half, quotation["name"])
    mpesa.post_process()
    paid = order()
    assert (paid["state"], paid["amount_paid"]) == ("sale", 10), paid

    receipts = mpesa.sql.dicts(
        "SELECT r.name, r.state, r.review_cause, r.sale_order_id,"
        " (SELECT count(*) FROM mpesa_exception e"
        "   WHERE e.receipt_id = r.id AND e.state = 'open') AS open_exceptions"
        " FROM mpesa_receipt r WHERE r.name = ANY(%s) ORDER BY r.id",
        [[first, second]],
    )
    applied = {
        "state": "applied",
        "review_cause": None,
        "sale_order_id": order_id,
        "open_exceptions": 0,
    }
    assert [{key: row[key] for key in applied} for row in receipts] == [applied] * 2
    # The books, the accountant's way: a KES payment per receipt, matched with its
    # bank line (not with the receivable); the receivable in the company's dollars
    # down by exactly $10 (assert_books sums it in the documents' currencies).
    tx_ids = mpesa.payments_of(first) + mpesa.payments_of(second)
    rows = mpesa.books_of_payments(tx_ids)
    matched = {
        "payment_state": "paid",
        "journal_id": mpesa.journal_id,
        "amount": half,
        "line_amount": half,
        "outstanding_cleared": True,
        "line_reconciled": True,
        "line_on_receivable": False,
    }
    assert [{key: row[key] for key in matched} for row in rows] == [matched] * 2
    moved = _receivable_in_the_companys_currency(mpesa, partner_id) - before
    assert abs(moved + 10) < 0.005, moved
    assert mpesa.check_books() == []
