"""Two companies in one Odoo, each with its own M-PESA paybill and KES journal, as a
group's finance team runs them: Nairobi (the live company, books in USD, paybill
174379) and Mombasa Ltd (added here, books in KES, paybill 600100, its own Daraja
app). Customers are shared, as in a group. Each company's money must reach its own
shortcode, ledger, journal and invoices, and only its own staff, on a real
multi-worker server."""

import base64
import json
import re
import xmlrpc.client
from dataclasses import dataclass

import pytest
from daraja_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_INITIATOR,
    DEFAULT_INITIATOR_PASSWORD,
    DEFAULT_SHORTCODE,
)
from daraja_emulator import c2b as emulator_c2b
from daraja_emulator.helpers import kenya_now, money

from .harness import JsonRpcError, WebClient, http, wait_until
from .mpesa_live import STATEMENT_HEADER

MOMBASA_SHORTCODE = "600100"
MOMBASA_PASSKEY = "mombasa-passkey-0f3c9a"
MOMBASA_APP = ("mombasa-consumer-key", "mombasa-consumer-secret")
RECONCILER = "mpesa_reconciliation.group_mpesa_reconciler"


@dataclass(frozen=True)
class Books:
    """Where one company's M-PESA money belongs."""

    company_id: int
    provider_id: int
    journal_id: int  # the shortcode's KES bank journal
    sale_journal_id: int  # its customer invoices
    shortcode: str


@pytest.fixture(scope="module")
def mombasa(live):
    """A second company, set up by the administrator as the screens do: the company
    (books in KES), its chart of accounts, an M-PESA journal, the M-PESA provider
    duplicated for it (Odoo lists no New provider) with its own Daraja app and
    paybill. Returns its Books."""
    rpc = live.rpc
    live.emulator.add_app(*MOMBASA_APP)
    live.emulator.add_shortcode(MOMBASA_SHORTCODE, MOMBASA_PASSKEY)
    # No country: Odoo installs the country's accounting module (l10n_ke) for a new
    # company that has one, which reloads the registry of the running server.
    company_id = rpc(
        "res.company", "create", {"name": "Mombasa Ltd", "currency_id": live.kes_id}
    )
    live.server_action(
        "res.company",
        "env['account.chart.template'].try_loading('generic_coa', records, False)",
        [company_id],
    )
    [company] = rpc("res.company", "read", [company_id], ["chart_template"])
    assert company["chart_template"] == "generic_coa", company
    [sale_journal_id] = rpc(
        "account.journal",
        "search",
        [("company_id", "=", company_id), ("type", "=", "sale")],
        limit=1,
    )
    journal_id = rpc(
        "account.journal",
        "create",
        {
            "name": "M-PESA Mombasa",
            "code": "MPMB",
            "type": "bank",
            "currency_id": live.kes_id,
            "company_id": company_id,
        },
    )
    copied = rpc(
        "payment.provider", "copy", [live.provider_id], {"company_id": company_id}
    )
    provider_id = copied[0] if isinstance(copied, list) else copied
    rpc(
        "payment.provider",
        "write",
        [provider_id],
        {
            "state": "test",
            "is_published": True,
            "mpesa_consumer_key": MOMBASA_APP[0],
            "mpesa_consumer_secret": MOMBASA_APP[1],
            "mpesa_shortcode": MOMBASA_SHORTCODE,
            "mpesa_shortcode_type": "paybill",
            "mpesa_passkey": MOMBASA_PASSKEY,
            "mpesa_initiator_name": DEFAULT_INITIATOR,
            "mpesa_certificate": live.emulator.certificate_pem,
            "mpesa_initiator_password": DEFAULT_INITIATOR_PASSWORD,
            "mpesa_api_url": live.emulator.base_url,
            "journal_id": journal_id,
            "mpesa_push_limit_document": 0,
            "mpesa_push_limit_phone": 0,
            "mpesa_push_limit_address": 0,
        },
    )
    [values] = rpc(
        "payment.provider",
        "read",
        [provider_id],
        ["company_id", "mpesa_consumer_key", "mpesa_shortcode"],
    )
    assert values["company_id"][0] == company_id, values
    assert values["mpesa_consumer_key"] != DEFAULT_CONSUMER_KEY, values
    return Books(
        company_id, provider_id, journal_id, sale_journal_id, MOMBASA_SHORTCODE
    )


@pytest.fixture
def companies(mpesa, mombasa):
    """The live set-up and both companies' Books, each paybill's C2B URLs registered
    (the emulator forgot them)."""
    mpesa.rpc(
        "payment.provider", "action_mpesa_register_c2b_urls", [mombasa.provider_id]
    )
    [provider] = mpesa.rpc(
        "payment.provider", "read", [mpesa.provider_id], ["company_id"]
    )
    [sale_journal_id] = mpesa.rpc(
        "account.journal",
        "search",
        [("company_id", "=", provider["company_id"][0]), ("type", "=", "sale")],
        limit=1,
    )
    nairobi = Books(
        provider["company_id"][0],
        mpesa.provider_id,
        mpesa.journal_id,
        sale_journal_id,
        DEFAULT_SHORTCODE,
    )
    return mpesa, nairobi, mombasa


# === HELPERS === #


def _invoice(mpesa, books, amount, partner_id, name=None):
    """A posted KES invoice of ``books``' company for the customer, numbered
    ``name`` if given (as typed on a draft); returns (id, number)."""
    invoice_id = mpesa.rpc(
        "account.move",
        "create",
        {
            "move_type": "out_invoice",
            "company_id": books.company_id,
            "journal_id": books.sale_journal_id,
            "partner_id": partner_id,
            "currency_id": mpesa.kes_id,
            "invoice_line_ids": [
                (
                    0,
                    0,
                    {
                        "name": "Matatu spare parts",
                        "quantity": 1,
                        "price_unit": amount,
                        "tax_ids": [(6, 0, [])],
                    },
                )
            ],
        },
    )
    if name:
        mpesa.rpc("account.move", "write", [invoice_id], {"name": name})
    mpesa.rpc("account.move", "action_post", [invoice_id])
    invoice = mpesa.sql.one(
        "SELECT name, state, company_id FROM account_move WHERE id = %s", [invoice_id]
    )
    assert invoice["state"] == "posted", invoice
    assert invoice["company_id"] == books.company_id, invoice
    assert name is None or invoice["name"] == name, invoice
    return invoice_id, invoice["name"]


def _unused_number(mpesa, *books):
    """The next invoice number none of these companies has used yet: each numbers
    its invoices INV/<year>/00001 onwards, in its own sequence."""
    year = mpesa.sql.scalar("SELECT extract(year FROM now())::int")
    prefix = f"INV/{year}/"
    last = mpesa.sql.scalar(
        "SELECT coalesce(max(sequence_number), 0) FROM account_move"
        " WHERE journal_id = ANY(%s) AND sequence_prefix = %s",
        [[each.sale_journal_id for each in books], prefix],
    )
    return f"{prefix}{last + 1:05d}"


def _reconciler(mpesa, login, *books):
    """XML-RPC as a reconciler of these companies only."""
    return mpesa.staff(
        login, RECONCILER, company_ids=[each.company_id for each in books]
    )


def _offered_providers(client, mpesa, invoice_id):
    """The M-PESA providers the invoice's portal page offers the customer."""
    page = client.session.get(
        mpesa.url + mpesa.rpc("account.move", "get_portal_url", [invoice_id]),
        timeout=60,
    )
    assert page.status_code == 200, page.status_code
    return {
        int(re.search(r'data-provider-id="(\d+)"', tag).group(1))
        for tag in re.findall(r"<input[^>]*>", page.text)
        if 'data-provider-code="mpesa"' in tag and "data-provider-id" in tag
    }


def _assert_money_in(mpesa, code, books):
    """Receipt ``code`` is ``books``' company's money: its ledger row (company,
    provider, shortcode), its one bank line (that company's M-PESA journal, none
    in another), and every payment it made (company, journal, transaction)."""
    receipt = mpesa.sql.one(
        "SELECT r.company_id, r.provider_id, r.shortcode, r.statement_line_id,"
        " l.journal_id, l.company_id AS line_company_id"
        " FROM mpesa_receipt r"
        " LEFT JOIN account_bank_statement_line l ON l.id = r.statement_line_id"
        " WHERE r.name = %s",
        [code],
    )
    assert receipt == {
        "company_id": books.company_id,
        "provider_id": books.provider_id,
        "shortcode": books.shortcode,
        "statement_line_id": receipt["statement_line_id"],
        "journal_id": books.journal_id,
        "line_company_id": books.company_id,
    }, receipt
    assert [line["id"] for line in mpesa.statement_lines(code)] == [
        receipt["statement_line_id"]
    ]
    payments = mpesa.sql.dicts(
        "SELECT pay.company_id, pay.journal_id, tx.company_id AS tx_company_id,"
        " tx.provider_id FROM payment_transaction tx"
        " JOIN mpesa_receipt r ON r.id = tx.mpesa_source_receipt_id"
        " JOIN account_payment pay ON pay.id = tx.payment_id"
        " WHERE r.name = %s",
        [code],
    )
    assert payments, f"receipt {code} made no payment"
    for payment in payments:
        assert payment == {
            "company_id": books.company_id,
            "journal_id": books.journal_id,
            "tx_company_id": books.company_id,
            "provider_id": books.provider_id,
        }, payment


def _assert_untouched(mpesa, invoice_id, amount):
    """The invoice owes all of ``amount``: no payment, no transaction reached it."""
    _assert_untouched_but_for(mpesa, invoice_id, amount)


def _assert_untouched_but_for(mpesa, invoice_id, amount, *tx_ids):
    """The invoice owes all of ``amount``: no payment, no transaction but these
    (still drafts) names it."""
    invoice = mpesa.invoice(invoice_id)
    assert (invoice["payment_state"], invoice["amount_residual"]) == (
        "not_paid",
        amount,
    ), invoice
    naming = mpesa.sql.all(
        "SELECT transaction_id FROM account_invoice_transaction_rel"
        " WHERE invoice_id = %s",
        [invoice_id],
    )
    assert sorted(tx_id for (tx_id,) in naming) == sorted(tx_ids), naming


def _statement_row(code, amount, phone, account=""):
    """A paybill payment's row of the org portal's statement."""
    when = kenya_now().strftime("%d-%m-%Y %H:%M:%S")
    masked = f"{phone[:4]}****{phone[-3:]}"
    return (
        f'{code},{when},{when},Pay Bill from {masked},Completed,"{amount:,.2f}",,,,'
        f"Pay Bill Online,{masked} - JOHN,,{account}\n"
    )


def _import_statement(reconciler, provider_id, *rows):
    """``reconciler`` imports Mombasa's statement listing ``rows`` into the M-PESA
    account ``provider_id`` (named over RPC) through the import wizard, as its form
    does."""
    header = STATEMENT_HEADER.replace(
        "Jua Kali Traders Ltd\nShortcode 174379",
        f"Mombasa Ltd\nShortcode {MOMBASA_SHORTCODE}",
    )
    wizard_id = reconciler(
        "mpesa.statement.import",
        "create",
        {
            "provider_id": provider_id,
            "source": "file",
            "data_file": base64.b64encode((header + "".join(rows)).encode()).decode(),
            "filename": "statement.csv",
        },
    )
    return reconciler("mpesa.statement.import", "action_import", [wizard_id])


def _both(nairobi, mombasa):
    return [nairobi.provider_id, mombasa.provider_id]


def _refused(call, *args, **kwargs):
    """The XML-RPC call is refused; returns the fault's text."""
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args, **kwargs)
    return info.value.faultString


# === TESTS === #


def test_stk_payment_of_mombasas_invoice_reaches_mombasa(companies):
    """A customer pays Mombasa's invoice from its portal page while Nairobi's
    provider exists too. The page offers Mombasa's paybill only; the prompt goes
    out from Mombasa's shortcode, the money lands there and is booked in Mombasa:
    receipt, bank line, payment and invoice; Nairobi's paybill and journal see
    nothing; both companies' books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000011"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, _name = _invoice(mpesa, mombasa, 1450, partner_id)
    nairobi_before = mpesa.emulator.balance(DEFAULT_SHORTCODE)
    mombasa_before = mpesa.emulator.balance(MOMBASA_SHORTCODE)

    client = WebClient(mpesa.url)
    assert _offered_providers(client, mpesa, invoice_id) == {mombasa.provider_id}
    client, processing = mpesa.portal_transaction(
        invoice_id, client=client, provider_id=mombasa.provider_id
    )
    assert mpesa.stk_push(client, processing, phone)["state"] in ("pending", "done")
    tx = mpesa.tx(processing["reference"])
    prompt = mpesa.emulator.prompts[tx["mpesa_checkout_request_id"]]
    assert prompt.shortcode == MOMBASA_SHORTCODE, prompt
    tx = mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    mpesa.post_process()

    code = tx["mpesa_receipt_code"]
    assert mpesa.emulator.balance(MOMBASA_SHORTCODE) == mombasa_before + 1450
    assert mpesa.emulator.balance(DEFAULT_SHORTCODE) == nairobi_before
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    _assert_money_in(mpesa, code, mombasa)
    mpesa.assert_books([tx["id"]], [invoice_id], provider_ids=_both(nairobi, mombasa))


def test_paybill_payment_to_mombasa_pays_mombasas_invoice_not_nairobis_namesake(
    companies,
):
    """Each company numbers its invoices INV/<year>/00001 onwards: Nairobi and
    Mombasa both have an open invoice of one number and amount, for different
    customers.
    A customer pays Mombasa's paybill with that account number: Mombasa's invoice
    is paid with Mombasa's money, Nairobi's namesake still owes everything; both
    books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000021"
    partner_id = mpesa.phone_only_customer(phone)
    other_id = mpesa.phone_only_customer("254722000022")
    number = _unused_number(mpesa, nairobi, mombasa)
    nairobi_id, _number = _invoice(mpesa, nairobi, 1520, other_id, name=number)
    invoice_id, _number = _invoice(mpesa, mombasa, 1520, partner_id, name=number)

    code = mpesa.paybill_payment(phone, 1520, number, shortcode=MOMBASA_SHORTCODE)
    mpesa.post_process()

    (receipt,) = mpesa.receipts(code)
    assert receipt["state"] == "applied", receipt
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    _assert_money_in(mpesa, code, mombasa)
    _assert_untouched(mpesa, nairobi_id, 1520)
    mpesa.assert_books(tx_ids, [invoice_id], provider_ids=_both(nairobi, mombasa))


def test_paybill_payment_to_nairobi_naming_a_mombasa_invoice_stays_in_nairobi(
    companies,
):
    """Mombasa's customer pays 1,630 on Nairobi's paybill by mistake, typing
    Mombasa's invoice number (none of Nairobi's has it), from the phone Mombasa
    knows them by. The money is Nairobi's: it waits in Nairobi's queue
    (Reference Unknown), never pays Mombasa's invoice: not by the account number,
    not by the half-hourly matching job (whose suggestion would otherwise be
    certain: exact number, amount and phone), not by a reconciler of both
    companies allocating it there. Nairobi's reconciler keeps it as the customer's
    credit in Nairobi; Mombasa's invoice still owes everything; both books check
    clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000031"
    partner_id = mpesa.phone_only_customer(phone)
    number = _unused_number(mpesa, nairobi, mombasa)
    invoice_id, _number = _invoice(mpesa, mombasa, 1630, partner_id, name=number)

    code = mpesa.paybill_payment(phone, 1630, number)
    exception = mpesa.open_exception("r.name = %s", [code])
    assert mpesa.sql.one(
        "SELECT e.company_id, r.review_cause FROM mpesa_exception e"
        " JOIN mpesa_receipt r ON r.id = e.receipt_id WHERE e.id = %s",
        [exception["id"]],
    ) == {"company_id": nairobi.company_id, "review_cause": "unknown_reference"}
    _assert_untouched(mpesa, invoice_id, 1630)

    # The half-hourly matching job, over every company's open lines: Mombasa has
    # one waiting as well (a payment without account number).
    mpesa.paybill_payment("254722000032", 250, "", shortcode=MOMBASA_SHORTCODE)
    mpesa.rpc.run_cron("mpesa_reconciliation.cron_mpesa_suggestions")
    _assert_untouched(mpesa, invoice_id, 1630)
    assert mpesa.payments_of(code) == []

    # A reconciler of both companies: the wizard proposes none of Mombasa's
    # invoices, and refuses one typed in.
    group = _reconciler(mpesa, "mpesa_live_reconciler_group", nairobi, mombasa)
    group("mpesa.exception", "action_use_suggested_partner", [exception["id"]])
    context = {"default_exception_id": exception["id"]}
    proposed = group(
        "mpesa.exception.allocate",
        "default_get",
        ["exception_id", "partner_id", "line_ids"],
        context=context,
    )
    assert proposed.get("line_ids", []) == [], proposed
    _refused(
        group,
        "mpesa.exception.allocate",
        "create",
        {
            "exception_id": exception["id"],
            "partner_id": partner_id,
            "line_ids": [(0, 0, {"invoice_id": invoice_id, "amount": 1630})],
        },
        context=context,
    )
    _assert_untouched(mpesa, invoice_id, 1630)

    nairobi_reconciler = mpesa.reconciler()
    nairobi_reconciler("mpesa.exception", "action_keep_as_credit", [exception["id"]])
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    _assert_money_in(mpesa, code, nairobi)
    _assert_untouched(mpesa, invoice_id, 1630)
    mpesa.assert_books(tx_ids, [], credit=1630, provider_ids=_both(nairobi, mombasa))


def test_nairobi_reconciler_cannot_see_or_settle_mombasas_exceptions(companies):
    """A paybill payment to Mombasa with no account number waits in Mombasa's
    queue. Nairobi's reconciler (that company only, over XML-RPC) finds neither the
    exception nor its receipt, cannot read them, and every action on them is
    refused: take the phone's customer, keep as credit, find matches, mark
    duplicate, allocate, import a statement into Mombasa's account. Nothing moved.
    Mombasa's reconciler sees it and keeps it as the customer's credit: booked in
    Mombasa, both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000041"
    partner_id = mpesa.phone_only_customer(phone)
    code = mpesa.paybill_payment(phone, 1710, "", shortcode=MOMBASA_SHORTCODE)
    exception = mpesa.open_exception("r.name = %s", [code])
    exception_id, receipt_id = exception["id"], exception["receipt_id"]

    outsider = mpesa.reconciler()
    assert exception_id not in outsider("mpesa.exception", "search", [])
    assert outsider("mpesa.receipt", "search", [("name", "=", code)]) == []
    _refused(outsider, "mpesa.exception", "read", [exception_id], ["state"])
    _refused(outsider, "mpesa.receipt", "read", [receipt_id], ["amount"])
    for action in (
        "action_use_suggested_partner",
        "action_keep_as_credit",
        "action_find_matches",
        "action_mark_duplicate",
    ):
        _refused(outsider, "mpesa.exception", action, [exception_id])
    context = {"default_exception_id": exception_id}
    wizard_id = outsider(
        "mpesa.exception.allocate",
        "create",
        {"exception_id": exception_id, "partner_id": partner_id},
        context=context,
    )
    _refused(outsider, "mpesa.exception.allocate", "action_allocate", [wizard_id])
    # Mombasa's statement, listing that payment, imported into Mombasa's account
    # named over RPC (the form offers Nairobi's only).
    assert "another company" in _refused(
        _import_statement,
        outsider,
        mombasa.provider_id,
        _statement_row(code, 1710, phone),
    )
    assert mpesa.sql.one(
        "SELECT e.state, r.state AS receipt_state, r.partner_id"
        " FROM mpesa_exception e JOIN mpesa_receipt r ON r.id = e.receipt_id"
        " WHERE e.id = %s",
        [exception_id],
    ) == {"state": "open", "receipt_state": "review", "partner_id": None}
    assert mpesa.payments_of(code) == []

    own = _reconciler(mpesa, "mpesa_live_reconciler_mombasa", mombasa)
    assert exception_id in own("mpesa.exception", "search", [])
    own("mpesa.exception", "action_use_suggested_partner", [exception_id])
    own("mpesa.exception", "action_keep_as_credit", [exception_id])
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    _assert_money_in(mpesa, code, mombasa)
    mpesa.assert_books(tx_ids, [], credit=1710, provider_ids=_both(nairobi, mombasa))


def test_mombasas_invoice_is_never_prompted_through_nairobis_paybill(companies):
    """Core's transaction route takes whatever provider the request names; the
    payment form offers Mombasa's only. A request naming Nairobi's provider for
    Mombasa's invoice (a forged or stale form) gets a transaction, but its prompt is
    refused with a message: nothing reaches the phone, Nairobi's paybill takes no
    money for Mombasa's invoice (it would be booked in Nairobi, and the payment
    could never be made: "Incompatible companies"); the invoice still owes
    everything; both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000051"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, _name = _invoice(mpesa, mombasa, 1810, partner_id)
    nairobi_before = mpesa.emulator.balance(DEFAULT_SHORTCODE)
    client, processing = mpesa.portal_transaction(
        invoice_id, provider_id=nairobi.provider_id
    )
    with pytest.raises(JsonRpcError) as refused:
        mpesa.stk_push(client, processing, phone)
    assert "cannot pay" in str(refused.value), refused.value
    assert mpesa.emulator.prompts == {}, "a prompt reached the phone"
    assert mpesa.emulator.balance(DEFAULT_SHORTCODE) == nairobi_before
    tx = mpesa.tx(processing["reference"])
    assert (tx["state"], tx["mpesa_checkout_request_id"]) == ("draft", None), tx
    _assert_untouched_but_for(mpesa, invoice_id, 1810, tx["id"])
    assert mpesa.check_books(_both(nairobi, mombasa)) == []


def test_mombasas_paybill_validation_knows_only_mombasas_invoices(companies):
    """Mombasa validates account numbers (C2B validation on): the customer types
    Nairobi's invoice number on Mombasa's paybill. Mombasa's validation URL is
    asked and refuses it (Nairobi's invoice is not Mombasa's to be paid): M-PESA
    takes no money, nothing is booked anywhere, Nairobi's invoice still owes
    everything. Typed with Mombasa's own invoice number, the same payment is
    accepted and pays it, booked in Mombasa; both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000061"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, number = _invoice(mpesa, mombasa, 1910, partner_id)
    nairobi_id, nairobi_number = _invoice(
        mpesa, nairobi, 1910, partner_id, name=_unused_number(mpesa, nairobi, mombasa)
    )
    validate = {"mpesa_c2b_validate_reference": True}
    mpesa.rpc("payment.provider", "write", [mombasa.provider_id], validate)
    try:
        refused = mpesa.emulator.c2b_pay(
            MOMBASA_SHORTCODE, phone, 1910, nairobi_number, msisdn_style="plain"
        )
        (validation,) = mpesa.deliveries(
            lambda d: d.kind == "c2b_validation" and refused.encode() in d.body, 1, 30
        )
        assert f"/payment/daraja/c2b/{mombasa.provider_id}/" in validation.url
        assert validation.response_json() == {
            "ResultCode": "C2B00012",
            "ResultDesc": "Rejected",
        }, validation.response_text
        code = mpesa.paybill_payment(phone, 1910, number, shortcode=MOMBASA_SHORTCODE)
    finally:
        validate = {"mpesa_c2b_validate_reference": False}
        mpesa.rpc("payment.provider", "write", [mombasa.provider_id], validate)
    mpesa.post_process()

    assert refused not in mpesa.emulator.payments, "M-PESA took the refused payment"
    assert mpesa.receipts(refused) == []
    _assert_untouched(mpesa, nairobi_id, 1910)
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    _assert_money_in(mpesa, code, mombasa)
    mpesa.assert_books(tx_ids, [invoice_id], provider_ids=_both(nairobi, mombasa))


def test_confirmation_of_mombasas_paybill_at_nairobis_url_is_not_booked_there(
    companies,
):
    """M-PESA takes a payment on Mombasa's paybill for Mombasa's invoice, and its
    confirmation reaches Nairobi's URL (URLs registered crosswise, or a replay).
    Nairobi answers it and keeps the body, but books nothing: the body names
    another shortcode (callback in error, saying so). Mombasa's reconciler imports
    Mombasa's statement: the payment is booked in Mombasa, once, and pays the
    invoice; both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000071"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, number = _invoice(mpesa, mombasa, 2010, partner_id)
    mpesa.emulator.set_scenario(phone, no_callback=True)
    code = mpesa.emulator.c2b_pay(MOMBASA_SHORTCODE, phone, 2010, number)
    wait_until(lambda: code in mpesa.emulator.payments, 10, "M-PESA to take the money")
    shortcode = mpesa.emulator.state.shortcodes[MOMBASA_SHORTCODE]
    payment = {
        "trans_id": code,
        "msisdn": phone,
        "amount": 2010.0,
        "bill_ref": number,
        "style": "masked",
        "first_name": "JOHN",
    }
    body = json.dumps(
        emulator_c2b.notification(
            shortcode, payment, kenya_now(), money(shortcode.balance)
        )
    ).encode()

    response = http().post(
        mpesa.url + mpesa.c2b_url("confirmation"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    mpesa.settle_inbox()
    callback = mpesa.sql.one(
        "SELECT state, error, provider_id FROM mpesa_callback"
        " WHERE kind = 'c2b_confirmation' AND body = %s",
        [body.decode()],
    )
    assert (callback["state"], callback["provider_id"]) == (
        "error",
        nairobi.provider_id,
    ), callback
    assert f"shortcode {MOMBASA_SHORTCODE}, not this provider's" in callback["error"]
    assert mpesa.receipts(code) == []
    _assert_untouched(mpesa, invoice_id, 2010)

    own = _reconciler(mpesa, "mpesa_live_reconciler_mombasa", mombasa)
    _import_statement(
        own, mombasa.provider_id, _statement_row(code, 2010, phone, number)
    )
    mpesa.settle_inbox()
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    assert mpesa.invoice(invoice_id)["payment_state"] == "paid"
    _assert_money_in(mpesa, code, mombasa)
    mpesa.assert_books(tx_ids, [invoice_id], provider_ids=_both(nairobi, mombasa))


def test_mombasas_own_customer_paying_nairobi_is_not_suggested_to_nairobi(companies):
    """A customer Mombasa keeps to itself (a contact of that company only) pays
    Nairobi's paybill without account number. Nairobi's queue suggests no customer:
    Nairobi's reconciler reads no Mombasa customer's name there, and Use Suggested
    Customer cannot hand them one they may not book to (Keep as Credit then failed
    on a contact they cannot read). They keep the money as credit of a customer of
    their own: booked in Nairobi, both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000081"
    theirs = {"name": "Bakari Mombasa", "mobile": phone}
    mpesa.rpc("res.partner", "create", {**theirs, "company_id": mombasa.company_id})
    code = mpesa.paybill_payment(phone, 2110, "")
    exception = mpesa.open_exception("r.name = %s", [code])

    outsider = mpesa.reconciler()
    [shown] = outsider(
        "mpesa.exception", "read", [exception["id"]], ["suggested_partner_id"]
    )
    assert shown["suggested_partner_id"] is False, shown
    own_id = mpesa.phone_only_customer("254722000082")
    outsider("mpesa.exception", "write", [exception["id"]], {"partner_id": own_id})
    outsider("mpesa.exception", "action_keep_as_credit", [exception["id"]])
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    assert len(tx_ids) == 1, tx_ids
    _assert_money_in(mpesa, code, nairobi)
    mpesa.assert_books(tx_ids, [], credit=2110, provider_ids=_both(nairobi, mombasa))


def test_mombasas_statement_imported_into_nairobis_account_books_nothing_twice(
    companies,
):
    """A payment on Mombasa's paybill pays Mombasa's invoice (booked in Mombasa).
    A reconciler of both companies then imports Mombasa's statement, which lists
    it, into Nairobi's M-PESA account by mistake. M-PESA receipt codes are unique
    across M-PESA: the import is refused, saying whose statement it is, and nothing
    is created in Nairobi (no receipt, no bank line in Nairobi's journal); the
    payment stays booked once, in Mombasa; both books check clean."""
    mpesa, nairobi, mombasa = companies
    phone = "254722000101"
    partner_id = mpesa.phone_only_customer(phone)
    invoice_id, number = _invoice(mpesa, mombasa, 2210, partner_id)
    code = mpesa.paybill_payment(phone, 2210, number, shortcode=MOMBASA_SHORTCODE)
    mpesa.post_process()
    tx_ids = mpesa.payments_of(code)
    mpesa.assert_books(tx_ids, [invoice_id], provider_ids=_both(nairobi, mombasa))

    group = _reconciler(mpesa, "mpesa_live_reconciler_group", nairobi, mombasa)
    refusal = _refused(
        _import_statement,
        group,
        nairobi.provider_id,
        _statement_row(code, 2210, phone, number),
    )
    assert f"receipt {code} belongs to" in refusal, refusal
    assert [receipt["id"] for receipt in mpesa.receipts(code)] == [
        mpesa.sql.scalar("SELECT id FROM mpesa_receipt WHERE name = %s", [code])
    ]
    _assert_money_in(mpesa, code, mombasa)
    mpesa.assert_books(tx_ids, [invoice_id], provider_ids=_both(nairobi, mombasa))
