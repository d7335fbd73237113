"""Hostile or broken input on the public M-PESA endpoints of a real server.

Each request gets a clear answer (4xx, or the documented 200 acknowledgement), never a
traceback, and changes no money: receipts, transactions, statement lines and payments
stay exactly as they were. What passes authentication is kept in the raw inbox
(mpesa.callback) in state error (or duplicate for a replay), as documented.
"""

import json
import time
from collections import Counter
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests

from .harness import JsonRpcError, WebClient, http

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
MALFORMED = {"ResultCode": 1, "ResultDesc": "Malformed JSON"}
C2B_ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
BIG = 70 * 1024  # over the endpoints' 64 KiB limit


@pytest.fixture(scope="module")
def targets(live):
    """A: paid (its callback will be replayed). B: waiting on the phone, its callback
    never comes. C: created by the payment form, no push sent yet."""
    live.emulator.reset()
    live.register_c2b_urls()

    invoice_a, _name = live.create_invoice(1200)
    client_a, processing_a = live.portal_transaction(invoice_a)
    live.stk_push(client_a, processing_a, "254711000400")
    a = live.tx(processing_a["reference"])
    (delivery,) = live.stk_deliveries(a, 1)
    a = live.wait_tx_state(a["id"], ("done",), timeout=30)
    # Its payment now, not by the cron workers in the middle of a case below.
    live.post_process()

    live.emulator.set_scenario("254711000401", no_callback=True)
    invoice_b, _name = live.create_invoice(1300)
    client_b, processing_b = live.portal_transaction(invoice_b)
    live.stk_push(client_b, processing_b, "254711000401")
    b = live.tx(processing_b["reference"])
    assert b["state"] == "pending", b
    prompt = live.emulator.prompts[b["mpesa_checkout_request_id"]]

    invoice_c, _name = live.create_invoice(1400)
    client_c, processing_c = live.portal_transaction(invoice_c)
    return SimpleNamespace(
        a=a,
        a_url=urlsplit(delivery.url).path,
        a_body=delivery.body,
        processing_a=processing_a,
        b=b,
        b_url=urlsplit(prompt.callback_url).path,
        c=live.tx(processing_c["reference"]),
        client_c=client_c,
        processing_c=processing_c,
    )


def success_body(checkout, receipt="HOSTILE001", amount=1300, result_code=0):
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "29115-34620561-1",
                "CheckoutRequestID": checkout,
                "ResultCode": result_code,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": amount},
                        {"Name": "MpesaReceiptNumber", "Value": receipt},
                        {"Name": "TransactionDate", "Value": 20261128101500},
                        {"Name": "PhoneNumber", "Value": 254711000401},
                    ]
                },
            }
        }
    }


def c2b_body(trans_id="HOSTILEC2B", amount="100.00"):
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": "20261128101500",
        "TransAmount": amount,
        "BusinessShortCode": "174379",
        "BillRefNumber": "NOSUCHREF",
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 401",
        "FirstName": "JOHN",
        "MiddleName": "",
        "LastName": "",
    }


def padded(payload, size=BIG):
    """Valid JSON, just too big."""
    return json.dumps({**payload, "padding": "x" * size})


def chunks(data, size=8192):
    """A body without Content-Length (chunked transfer encoding)."""
    data = data.encode()
    for start in range(0, len(data), size):
        yield data[start : start + size]


def c2b_path(live, kind="confirmation", provider_id=None, signature=None):
    if provider_id is None and signature is None:
        return live.c2b_url(kind)
    provider_id = live.provider_id if provider_id is None else provider_id
    return f"/payment/daraja/c2b/{provider_id}/{signature or '0' * 40}/{kind}"


def future():
    return int(time.time()) + 3600


# (name, request builder, expected status, expected new inbox rows, expected JSON answer)
# A builder gets (live, targets) and returns (method, path, body, content type).
CASES = [
    (
        "stk malformed JSON",
        lambda live, t: (
            "POST",
            t.b_url,
            '{"Body": {"stkCallback": ',
            "application/json",
        ),
        400,
        {"error": 1},
        MALFORMED,
    ),
    (
        "stk form-encoded body",
        lambda live, t: (
            "POST",
            t.b_url,
            "Body=1&CheckoutRequestID=" + t.b["mpesa_checkout_request_id"],
            "application/x-www-form-urlencoded",
        ),
        # Odoo parses a form before our code runs (the raw body is gone): refused
        # whole as an unsupported media type, Daraja always sends JSON.
        415,
        {},
        None,
    ),
    (
        "stk text/plain body",
        lambda live, t: ("POST", t.b_url, "ResultCode=0 paid", "text/plain"),
        400,
        {"error": 1},
        MALFORMED,
    ),
    (
        "stk body over 64 KiB",
        lambda live, t: (
            "POST",
            t.b_url,
            padded(success_body(t.b["mpesa_checkout_request_id"])),
            "application/json",
        ),
        413,
        {},
        None,
    ),
    (
        "stk chunked body over 64 KiB",
        lambda live, t: (
            "POST",
            t.b_url,
            chunks(padded(success_body(t.b["mpesa_checkout_request_id"]))),
            "application/json",
        ),
        413,
        {},
        None,
    ),
    (
        "stk JSON array",
        lambda live, t: ("POST", t.b_url, "[]", "application/json"),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk missing fields",
        lambda live, t: (
            "POST",
            t.b_url,
            {
                "Body": {
                    "stkCallback": {
                        "CheckoutRequestID": t.b["mpesa_checkout_request_id"]
                    }
                }
            },
            "application/json",
        ),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk wrong types (token signed here: proves the signing is right)",
        lambda live, t: (
            "POST",
            f"/payment/daraja/stk/{live.stk_token(t.b['id'], future())}",
            success_body(
                t.b["mpesa_checkout_request_id"], amount="lots", result_code="zero"
            ),
            "application/json",
        ),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk success without metadata",
        lambda live, t: (
            "POST",
            t.b_url,
            {
                "Body": {
                    "stkCallback": {
                        "MerchantRequestID": "1",
                        "CheckoutRequestID": t.b["mpesa_checkout_request_id"],
                        "ResultCode": 0,
                        "ResultDesc": "ok",
                    }
                }
            },
            "application/json",
        ),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk forged token",
        lambda live, t: (
            "POST",
            f"/payment/daraja/stk/{t.b['id']}.{future()}.{'a' * 40}",
            success_body(t.b["mpesa_checkout_request_id"]),
            "application/json",
        ),
        403,
        {},
        None,
    ),
    (
        "stk expired token",
        lambda live, t: (
            "POST",
            f"/payment/daraja/stk/{live.stk_token(t.b['id'], time.time() - 60)}",
            success_body(t.b["mpesa_checkout_request_id"]),
            "application/json",
        ),
        200,  # a URL we signed: kept for a person, never processed
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk nonsense token",
        lambda live, t: (
            "POST",
            "/payment/daraja/stk/nonsense",
            success_body(t.b["mpesa_checkout_request_id"]),
            "application/json",
        ),
        403,
        {},
        None,
    ),
    (
        "stk token of a transaction that does not exist",
        lambda live, t: (
            "POST",
            f"/payment/daraja/stk/{live.stk_token(10**8, future())}",
            success_body(t.b["mpesa_checkout_request_id"]),
            "application/json",
        ),
        200,  # a URL we signed: kept for a person, never processed
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk another transaction's URL (A's URL, B's payment)",
        lambda live, t: (
            "POST",
            t.a_url,
            success_body(t.b["mpesa_checkout_request_id"]),
            "application/json",
        ),
        # stored (every body on a valid URL is kept), not booked
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk another transaction's callback (B's URL, A's body)",
        lambda live, t: ("POST", t.b_url, t.a_body, "application/json"),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "stk GET",
        lambda live, t: ("GET", t.b_url, None, None),
        405,
        {},
        None,
    ),
    (
        "stk replayed callback",
        lambda live, t: ("POST", t.a_url, t.a_body, "application/json"),
        200,
        {"duplicate": 1},
        ACCEPTED,
    ),
    (
        "c2b forged signature",
        lambda live, t: ("POST", c2b_path(live, signature="0" * 40), c2b_body(), None),
        403,
        {},
        None,
    ),
    (
        "c2b provider that does not exist",
        lambda live, t: (
            "POST",
            c2b_path(live, provider_id=10**6, signature="0" * 40),
            c2b_body(),
            "application/json",
        ),
        403,
        {},
        None,
    ),
    (
        "c2b unknown kind",
        lambda live, t: (
            "POST",
            live.c2b_url().replace("/confirmation", "/reversal"),
            c2b_body(),
            "application/json",
        ),
        404,
        {},
        None,
    ),
    (
        "c2b malformed confirmation",
        lambda live, t: ("POST", c2b_path(live), '{"TransID": ', "application/json"),
        400,
        {"error": 1},
        MALFORMED,
    ),
    (
        "c2b confirmation with wrong types",
        lambda live, t: (
            "POST",
            c2b_path(live),
            c2b_body(amount="a lot"),
            "application/json",
        ),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "c2b confirmation missing fields",
        lambda live, t: ("POST", c2b_path(live), {"TransID": "X1"}, "application/json"),
        200,
        {"error": 1},
        ACCEPTED,
    ),
    (
        "c2b confirmation over 64 KiB",
        lambda live, t: (
            "POST",
            c2b_path(live),
            padded(c2b_body()),
            "application/json",
        ),
        413,
        {},
        None,
    ),
    (
        "c2b malformed validation (accepted: not ours to refuse)",
        lambda live, t: (
            "POST",
            c2b_path(live, "validation"),
            '{"TransID": ',
            "application/json",
        ),
        200,
        {"error": 1},
        C2B_ACCEPT,
    ),
]


def _new_inbox_rows(live, after_id):
    rows = live.sql.all("SELECT state FROM mpesa_callback WHERE id > %s", [after_id])
    return Counter(state for (state,) in rows)


@pytest.mark.parametrize(
    "build, status, inbox, answer",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_callback(live, targets, build, status, inbox, answer):
    method, path, body, content_type = build(live, targets)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    before = live.snapshot()
    last_id = live.sql.scalar("SELECT coalesce(max(id), 0) FROM mpesa_callback")

    headers = {"Content-Type": content_type} if content_type else {}
    try:
        response = http().request(
            method, live.url + path, data=body, headers=headers, timeout=60
        )
    except requests.ConnectionError as error:
        pytest.fail(f"{method} {path}: connection dropped instead of {status}: {error}")

    assert response.status_code == status, response.text[:500]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    if answer is not None:
        assert response.json() == answer
    live.settle_inbox()
    assert _new_inbox_rows(live, last_id) == Counter(inbox)
    assert live.snapshot() == before, "money changed"
    assert live.tx(tx_id=targets.b["id"])["state"] == "pending"
    assert live.tx(tx_id=targets.a["id"])["state"] == "done"


def _refused(live, params, client=None):
    """Call the payment form's route; it must refuse with a ValidationError (the
    message the form shows), not an internal error."""
    client = client or WebClient(live.url)
    with pytest.raises(JsonRpcError) as info:
        client.jsonrpc("/payment/mpesa/stk_push", params)
    error = info.value.error
    assert error["data"]["name"] == "odoo.exceptions.ValidationError", (
        error["data"]["name"],
        error["data"]["message"],
    )
    return error["data"]["message"]


def test_hostile_stk_push_requests(live, targets):
    """The payment form's JSON route refuses bad tokens, references, states and phones
    with a clear message, and no prompt reaches any phone."""
    before = live.snapshot()
    pushes_before = _pushes(live)
    c = targets.processing_c

    forged = {
        "reference": c["reference"],
        "access_token": "0" * 64,
        "phone": "0711000402",
    }
    assert "not valid" in _refused(live, forged)
    assert "not valid" in _refused(live, {**forged, "reference": "NO-SUCH-REFERENCE"})
    other_token = {**forged, "access_token": targets.processing_a["mpesa_access_token"]}
    assert "not valid" in _refused(live, other_token)
    again = {
        "reference": targets.processing_a["reference"],
        "access_token": targets.processing_a["mpesa_access_token"],
        "phone": "0711000402",
    }
    assert "already sent" in _refused(live, again)
    valid = {"reference": c["reference"], "access_token": c["mpesa_access_token"]}
    client = targets.client_c
    assert "not a Kenyan mobile number" in _refused(live, {**valid, "phone": "12345"})
    assert "phone number" in _refused(live, {**valid, "phone": ""}, client)
    assert "phone number" in _refused(live, {**valid, "phone": None}, client)
    assert "not a Kenyan" in _refused(live, {**valid, "phone": "0800 000 000"}, client)

    # Not JSON-RPC at all: refused by the HTTP layer.
    response = http().post(
        live.url + "/payment/mpesa/stk_push",
        data="reference=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert 400 <= response.status_code < 500, response.status_code
    assert "Traceback" not in response.text

    assert _pushes(live) == pushes_before, "no STK prompt was sent"
    assert live.tx(tx_id=targets.c["id"])["state"] == "draft"
    assert live.snapshot() == before


@pytest.mark.parametrize("phone", [["abc"], {"number": 7}, True], ids=repr)
def test_stk_push_phone_of_wrong_type(live, targets, phone):
    """JSON lets a script send any type as the phone: it must get the same clear
    refusal as a bad number, not an internal error (AttributeError on .strip())."""
    before = live.snapshot()
    valid = {
        "reference": targets.processing_c["reference"],
        "access_token": targets.processing_c["mpesa_access_token"],
    }
    message = _refused(live, {**valid, "phone": phone}, targets.client_c)
    assert "Kenyan mobile number" in message
    assert live.tx(tx_id=targets.c["id"])["state"] == "draft"
    assert live.snapshot() == before


def _pushes(live):
    return [
        body
        for _method, path, body in live.emulator.request_log
        if path.startswith("/mpesa/stkpush/")
    ]


def test_forged_paybill_confirmations_book_nothing(mpesa):
    """Well-formed paybill confirmations on the genuine URL that M-PESA never sent:
    one from an address outside the allow-list (refused, nothing stored), one from
    inside it quoting a receipt code M-PESA does not know (stored, asked about,
    refused by M-PESA). No invoice paid, nothing applied, the books check clean."""
    invoice_id, invoice_name = mpesa.create_invoice(1234)
    url = mpesa.c2b_url("confirmation")
    outside = mpesa.c2b_notification("FORGEDLV01", "254711000901", 1234, invoice_name)
    inside = mpesa.c2b_notification("FORGEDLV02", "254711000901", 1234, invoice_name)
    last_id = mpesa.sql.scalar("SELECT coalesce(max(id), 0) FROM mpesa_callback")

    mpesa.set_provider({"mpesa_callback_ips": "196.201.214.200"})  # Safaricom only
    try:
        ((status, _text),) = mpesa.fire(url, outside, 1)
    finally:
        mpesa.set_provider({"mpesa_callback_ips": False})
    assert status == 403
    ((status, text),) = mpesa.fire(url, inside, 1)
    assert (status, json.loads(text)) == (200, ACCEPTED)
    assert mpesa.wait_confirmed("FORGEDLV02") == "refused"

    stored = mpesa.sql.all(
        "SELECT kind, state FROM mpesa_callback WHERE id > %s AND kind != 'result'"
        " ORDER BY id",
        [last_id],
    )
    assert stored == [("c2b_confirmation", "processed")], "only the one let in"
    assert mpesa.receipts("FORGEDLV01") == []
    assert mpesa.statement_lines("FORGEDLV02") == []
    assert not mpesa.sql.all(
        "SELECT id FROM payment_transaction WHERE mpesa_receipt_code LIKE 'FORGEDLV%%'"
    )
    assert mpesa.invoice(invoice_id)["payment_state"] == "not_paid"
    assert mpesa.check_books() == []
