"""What happened in the demo company's last sixty days (see demo_history.py).

Day numbers count back from today. Routine days: invoices paid by STK from the portal or
by paybill with the invoice number typed the ways customers type it. Around them, the
things finance meets: a deposit then the balance, subscriptions (one overdue), a
statement import that overlaps the callbacks and recovers a payment whose callback never
came, a code a customer quotes, a refund of returned goods, exceptions of most kinds
M-PESA money gets into, and their resolutions by each action of the exception queue
(some left open). Not told: "Awaiting Review" and "Received, Document Not Updated"
(no customer action leads there: they need M-PESA to contradict itself or Odoo's
post-processing to fail). After the story, demo_history.py queries each shortcode's
balance, which the books check then finds equal to its journal's.
"""

import base64
import csv
import io
from datetime import timedelta

from demo_common import PAYBILL, PHONES, log, wait_until

# Unusual days: (days ago, story). Routine payments fill the other days.
SPECIAL_DAYS = {}


def special(days_ago):
    def register(function):
        SPECIAL_DAYS[days_ago] = function
        return function

    return register


def tell(h):
    subscriptions = start_subscriptions(h)
    for days_ago in range(60, -1, -1):
        if days_ago in SPECIAL_DAYS:
            SPECIAL_DAYS[days_ago](h)
        elif days_ago == 0 or h.rng.random() < 0.8:  # today: never a quiet day
            routine_day(h, days_ago)
        if days_ago in (60, 30, 0):
            invoice_subscriptions(h, subscriptions, days_ago)
        if days_ago % 10 == 0:
            h.post_process()
            log(f"{days_ago} days ago: {h.stats}")


def routine_day(h, days_ago):
    for _ in range(h.rng.choice([1, 1, 2])):
        customer = h.rng.choice(sorted(PHONES))
        day = h.at(days_ago)
        invoice = h.invoice(customer, day, h.lines())
        if h.rng.random() < 0.55:
            h.pay_invoice_stk(customer, invoice)
        else:
            h.at(max(days_ago - h.rng.randint(0, 2), 0))
            h.c2b(customer, invoice["amount_total"], variant(h, invoice["name"]))


def variant(h, name):
    """An invoice number as customers type it in the paybill's account field."""
    return h.rng.choice(
        [name, name.lower(), name.replace("/", " "), name.replace("/", "").lower()]
    )


# === SUBSCRIPTIONS: hosting, paid monthly by paybill to the subscription's number === #


def start_subscriptions(h):
    odoo = h.odoo
    template = odoo(
        "sale.subscription.template",
        "create",
        {
            "name": "Monthly hosting",
            "code": "HOST",
            "invoicing_mode": "invoice",
            "recurring_rule_type": "months",
        },
    )
    odoo("product.product", "write", [h.products["hosting"][0]], {"subscribable": True})
    start = (h.today - timedelta(days=60)).isoformat()
    subscriptions = {}
    for customer in ("otieno", "mamamboga", "njeri"):
        partner = odoo.read_one(
            "res.partner", h.customers[customer], ["property_product_pricelist"]
        )
        subscriptions[customer] = odoo(
            "sale.subscription",
            "create",
            {
                "partner_id": h.customers[customer],
                "template_id": template,
                "pricelist_id": partner["property_product_pricelist"][0],
                "date_start": start,
                "recurring_next_date": start,
                "sale_subscription_line_ids": [
                    (0, 0, {"product_id": h.products["hosting"][0]})
                ],
            },
        )
    return subscriptions


def invoice_subscriptions(h, subscriptions, days_ago):
    """The month's invoice; each subscriber pays it a few days later, except Mama
    Mboga Grocers, who stopped after the first month (overdue, then suspended)."""
    odoo = h.odoo
    for customer, sub_id in subscriptions.items():
        sub = odoo.read_one(
            "sale.subscription", sub_id, ["recurring_next_date", "mpesa_account_ref"]
        )
        if sub["recurring_next_date"] > h.today.isoformat():
            continue
        odoo("sale.subscription", "generate_invoice", [sub_id])
        if customer == "mamamboga" and days_ago < 60:
            continue
        h.at(max(days_ago - 2, 0))
        due = odoo(
            "account.move",
            "search_read",
            [("subscription_id", "=", sub_id), ("payment_state", "=", "not_paid")],
            fields=["amount_residual"],
        )
        # The account number as typed: lower case, sometimes with a space.
        ref = h.rng.choice([sub["mpesa_account_ref"].lower(), sub["mpesa_account_ref"]])
        h.c2b(customer, sum(d["amount_residual"] for d in due), ref)
        h.count("subscription payment")


# === A DEPOSIT, THEN THE BALANCE === #


@special(52)
def deposit_then_balance(h):
    odoo = h.odoo
    h.at(52, hour=10)
    order_id = odoo(
        "sale.order",
        "create",
        {
            "partner_id": h.customers["kiprop"],
            "require_signature": False,
            "require_payment": True,
            "prepayment_percent": 0.3,
            "order_line": [
                (0, 0, {"product_id": h.products["jiko"][0], "product_uom_qty": 3}),
                (0, 0, {"product_id": h.products["solar_lantern"][0]}),
            ],
        },
    )
    h.portal_payment(h.portal_url("sale.order", order_id), PHONES["kiprop"])
    h.count("deposit")
    SPECIAL_DAYS[45] = lambda h: pay_balance(h, order_id)


def pay_balance(h, order_id):
    """A week later the salesperson sends a payment link for the rest; Kiprop pays it,
    and the order is invoiced: the invoice is paid by both payments."""
    odoo = h.odoo
    h.at(45, hour=15)
    context = {"active_model": "sale.order", "active_id": order_id}
    wizard = odoo("payment.link.wizard", "create", {}, context=context)
    link = odoo.read_one("payment.link.wizard", wizard, ["link"])["link"]
    parts = link.split("/", 3)
    h.portal_payment("/" + parts[3], PHONES["kiprop"])
    h.count("balance")
    h.post_process()
    context = {"active_model": "sale.order", "active_ids": [order_id]}
    wizard = odoo(
        "sale.advance.payment.inv",
        "create",
        {"advance_payment_method": "delivered"},
        context=context,
    )
    odoo("sale.advance.payment.inv", "create_invoices", [wizard], context=context)
    invoice_ids = odoo.read_one("sale.order", order_id, ["invoice_ids"])["invoice_ids"]
    odoo("account.move", "action_post", invoice_ids)


# === EXCEPTIONS, AND WHAT FINANCE DID ABOUT THEM === #


def typo_payment(h, days_ago, customer, style="plain"):
    """Paybill with an account number that names nothing (a typo)."""
    day = h.at(days_ago)
    invoice = h.invoice(customer, day, h.lines(1))
    wrong = invoice["name"].replace("INV", "IVN")
    code = h.c2b(customer, invoice["amount_total"], wrong, style=style)
    return code, invoice


@special(50)
def typo_allocated(h):
    code, invoice = typo_payment(h, 50, "njeri")
    exc = h.exception(code)
    allocate(h, exc, h.customers["njeri"], [(invoice, invoice["amount_total"])])


def allocate(h, exc, partner_id, targets):
    odoo = h.odoo
    context = {"default_exception_id": exc["id"]}
    wizard = odoo(
        "mpesa.exception.allocate",
        "create",
        {
            "exception_id": exc["id"],
            "partner_id": partner_id,
            "line_ids": [(5,)]
            + [
                (0, 0, {"invoice_id": invoice["id"], "amount": amount})
                for invoice, amount in targets
            ],
        },
        context=context,
    )
    odoo("mpesa.exception.allocate", "action_allocate", [wizard], context=context)
    h.count("exception allocated")


@special(33)
def typo_kept_as_credit(h):
    """A payment naming nothing, from a known phone: finance takes the suggested
    customer and keeps the money as their credit."""
    h.at(33)
    code = h.c2b("amina", 1000, "deposit amina", style="plain")
    exc = h.exception(code)
    h.odoo("mpesa.exception", "action_use_suggested_partner", [exc["id"]])
    h.odoo("mpesa.exception", "action_keep_as_credit", [exc["id"]])
    h.count("exception kept as credit")


@special(2)
def typo_open(h):
    typo_payment(h, 2, "wanjiku", style="masked")
    h.count("exception open")


@special(40)
def till_allocated(h):
    """A walk-in customer pays at the till (no account number); finance finds the
    invoice of the customer whose phone paid."""
    day = h.at(40)
    invoice = h.invoice("otieno", day, [("solar_lantern", 1)])
    code = h.c2b("otieno", invoice["amount_total"], "", style="plain", till=True)
    exc = h.exception(code)
    allocate(h, exc, h.customers["otieno"], [(invoice, invoice["amount_total"])])


@special(1)
def till_open(h):
    h.at(1)
    h.c2b("njeri", 630, "", style="masked", till=True)
    h.count("exception open")


@special(25)
def duplicate_reversed(h):
    """An invoice paid twice (STK, then paybill): the second is sent back by a
    reversal on M-PESA, which resolves the exception once M-PESA confirms it; the
    money sent back leaves the journal, so the balance query at the end agrees."""
    day = h.at(25)
    invoice = h.invoice("mamamboga", day, [("maize_flour", 10)])
    h.pay_invoice_stk("mamamboga", invoice)
    h.at(25, hour=19)
    code = h.c2b("mamamboga", invoice["amount_total"], invoice["name"], style="plain")
    exc = h.exception(code)
    before = len(h.emu.deliveries)
    h.odoo("mpesa.exception", "action_request_reversal", [exc["id"]])
    h.count("reversal")
    wait_until(
        lambda: any(d.kind == "result" for d in h.emu.deliveries[before:]),
        "the reversal result",
    )
    h.apply_inbox()
    wait_until(
        lambda: h.odoo(
            "mpesa.exception",
            "search_count",
            [("id", "=", exc["id"]), ("state", "=", "resolved")],
        ),
        "the reversed exception",
    )


@special(4)
def duplicate_open(h):
    day = h.at(4)
    invoice = h.invoice("kiprop", day, [("cooking_oil", 3)])
    h.pay_invoice_stk("kiprop", invoice)
    h.at(4, hour=20)
    h.c2b("kiprop", invoice["amount_total"], invoice["name"].lower())
    h.count("exception open")


@special(6)
def overpaid_open(h):
    day = h.at(6)
    invoice = h.invoice("wanjiku", day, [("cooking_oil", 2)])
    h.c2b("wanjiku", invoice["amount_total"] + 500, invoice["name"], style="plain")
    h.count("exception open")


@special(8)
def underpaid_open(h):
    """The prompt asked for the invoice's amount; M-PESA reports less paid."""
    day = h.at(8)
    invoice = h.invoice("amina", day, [("jiko", 1)])
    with h.scenario(PHONES["amina"], amount=2000):
        h.pay_invoice_stk("amina", invoice)
    h.count("exception open")


@special(44)
def other_phone_dismissed(h):
    """Paid from another phone than the one prompted: applied, finance checks it."""
    day = h.at(44)
    invoice = h.invoice("wanjiku", day, [("solar_lantern", 1)])
    with h.scenario(PHONES["wanjiku"], paid_phone="254711999888"):
        h.pay_invoice_stk("wanjiku", invoice)
    tx = h.odoo(
        "payment.transaction",
        "search_read",
        [("invoice_ids", "in", [invoice["id"]])],
        fields=["mpesa_receipt_code"],
    )[0]
    exc = h.exception(tx["mpesa_receipt_code"])
    wizard = h.odoo(
        "mpesa.exception.dismiss",
        "create",
        {"exception_id": exc["id"], "reason": "Her husband paid from his phone."},
    )
    h.odoo("mpesa.exception.dismiss", "action_dismiss", [wizard])
    h.count("exception dismissed")


@special(12)
def other_phone_marked_duplicate(h):
    """A second exception for money already applied: marked as a duplicate."""
    day = h.at(12)
    invoice = h.invoice("otieno", day, [("phone_repair", 1)])
    with h.scenario(PHONES["otieno"], paid_phone="254733999777"):
        h.pay_invoice_stk("otieno", invoice)
    tx = h.odoo(
        "payment.transaction",
        "search_read",
        [("invoice_ids", "in", [invoice["id"]])],
        fields=["mpesa_receipt_code"],
    )[0]
    exc = h.exception(tx["mpesa_receipt_code"])
    h.odoo("mpesa.exception", "action_mark_duplicate", [exc["id"]])
    h.count("exception marked duplicate")


@special(15)
def ambiguous_open(h):
    """Two quotations carry the same customer reference; a payment quoting it cannot
    be told apart."""
    h.at(15)
    for customer in ("amina", "njeri"):
        h.odoo(
            "sale.order",
            "create",
            {
                "partner_id": h.customers[customer],
                "client_order_ref": "HARAMBEE",
                "order_line": [(0, 0, {"product_id": h.products["jiko"][0]})],
            },
        )
    h.c2b("amina", 3200, "harambee")
    h.count("exception open")


@special(10)
def late_success_review(h):
    """The prompt timed out, then M-PESA reported the money after all."""
    day = h.at(10)
    invoice = h.invoice("njeri", day, [("maize_flour", 4)])
    h.pay_invoice_stk("njeri", invoice, phone="0700001038", callbacks=2)
    h.count("late success")


# === A REFUND: returned goods, the whole payment sent back by a reversal === #


@special(22)
def bought_a_jiko(h):
    day = h.at(22)
    invoice = h.invoice("amina", day, [("jiko", 1)])
    tx = h.pay_invoice_stk("amina", invoice)
    SPECIAL_DAYS[18] = lambda h: returned_jiko(h, invoice, tx)


def returned_jiko(h, invoice, tx):
    """Amina brings the jiko back: staff issue the credit note (Credit Note on the
    invoice), then Refund on her M-PESA payment; M-PESA's reversal result books it."""
    odoo = h.odoo
    h.at(18, hour=11)
    context = {"active_model": "account.move", "active_ids": [invoice["id"]]}
    journal = odoo.read_one("account.move", invoice["id"], ["journal_id"])["journal_id"]
    wizard = odoo(
        "account.move.reversal",
        "create",
        {
            "reason": "Returned: the jiko does not fit her stove",
            "journal_id": journal[0],
        },
        context=context,
    )
    action = odoo("account.move.reversal", "refund_moves", [wizard], context=context)
    odoo("account.move", "action_post", [action["res_id"]])
    payment = odoo.read_one("payment.transaction", tx["id"], ["payment_id"])
    context = {"active_model": "account.payment", "active_id": payment["payment_id"][0]}
    wizard = odoo(
        "payment.refund.wizard",
        "create",
        {"amount_to_refund": tx["amount"]},
        context=context,
    )
    before = len(h.emu.deliveries)
    odoo("payment.refund.wizard", "action_refund", [wizard], context=context)
    wait_until(
        lambda: any(d.kind == "result" for d in h.emu.deliveries[before:]),
        "the reversal's result",
    )
    h.apply_inbox()
    h.count("refund")


# === THE STATEMENT, AND A CODE A CUSTOMER QUOTES === #


@special(27)
def missed_callback(h):
    """A paybill payment whose confirmation never reached Odoo: the statement
    imported on day 20 recovers it and applies it to the invoice it names."""
    day = h.at(27)
    invoice = h.invoice("otieno", day, [("cooking_oil", 4)])
    with h.scenario(PHONES["otieno"], no_callback=True):
        code = h.emu.c2b_pay(
            PAYBILL, PHONES["otieno"], int(invoice["amount_total"]), invoice["name"]
        )
        wait_until(lambda: code in h.emu.payments, "the unconfirmed payment")
    h.count("recovered by the statement")


@special(20)
def statement_import(h):
    """Finance imports the org portal's statement of days 35 to 21: it lists the
    payments the callbacks brought (confirmed, not duplicated) and the one they
    missed."""
    h.at(20, hour=9)
    start, end = h.today - timedelta(days=35), h.today - timedelta(days=21)
    rows = [
        p
        for p in h.emu.payments.values()
        if p["shortcode"] == PAYBILL and start <= p["time"].date() <= end
    ]
    wizard = h.odoo(
        "mpesa.statement.import",
        "create",
        {
            "provider_id": h.provider,
            "source": "file",
            "filename": f"ORG_{PAYBILL}_Statement.csv",
            "data_file": statement_csv(rows, start, end),
        },
    )
    h.odoo("mpesa.statement.import", "action_import", [wizard])
    result = h.odoo.read_one("mpesa.statement.import", wizard, ["result"])["result"]
    log(f"statement import: {result}")
    h.count("statement import")


def statement_csv(payments, start, end):
    """The org portal's CSV export (the layout of
    mpesa_reconciliation/tests/data/statement_preamble.csv), base64."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Organisation Name:", "Jua Kali Traders Ltd"])
    writer.writerow(["Organisation Short Code:", PAYBILL])
    writer.writerow(
        [
            "Time Period:",
            f"From {start:%d-%m-%Y} 00:00:00 To {end:%d-%m-%Y} 23:59:59",
        ]
    )
    writer.writerow([])
    writer.writerow(["Detailed Statement"])
    writer.writerow(STATEMENT_COLUMNS)
    for p in sorted(payments, key=lambda p: p["time"], reverse=True):
        when = p["time"].strftime("%d-%m-%Y %H:%M:%S")
        party = f"{p['phone'][:4]}****{p['phone'][-3:]} - {p['first_name']}"
        ref = p["bill_ref"] or ""
        writer.writerow(
            [
                p["receipt"],
                when,
                when,
                f"Pay Bill Online from {party} Acc. {ref}",
                "Completed",
                f"{float(p['amount']):,.2f}",
                "",
                "",
                "",
                "Pay Bill Online",
                party,
                "",
                ref,
            ]
        )
    return base64.b64encode(out.getvalue().encode()).decode()


STATEMENT_COLUMNS = [
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
]


@special(5)
def unannounced_payment(h):
    """Kiprop pays by paybill without an account number and the confirmation is
    lost; two days later he quotes the code to finance."""
    h.at(5)
    with h.scenario(PHONES["kiprop"], no_callback=True):
        code = h.emu.c2b_pay(PAYBILL, PHONES["kiprop"], 1800, "")
        wait_until(lambda: code in h.emu.payments, "the unconfirmed payment")
    SPECIAL_DAYS[3] = lambda h: customer_quotes_code(h, code)


def customer_quotes_code(h, code):
    """'I paid, here is my code': finance looks it up; M-PESA confirms it, and it
    waits in the queue as the customer's claim."""
    h.at(3)
    wizard = h.odoo(
        "mpesa.receipt.lookup", "create", {"code": code, "provider_id": h.provider}
    )
    before = len(h.emu.deliveries)
    h.odoo("mpesa.receipt.lookup", "action_lookup", [wizard])
    wait_until(
        lambda: any(d.kind == "result" for d in h.emu.deliveries[before:]),
        "M-PESA's answer about the quoted code",
    )
    h.apply_inbox()
    wait_until(lambda: h.confirmed(code), f"receipt {code}")
    h.count("claim")
