"""A subscription (OCA ``subscription_oca``) paid by M-PESA on a real multi-worker
server: a salesperson signs the customer up, the subscriptions' daily job invoices
the month, and the customer pays on the paybill with the subscription's account
number (SUB00001, printed on every invoice of it) or from the invoice's portal page
by STK push. The inbox job applies the money in a cron worker and OCA's automatic
reconciliation runs on the bank line, as in production: booked once, as an
accountant checks it.

The live company keeps USD and M-PESA takes only KES. ``subscription_oca`` invoices
in the currency of the subscription's sales journal, else the company's: it ignores
the pricelist's (a KES subscription of 1,500 is invoiced USD 1,500; OCA/contract
issue 1431). So the subscription names a KES sales journal (its Other Info tab), the
way OCA advises for a contract invoiced in another currency."""

import pytest


@pytest.fixture(scope="module")
def catalogue(live):
    """What the administrator sets up once: a KES pricelist and sales journal, a
    monthly template invoiced and sent by the daily job, a hosting service."""
    rpc = live.rpc
    return {
        "pricelist_id": rpc(
            "product.pricelist",
            "create",
            {"name": "Kenya (KES)", "currency_id": live.kes_id},
        ),
        "journal_id": rpc(
            "account.journal",
            "create",
            {
                "name": "Sales (KES)",
                "code": "SKES",
                "type": "sale",
                "currency_id": live.kes_id,
            },
        ),
        "template_id": rpc(
            "sale.subscription.template",
            "create",
            {
                "name": "Monthly hosting",
                "code": "HOST",
                "invoicing_mode": "invoice_send",
                "recurring_rule_type": "months",
            },
        ),
        "product_id": rpc(
            "product.product",
            "create",
            {
                "name": "Website hosting (monthly)",
                "type": "service",
                "subscribable": True,
                "taxes_id": [(6, 0, [])],
            },
        ),
    }


def test_paybill_payment_with_the_subscriptions_account_number_is_booked_once(
    mpesa, catalogue
):
    """The subscriber pays the month on the paybill, typing the subscription's
    account number: the receipt names the subscription, pays its open invoice, and
    the money is booked once; the subscription's access stays active."""
    phone = "254711000940"
    subscription_id, invoice_id = _month_invoiced(mpesa, catalogue, 1500, phone)
    account = _subscription(mpesa, subscription_id)["mpesa_account_ref"]

    code = mpesa.paybill_payment(phone, 1500, account)
    mpesa.post_process()

    receipt = mpesa.sql.one(
        "SELECT state, subscription_id, invoice_id FROM mpesa_receipt WHERE name = %s",
        [code],
    )
    assert receipt == {
        "state": "applied",
        "subscription_id": subscription_id,
        "invoice_id": invoice_id,
    }, receipt
    _assert_month_paid(mpesa, subscription_id, invoice_id, mpesa.payments_of(code))


def test_subscription_invoice_paid_by_stk_push_from_its_portal_page(mpesa, catalogue):
    """The subscriber opens the month's invoice from its email (the portal page)
    and pays it by STK push: booked once, like the paybill payment."""
    phone = "254711000941"
    subscription_id, invoice_id = _month_invoiced(mpesa, catalogue, 2300, phone)

    client, processing = mpesa.portal_transaction(invoice_id)
    assert mpesa.stk_push(client, processing, phone)["state"] in ("pending", "done")
    tx = mpesa.tx(processing["reference"])
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.settle_inbox()
    mpesa.post_process()

    _assert_month_paid(mpesa, subscription_id, invoice_id, [tx["id"]])


def _month_invoiced(mpesa, catalogue, price, phone):
    """For a customer on file (email and phone), a salesperson creates a subscription
    at ``price`` KES a month and moves it to In progress; the subscriptions' daily
    job (run now) invoices the month in KES and emails the invoice. Returns
    (subscription id, invoice id)."""
    salesperson = mpesa.salesperson()
    partner_id = mpesa.rpc(
        "res.partner",
        "create",
        {
            "name": f"Subscriber {phone}",
            "email": f"subscriber{phone}@example.com",
            "mobile": phone,
        },
    )
    subscription_id = salesperson(
        "sale.subscription",
        "create",
        {
            "partner_id": partner_id,
            "template_id": catalogue["template_id"],
            "pricelist_id": catalogue["pricelist_id"],
            "journal_id": catalogue["journal_id"],
            "sale_subscription_line_ids": [
                (
                    0,
                    0,
                    {
                        "product_id": catalogue["product_id"],
                        "price_unit": price,
                        "tax_ids": [(6, 0, [])],
                    },
                )
            ],
        },
    )
    in_progress = mpesa.rpc.xmlid("subscription_oca.subscription_stage_in_progress")
    salesperson(
        "sale.subscription", "write", [subscription_id], {"stage_id": in_progress}
    )
    mpesa.rpc.run_cron("subscription_oca.ir_cron_subscription_management")

    (invoice_id,) = _subscription(mpesa, subscription_id)["invoice_ids"]
    invoice = mpesa.sql.one(
        "SELECT m.state, c.name AS currency, m.amount_total, m.payment_reference"
        " FROM account_move m JOIN res_currency c ON c.id = m.currency_id"
        " WHERE m.id = %s",
        [invoice_id],
    )
    account = _subscription(mpesa, subscription_id)["mpesa_account_ref"]
    assert invoice == {
        "state": "posted",
        "currency": "KES",
        "amount_total": price,
        "payment_reference": account,
    }, invoice
    return subscription_id, invoice_id


def _subscription(mpesa, subscription_id):
    """The subscription as its salesperson reads it."""
    [subscription] = mpesa.salesperson()(
        "sale.subscription",
        "read",
        [subscription_id],
        ["mpesa_account_ref", "invoice_ids", "mpesa_access_status"],
    )
    return subscription


def _assert_month_paid(mpesa, subscription_id, invoice_id, tx_ids):
    """The month's invoice paid by its one M-PESA payment, booked once, and the
    subscription's access active."""
    assert len(tx_ids) == 1, tx_ids
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    mpesa.assert_books(tx_ids, [invoice_id])
    assert _subscription(mpesa, subscription_id)["mpesa_access_status"] == "active"
