"""Borrowed payments (issue 11, finding 3), on a real server: a portal customer who
types another customer's phone number on /my/account sees none of that customer's
payments, neither those made by STK push nor paybill payments from that phone."""

import re

from .harness import WebClient
from .mpesa_live import PHONE, PHONE_LOCAL

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _portal_customer(live, login):
    """A portal user created as the shop's sign-up would, logged in."""
    portal_group = live.rpc.xmlid("base.group_portal")
    live.rpc(
        "res.users",
        "create",
        {
            "name": "Mallory Mwangi",
            "login": login,
            "password": login + "-pass",
            "email": login + "@example.com",
            "groups_id": [(6, 0, [portal_group])],
        },
    )
    client = WebClient(live.url)
    page = client.session.get(live.url + "/web/login", timeout=60)
    answer = client.session.post(
        live.url + "/web/login",
        data={
            "login": login,
            "password": login + "-pass",
            "csrf_token": CSRF.search(page.text).group(1),
        },
        timeout=60,
    )
    assert answer.status_code == 200 and "/web/login" not in answer.url, answer.url
    return client


def _set_my_phone(live, client, phone):
    page = client.session.get(live.url + "/my/account", timeout=60)
    answer = client.session.post(
        live.url + "/my/account",
        data={
            "name": "Mallory Mwangi",
            "email": "mallory@example.com",
            "phone": phone,
            "street": "Moi Avenue 1",
            "city": "Nairobi",
            "country_id": live.rpc.xmlid("base.ke"),
            "csrf_token": CSRF.search(page.text).group(1),
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.status_code


def _paybill(live, phone, amount, reference, style):
    code = live.emulator.c2b_pay("174379", phone, amount, reference, msisdn_style=style)
    assert live.wait_confirmed(code) == "verified"
    return code


def test_copied_phone_shows_none_of_the_victims_payments(mpesa):
    # The victim pays an invoice by STK push and a paybill without a document.
    _invoice_id, tx = mpesa.pay_invoice_by_push(1100, PHONE_LOCAL)
    mpesa.wait_tx_state(tx["id"], ("done",), timeout=30)
    victim_codes = [
        mpesa.tx(tx_id=tx["id"])["mpesa_receipt_code"],
        _paybill(mpesa, PHONE, 450, "DONATION", "plain"),
    ]
    # A walk-in payer we have no customer for, paying from another phone.
    stranger = "254711000600"
    stranger_codes = [
        _paybill(mpesa, stranger, 300, "LUNCH", "plain"),
        _paybill(mpesa, stranger, 350, "FEES", "hashed"),
    ]
    mallory = _portal_customer(mpesa, "mallory")
    _set_my_phone(mpesa, mallory, "0708 374 149")  # the victim's phone
    _set_my_phone(mpesa, mallory, "0711 000 600")  # and then the stranger's
    stranger_codes.append(_paybill(mpesa, stranger, 400, "SNACKS", "plain"))

    page = mallory.session.get(mpesa.url + "/my/mpesa", timeout=60)
    assert page.status_code == 200
    for code in victim_codes + stranger_codes:
        assert code and code not in page.text, code
        (receipt,) = mpesa.receipts(code)
        pdf = mallory.session.get(
            f"{mpesa.url}/my/mpesa/{receipt['id']}/receipt", timeout=60
        )
        assert pdf.status_code == 404, (code, pdf.status_code)
    # The payment made after the copy is suggested to finance, and that is all.
    rows = mpesa.sql.dicts(
        "SELECT r.state, r.partner_id, p.name AS suggested"
        " FROM mpesa_receipt r LEFT JOIN res_partner p ON p.id = r.suggested_partner_id"
        " WHERE r.name = %s",
        [stranger_codes[-1]],
    )
    assert rows == [
        {"state": "review", "partner_id": None, "suggested": "Mallory Mwangi"}
    ]
    assert mpesa.check_books() == []
