"""C2B: URL registration, simulate, validation outcomes and confirmation payloads."""

import hashlib
import time

import pytest
from daraja_emulator import DarajaEmulator
from daraja_emulator.testing import DarajaClient

MSISDN = "254708374126"
CONFIRMATION_KEYS = [
    "TransactionType",
    "TransID",
    "TransTime",
    "TransAmount",
    "BusinessShortCode",
    "BillRefNumber",
    "InvoiceNumber",
    "OrgAccountBalance",
    "ThirdPartyTransID",
    "MSISDN",
    "FirstName",
    "MiddleName",
    "LastName",
]


def register(
    client, receiver, version="v2", response_type="Completed", shortcode="174379"
):
    status, answer = client.post(
        f"/mpesa/c2b/{version}/registerurl",
        {
            "ShortCode": shortcode,
            "ResponseType": response_type,
            "ConfirmationURL": receiver.url("/confirmation"),
            "ValidationURL": receiver.url("/validation"),
        },
    )
    assert status == 200, answer
    return answer


def wait_payment(emu, trans_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trans_id in emu.payments:
            return emu.payments[trans_id]
        time.sleep(0.02)
    raise AssertionError(f"{trans_id} never recorded")


def no_confirmation(emu):
    with pytest.raises(TimeoutError):
        emu.wait_for_deliveries(1, kind="c2b_confirmation", timeout=0.3)
    return True


# -- registration ----------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_register(emu, client, receiver, version):
    answer = register(client, receiver, version)
    assert set(answer) == {
        "OriginatorCoversationID",
        "ResponseCode",
        "ResponseDescription",
    }
    assert answer["ResponseCode"] == "0" and answer["ResponseDescription"] == "Success"
    registration = emu.state.shortcodes["174379"].c2b
    assert registration["confirmation_url"] == receiver.url("/confirmation")
    assert registration["api_version"] == version


@pytest.mark.parametrize("response_type", ["completed", "Cancel", "", None])
def test_register_bad_response_type(client, response_type):
    status, answer = client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "174379",
            "ResponseType": response_type,
            "ConfirmationURL": "https://a.example/c",
            "ValidationURL": "https://a.example/v",
        },
    )
    assert status == 400 and answer["errorCode"] == "400.002.02"
    assert answer["errorMessage"] == "Bad Request - Invalid ResponseType"


def test_register_bad_urls_and_shortcode(client):
    base = {
        "ShortCode": "174379",
        "ResponseType": "Completed",
        "ConfirmationURL": "https://a.example/c",
        "ValidationURL": "https://a/v",
    }
    cases = [
        ({"ConfirmationURL": "ftp://a.example/c"}, "Invalid ConfirmationURL"),
        ({"ValidationURL": "nope"}, "Invalid ValidationURL"),
        ({"ShortCode": "111111"}, "Invalid ShortCode"),
    ]
    for override, message in cases:
        status, answer = client.post("/mpesa/c2b/v1/registerurl", {**base, **override})
        assert (status, answer["errorMessage"]) == (400, f"Bad Request - {message}")


def test_sandbox_allows_http_and_reregistration(emu, client, receiver):
    register(client, receiver)
    register(client, receiver, response_type="Cancelled")
    assert emu.state.shortcodes["174379"].c2b["response_type"] == "Cancelled"


FORBIDDEN = [
    "M-PESA",
    "mpesa",
    "MPesa",
    "Safaricom",
    "exe",
    "exec",
    "cmd",
    "sql",
    "query",
]


@pytest.mark.parametrize("word", FORBIDDEN)
@pytest.mark.parametrize("field", ["ConfirmationURL", "ValidationURL"])
def test_production_url_rules(word, field):
    with DarajaEmulator(production=True) as emu:
        client = DarajaClient(emu.base_url)
        body = {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": "https://shop.example/c2b/confirm",
            "ValidationURL": "https://shop.example/c2b/validate",
        }
        status, answer = client.post(
            "/mpesa/c2b/v2/registerurl",
            {**body, field: f"https://shop.example/{word}/cb"},
        )
        assert (status, answer["errorMessage"]) == (
            400,
            f"Bad Request - Invalid {field}",
        )
        status, answer = client.post(
            "/mpesa/c2b/v2/registerurl",
            {**body, field: "http://shop.example/c2b/plain-http"},
        )
        assert (status, answer["errorMessage"]) == (
            400,
            f"Bad Request - Invalid {field}",
        )
        assert emu.state.shortcodes["174379"].c2b is None


def test_production_already_registered():
    with DarajaEmulator(production=True) as emu:
        client = DarajaClient(emu.base_url)
        body = {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": "https://shop.example/c2b/confirm",
            "ValidationURL": "https://shop.example/c2b/validate",
        }
        assert client.post("/mpesa/c2b/v2/registerurl", body)[0] == 200
        status, answer = client.post("/mpesa/c2b/v2/registerurl", body)
    assert status == 500
    assert answer["errorCode"] == "500.003.1001"
    assert answer["errorMessage"] == "Urls are already registered"


def test_sandbox_registration_does_not_block_production(emu, client, receiver):
    register(client, receiver)  # sandbox
    emu.production = True
    body = {
        "ShortCode": "174379",
        "ResponseType": "Completed",
        "ConfirmationURL": "https://shop.example/c2b/confirm",
        "ValidationURL": "https://shop.example/c2b/validate",
    }
    assert client.post("/mpesa/c2b/v2/registerurl", body)[0] == 200
    assert client.post("/mpesa/c2b/v2/registerurl", body)[0] == 500


# -- simulate and payloads ----------------------------------------------------------------
def test_simulate_v2_validation_then_confirmation(emu, client, receiver):
    register(client, receiver)
    status, answer = client.post(
        "/mpesa/c2b/v2/simulate",
        {
            "ShortCode": "174379",
            "CommandID": "CustomerPayBillOnline",
            "Amount": 5,
            "Msisdn": MSISDN,
            "BillRefNumber": "INV00042",
        },
    )
    assert status == 200
    assert set(answer) == {
        "OriginatorCoversationID",
        "ResponseCode",
        "ResponseDescription",
    }
    assert answer["ResponseDescription"] == "Accept the service request successfully."
    validation, confirmation = emu.wait_for_deliveries(2)
    assert (validation.kind, confirmation.kind) == (
        "c2b_validation",
        "c2b_confirmation",
    )
    assert validation.url == receiver.url("/validation")
    for delivery in (validation, confirmation):
        assert list(delivery.payload) == CONFIRMATION_KEYS
        assert all(isinstance(v, str) for v in delivery.payload.values())
    v, c = validation.payload, confirmation.payload
    assert v["OrgAccountBalance"] == "" and c["OrgAccountBalance"] == "5.00"
    assert c["MSISDN"] == "2547 ***** 126"
    assert c["TransAmount"] == "5.00" and c["TransactionType"] == "Pay Bill"
    assert c["BusinessShortCode"] == "174379" and c["BillRefNumber"] == "INV00042"
    assert len(c["TransTime"]) == 14 and c["TransTime"].isdigit()
    assert v["TransID"] == c["TransID"]
    payment = wait_payment(emu, c["TransID"])
    assert payment["phone"] == MSISDN and payment["source"] == "c2b"


def test_simulate_v1_hashes_msisdn(emu, client, receiver):
    register(client, receiver, "v1")
    client.post(
        "/mpesa/c2b/v1/simulate",
        {
            "ShortCode": "174379",
            "CommandID": "CustomerPayBillOnline",
            "Amount": "10",
            "Msisdn": MSISDN,
            "BillRefNumber": "a",
        },
    )
    confirmation = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0]
    assert confirmation.payload["MSISDN"] == hashlib.sha256(MSISDN.encode()).hexdigest()


@pytest.mark.parametrize(
    "style,expected",
    [
        ("masked", "2547 ***** 126"),
        ("masked_compact", "2547****126"),
        ("hashed", hashlib.sha256(MSISDN.encode()).hexdigest()),
        ("plain", MSISDN),
    ],
)
def test_c2b_pay_msisdn_styles(emu, client, receiver, style, expected):
    register(client, receiver)
    trans_id = emu.c2b_pay(
        "174379",
        MSISDN,
        250,
        "ACC 1",
        msisdn_style=style,
        trans_id="RKL51ZDR4F",
        first_name="NICHOLAS",
    )
    assert trans_id == "RKL51ZDR4F"
    payload = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0].payload
    assert payload["MSISDN"] == expected
    assert payload["TransID"] == "RKL51ZDR4F" and payload["FirstName"] == "NICHOLAS"
    assert payload["TransAmount"] == "250.00"


@pytest.mark.parametrize(
    "override,message",
    [
        ({"ShortCode": "999"}, "Invalid ShortCode"),
        ({"CommandID": "PayBill"}, "Invalid CommandID"),
        ({"Amount": 0}, "Invalid Amount"),
        ({"Amount": 1.5}, "Invalid Amount"),
        ({"Msisdn": "0708374126"}, "Invalid Msisdn"),
    ],
)
def test_simulate_validation(client, override, message):
    body = {
        "ShortCode": "174379",
        "CommandID": "CustomerPayBillOnline",
        "Amount": 5,
        "Msisdn": MSISDN,
        "BillRefNumber": "x",
        **override,
    }
    status, answer = client.post("/mpesa/c2b/v2/simulate", body)
    assert (status, answer["errorMessage"]) == (400, f"Bad Request - {message}")


def test_c2b_pay_rejects_bad_arguments(emu):
    with pytest.raises(ValueError):
        emu.c2b_pay("999999", MSISDN, 5, "x")
    with pytest.raises(ValueError):
        emu.c2b_pay("174379", "0712345678", 5, "x")
    with pytest.raises(ValueError):
        emu.c2b_pay("174379", MSISDN, 5, "x", msisdn_style="weird")


# -- validation outcomes ---------------------------------------------------------------------
def test_validation_accepts(emu, client, receiver):
    register(client, receiver)
    receiver.set_reply("/validation", {"ResultCode": "0", "ResultDesc": "Accepted"})
    trans_id = emu.c2b_pay("174379", MSISDN, 5, "INV1")
    assert emu.wait_for_deliveries(1, kind="c2b_confirmation")
    assert wait_payment(emu, trans_id)["amount"] == 5


def test_validation_rejects(emu, client, receiver):
    register(client, receiver)
    receiver.set_reply(
        "/validation", {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    )
    trans_id = emu.c2b_pay("174379", MSISDN, 5, "BAD-REF")
    validation = emu.wait_for_deliveries(1, kind="c2b_validation")[0]
    assert validation.response_json()["ResultCode"] == "C2B00012"
    assert no_confirmation(emu)
    assert trans_id not in emu.payments and emu.balance() == 0


@pytest.mark.parametrize(
    "response_type,confirmed", [("Completed", True), ("Cancelled", False)]
)
def test_validation_timeout_follows_response_type(
    emu, client, receiver, response_type, confirmed
):
    register(client, receiver, response_type=response_type)
    receiver.set_reply("/validation", delay=1.0)  # longer than validation_timeout
    trans_id = emu.c2b_pay("174379", MSISDN, 5, "INV1")
    validation = emu.wait_for_deliveries(1, kind="c2b_validation")[0]
    assert validation.status is None and "timed out" in validation.error
    if confirmed:
        assert emu.wait_for_deliveries(1, kind="c2b_confirmation")
        assert wait_payment(emu, trans_id)
    else:
        assert no_confirmation(emu)
        assert trans_id not in emu.payments


def test_validation_http_error_follows_response_type(emu, client, receiver):
    register(client, receiver, response_type="Completed")
    receiver.set_reply("/validation", b"oops", status=500)
    emu.c2b_pay("174379", MSISDN, 5, "INV1")
    assert emu.wait_for_deliveries(1, kind="c2b_confirmation")
    assert emu.deliveries[0].status == 500


def test_no_external_validation(emu, client, receiver):
    emu.add_shortcode("600999", external_validation=False)
    register(client, receiver, shortcode="600999")
    emu.c2b_pay("600999", MSISDN, 7, "X")
    emu.wait_for_deliveries(1, kind="c2b_confirmation")
    assert [d.kind for d in emu.deliveries] == ["c2b_confirmation"]


def test_balance_accumulates_in_confirmations(emu, client, receiver):
    register(client, receiver)
    emu.c2b_pay("174379", MSISDN, 5, "A")
    emu.wait_for_deliveries(1, kind="c2b_confirmation")
    emu.c2b_pay("174379", MSISDN, 20, "B")
    found = emu.wait_for_deliveries(2, kind="c2b_confirmation")
    assert [d.payload["OrgAccountBalance"] for d in found] == ["5.00", "25.00"]


def test_till_buy_goods(emu, client, receiver):
    emu.add_shortcode("300584", kind="till", till="5566778")
    register(client, receiver, shortcode="300584")
    emu.c2b_pay("5566778", MSISDN, 5, "")  # paid to the till number
    payload = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0].payload
    assert payload["TransactionType"] == "Buy Goods"
    assert payload["BusinessShortCode"] == "300584"


def test_unregistered_shortcode_pays_silently(emu):
    trans_id = emu.c2b_pay("174379", MSISDN, 5, "X")
    assert wait_payment(emu, trans_id)
    assert emu.deliveries == []


# -- scenarios ------------------------------------------------------------------------------
def test_scenario_repeat_confirmation(emu, client, receiver):
    register(client, receiver)
    emu.set_scenario(MSISDN, repeat=3)
    emu.c2b_pay("174379", MSISDN, 5, "X")
    found = emu.wait_for_deliveries(3, kind="c2b_confirmation")
    assert len({d.body for d in found}) == 1
    assert len(emu.deliveries) == 4  # one validation, three confirmations


def test_scenario_concurrent_confirmation(emu, client, receiver):
    register(client, receiver)
    emu.set_scenario(MSISDN, repeat=2, concurrent=True)
    receiver.set_reply("/confirmation", delay=0.4)
    emu.c2b_pay("174379", MSISDN, 5, "X")
    arrivals = [r["at"] for r in receiver.wait_for(2, "/confirmation")]
    assert abs(arrivals[0] - arrivals[1]) < 0.3


def test_scenario_delay_and_no_callback(emu, client, receiver):
    register(client, receiver)
    emu.set_scenario(MSISDN, no_callback=True)
    emu.set_scenario("254711111111", delay=0.4)
    silent = emu.c2b_pay("174379", MSISDN, 5, "X")
    started = time.time()
    emu.c2b_pay("174379", "254711111111", 6, "Y")
    first = emu.wait_for_deliveries(1)[0]
    assert first.sent_at - started >= 0.4
    assert first.payload["TransAmount"] == "6.00"
    assert wait_payment(emu, silent)["amount"] == 5
    assert all(d.payload["TransAmount"] == "6.00" for d in emu.deliveries)
