"""Pull Transactions: registration, refusal of unregistered shortcodes, paging and
errors answered with HTTP 200 (shapes and sources: daraja_emulator/orgapi.py)."""

from datetime import datetime, timedelta

import pytest
from daraja_emulator import orgapi
from daraja_emulator.helpers import KENYA

REGISTER = "/pulltransactions/v1/register"
QUERY = "/pulltransactions/v1/query"
START = datetime(2023, 11, 21, 8, 0, 0, tzinfo=KENYA)


def register(client, shortcode="174379", **overrides):
    body = {
        "ShortCode": shortcode,
        "RequestType": "Pull",
        "NominatedNumber": "254722000000",
        "CallBackURL": "https://shop.example/pull",
    }
    body.update(overrides)
    return client.post(REGISTER, body)


def query(client, offset=0, start=START, end=None, shortcode="174379"):
    end = end or start + timedelta(hours=2)
    return client.post(
        QUERY,
        {
            "ShortCode": shortcode,
            "StartDate": start.strftime("%Y-%m-%d %H:%M:%S"),
            "EndDate": end.strftime("%Y-%m-%d %H:%M:%S"),
            "OffSetValue": str(offset),
        },
    )


@pytest.fixture
def strict(emu):
    emu.pull_requires_registration = True
    return emu


def test_register_answers_the_documented_shape_once(emu, client):
    status, answer = register(client)
    assert status == 200
    assert set(answer) == {
        "ResponseRefID",
        "ResponseStatus",
        "ShortCode",
        "ResponseDescription",
    }
    assert (answer["ResponseStatus"], answer["ShortCode"]) == ("1000", "174379")
    assert answer["ResponseDescription"] == "Shortcode Registered Successfully"
    code = emu.state.find_shortcode("174379")
    assert code.pull == {
        "nominated": "254722000000",
        "callback_url": "https://shop.example/pull",
    }
    # One-time: a second registration is 1001 and keeps the first one.
    status, answer = register(client, CallBackURL="https://other.example/pull")
    assert status == 200
    assert (answer["ResponseStatus"], answer["ResponseDescription"]) == (
        "1001",
        "ShortCode already Registered",
    )
    assert code.pull["callback_url"] == "https://shop.example/pull"


def test_register_is_remembered_per_shortcode(emu, client):
    emu.add_shortcode("600100")
    register(client, shortcode="600100", NominatedNumber="0722000000")
    assert emu.state.find_shortcode("600100").pull["nominated"] == "0722000000"
    assert emu.state.find_shortcode("174379").pull is None
    emu.reset()
    assert emu.state.find_shortcode("600100").pull is None


@pytest.mark.parametrize(
    "override, message",
    [
        ({"ShortCode": "999999"}, "Invalid ShortCode"),
        ({"RequestType": "Incremental"}, "Invalid RequestType"),
        ({"NominatedNumber": "07-22"}, "Invalid NominatedNumber"),
        ({"CallBackURL": "/pull"}, "Invalid CallBackURL"),
    ],
)
def test_register_checks_its_fields(emu, client, override, message):
    status, answer = register(client, **override)
    assert (status, answer["errorMessage"]) == (400, f"Bad Request - {message}")
    assert emu.state.find_shortcode("174379").pull is None


def test_register_needs_a_token(client):
    status, answer = client.post(REGISTER, {"ShortCode": "174379"}, token="not-a-token")
    assert (status, answer["errorCode"]) == (404, "404.001.03")


def test_unregistered_shortcode_is_refused_with_http_200(strict, client):
    strict.add_payment(10, time=START + timedelta(minutes=1))
    status, answer = query(client)
    assert status == 200
    assert (answer["ResponseCode"], answer["ResponseMessage"]) == orgapi.NOT_REGISTERED
    assert "Response" not in answer
    register(client)
    status, answer = query(client)
    assert (status, answer["ResponseCode"]) == (200, "1000")
    assert len(answer["Response"][0]) == 1


def test_unregistered_shortcode_is_pulled_when_not_strict(emu, client):
    # Off by default: suites written before registration existed keep working.
    emu.add_payment(10, time=START + timedelta(minutes=1))
    assert query(client)[1]["ResponseCode"] == "1000"


def test_pages_of_the_documented_size(strict, client):
    register(client)
    receipts = [
        strict.add_payment(i + 1, time=START + timedelta(seconds=i)) for i in range(250)
    ]
    pages, offset = [], 0
    while True:
        status, answer = query(client, offset)
        assert status == 200
        if answer["ResponseCode"] == "1001":
            break
        assert answer["ResponseCode"] == "1000"
        (page,) = answer["Response"]
        pages.append(page)
        offset += len(page)
    assert [len(page) for page in pages] == [100, 100, 50]
    assert [row["transactionId"] for page in pages for row in page] == receipts
    assert answer["Response"] == []


def test_page_size_control(emu, client):
    emu.pull_page_size = 3
    receipts = [emu.add_payment(5, time=START + timedelta(seconds=i)) for i in range(7)]
    first = query(client)[1]["Response"][0]
    third = query(client, 6)[1]["Response"][0]
    assert [r["transactionId"] for r in first] == receipts[:3]
    assert [r["transactionId"] for r in third] == receipts[6:]


def test_fault_answers_http_200_with_an_error_code(emu, client):
    register(client)
    emu.add_payment(10, time=START + timedelta(minutes=1))
    orgapi.fail_pulls(emu, times=2)
    for _ in range(2):
        status, answer = query(client)
        assert status == 200
        assert set(answer) == {"ResponseRefID", "ResponseCode", "ResponseMessage"}
        assert (answer["ResponseCode"], answer["ResponseMessage"]) == (
            "500",
            "Failed to retrieve transactions",
        )
    assert query(client)[1]["ResponseCode"] == "1000", "two failures only"


def test_fault_until_cleared_with_own_code(emu, client):
    orgapi.fail_pulls(emu, "1005", "System busy", times=None)
    for _ in range(3):
        assert query(client)[1]["ResponseCode"] == "1005"
    orgapi.fail_pulls(emu, times=0)
    assert query(client)[1]["ResponseCode"] == "1001"
