"""STK push: request checks, every scenario of the callback, and the STK query."""

import re
import time
from datetime import datetime

import pytest
from daraja_emulator import DEFAULT_PASSKEY, MAGIC_PHONES
from daraja_emulator.helpers import KENYA

PHONE = "254708374149"
RECEIPT_RE = re.compile(r"^[A-Z0-9]{10}$")


def push(client, receiver, phone=PHONE, path="/cb?order=7", **kwargs):
    status, answer = client.stk_push(
        phone=phone, callback_url=receiver.url(path), **kwargs
    )
    assert status == 200, answer
    return answer["CheckoutRequestID"]


def callbacks(emu, count=1):
    found = emu.wait_for_deliveries(count, kind="stk_callback")
    return [d.payload["Body"]["stkCallback"] for d in found]


def items(callback):
    return {i["Name"]: i.get("Value") for i in callback["CallbackMetadata"]["Item"]}


def wait_final(client, checkout_id, timeout=5.0):
    """Poll the STK query until the prompt has a final result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer = client.stk_query(checkout_id)
        if status == 200 and answer["ResultCode"] != "4999":
            return answer
        time.sleep(0.02)
    raise AssertionError("prompt never settled")


# -- success -----------------------------------------------------------------------
def test_push_success_int_amount(emu, client, receiver):
    checkout_id = push(client, receiver, amount=1)
    (callback,) = callbacks(emu)
    delivery = emu.deliveries[0]
    assert delivery.url == receiver.url("/cb?order=7")
    assert delivery.status == 200 and delivery.error is None
    got = receiver.wait_for(1)[0]
    assert got["path"] == "/cb?order=7"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["body"] == delivery.body
    assert callback["CheckoutRequestID"] == checkout_id
    assert callback["ResultCode"] == 0
    assert callback["ResultDesc"] == "The service request is processed successfully."
    meta = items(callback)
    assert list(meta) == [
        "Amount",
        "MpesaReceiptNumber",
        "TransactionDate",
        "PhoneNumber",
    ]
    assert meta["Amount"] == 1 and isinstance(meta["Amount"], int)
    assert b'{"Name": "Amount", "Value": 1}' in delivery.body
    assert RECEIPT_RE.match(meta["MpesaReceiptNumber"])
    assert meta["PhoneNumber"] == 254708374149
    paid_at = datetime.strptime(str(meta["TransactionDate"]), "%Y%m%d%H%M%S")
    now = datetime.now(KENYA).replace(tzinfo=None)
    assert abs((now - paid_at).total_seconds()) < 5  # Kenya local time
    payment = emu.payments[meta["MpesaReceiptNumber"]]
    assert payment["amount"] == 1 and payment["phone"] == PHONE
    assert payment["bill_ref"] == "INV00042" and payment["shortcode"] == "174379"
    assert payment["source"] == "stk"
    assert emu.balance("174379") == 1.0
    assert emu.prompts[checkout_id].status == "approved"


def test_decimal_amount_style(emu, client, receiver):
    emu.set_scenario(PHONE, amount_style="decimal")
    push(client, receiver, amount=1250)
    delivery = emu.wait_for_deliveries(1)[0]
    assert b'{"Name": "Amount", "Value": 1250.00}' in delivery.body
    assert items(delivery.payload["Body"]["stkCallback"])["Amount"] == 1250.0


def test_balance_item_without_value(emu, client, receiver):
    emu.set_scenario(PHONE, balance_item=True)
    push(client, receiver)
    item_list = callbacks(emu)[0]["CallbackMetadata"]["Item"]
    assert {"Name": "Balance"} in item_list
    assert [i["Name"] for i in item_list] == [
        "Amount",
        "MpesaReceiptNumber",
        "Balance",
        "TransactionDate",
        "PhoneNumber",
    ]


def test_amount_as_string_or_whole_float_accepted(emu, client, receiver):
    push(client, receiver, amount="10")
    push(client, receiver, amount=20.0)
    push(client, receiver, amount=250000)
    amounts = sorted(items(c)["Amount"] for c in callbacks(emu, 3))
    assert amounts == [10, 20, 250000]


# -- failures ------------------------------------------------------------------------
FAILURES = [
    ("254700001032", 1032, "Request cancelled by user", "declined"),
    ("254700001037", 1037, "DS timeout user cannot be reached", "timeout"),
    ("254700000001", 1, "The balance is insufficient for the transaction.", "failed"),
    ("254700002001", 2001, "The initiator information is invalid.", "failed"),
    ("254700001019", 1019, "Transaction has expired", "failed"),
]


@pytest.mark.parametrize("phone,code,desc,status", FAILURES)
def test_magic_failures(emu, client, receiver, phone, code, desc, status):
    checkout_id = push(client, receiver, phone=phone)
    (callback,) = callbacks(emu)
    assert callback["ResultCode"] == code and isinstance(callback["ResultCode"], int)
    assert callback["ResultDesc"] == desc
    assert "CallbackMetadata" not in callback
    status_code, answer = client.stk_query(checkout_id)
    assert status_code == 200
    assert answer["ResultCode"] == str(code) and answer["ResultDesc"] == desc
    assert emu.prompts[checkout_id].status == status
    assert emu.payments == {}


def test_magic_table_matches_documented_codes():
    assert {p: f["result_code"] for p, f in MAGIC_PHONES.items()} == {
        "254700001032": 1032,
        "254700001037": 1037,
        "254700000001": 1,
        "254700002001": 2001,
        "254700001019": 1019,
        "254700001038": 1037,
    }
    assert MAGIC_PHONES["254700001038"]["late_success_after"] == 1.0


def test_result_code_via_scenario(emu, client, receiver):
    emu.set_scenario("254711000000", result_code=17, result_desc="Rule limited.")
    push(client, receiver, phone="254711000000")
    callback = callbacks(emu)[0]
    assert (callback["ResultCode"], callback["ResultDesc"]) == (17, "Rule limited.")


def test_1037_without_late_success_stays_failed(emu, client, receiver):
    emu.set_scenario(PHONE, result_code=1037)
    checkout_id = push(client, receiver)
    assert callbacks(emu)[0]["ResultCode"] == 1037
    time.sleep(0.3)
    assert len(emu.deliveries) == 1
    assert client.stk_query(checkout_id)[1]["ResultCode"] == "1037"


def test_1037_then_late_success_magic(emu, client, receiver):
    checkout_id = push(client, receiver, phone="254700001038")
    first = callbacks(emu)[0]
    assert first["ResultCode"] == 1037
    assert client.stk_query(checkout_id)[1]["ResultCode"] == "1037"
    started = time.monotonic()
    first_cb, late = callbacks(emu, 2)
    assert time.monotonic() - started > 0.5  # the success comes about 1 s later
    assert late["CheckoutRequestID"] == checkout_id == first_cb["CheckoutRequestID"]
    assert late["ResultCode"] == 0
    receipt = items(late)["MpesaReceiptNumber"]
    assert client.stk_query(checkout_id)[1]["ResultCode"] == "0"
    assert receipt in emu.payments


def test_late_success_via_scenario(emu, client, receiver):
    emu.set_scenario(PHONE, result_code=1037, late_success_after=0.2)
    push(client, receiver)
    codes = [c["ResultCode"] for c in callbacks(emu, 2)]
    assert codes == [1037, 0]


def test_mismatched_partyb_gets_2028(emu, client, receiver):
    checkout_id = push(client, receiver, PartyB="600000")
    callback = callbacks(emu)[0]
    assert callback["ResultCode"] == 2028
    assert callback["ResultDesc"] == (
        "The request is not permitted according to product assignment"
    )
    assert emu.prompts[checkout_id].status == "failed"


def test_till_buy_goods(emu, client, receiver):
    emu.add_shortcode("300584", passkey="tillkey", kind="till", till="5566778")
    client.shortcode, client.passkey = "300584", "tillkey"
    buy = {"TransactionType": "CustomerBuyGoodsOnline"}
    push(client, receiver, PartyB="5566778", **buy)
    push(client, receiver, PartyB="300584", **buy)  # PartyB must be the till
    push(client, receiver, PartyB="300584")  # pay bill on a till
    codes = sorted(c["ResultCode"] for c in callbacks(emu, 3))
    assert codes == [0, 2028, 2028]
    assert [p["kind"] for p in emu.payments.values()] == ["till"]


# -- timing and repetition ---------------------------------------------------------------
def test_delay(emu, client, receiver):
    emu.set_scenario(PHONE, delay=0.5)
    started = time.time()
    checkout_id = push(client, receiver)
    assert client.stk_query(checkout_id)[0] == 500  # still open
    delivery = emu.wait_for_deliveries(1)[0]
    assert delivery.sent_at - started >= 0.5


def test_repeat_in_sequence(emu, client, receiver):
    emu.set_scenario(PHONE, repeat=3)
    push(client, receiver)
    found = emu.wait_for_deliveries(3)
    assert len({d.body for d in found}) == 1  # identical bodies
    assert [d.sent_at for d in found] == sorted(d.sent_at for d in found)
    assert len(receiver.wait_for(3)) == 3
    assert len(emu.payments) == 1  # one payment, three notifications


def test_repeat_concurrently(emu, client, receiver):
    emu.set_scenario(PHONE, repeat=3, concurrent=True)
    receiver.set_reply("/cb", delay=0.4)  # a slow merchant serialises sequential sends
    push(client, receiver)
    received = receiver.wait_for(3)
    arrivals = [r["at"] for r in received]
    assert max(arrivals) - min(arrivals) < 0.3  # all in flight together
    assert len({r["body"] for r in received}) == 1
    assert len(emu.wait_for_deliveries(3)) == 3


def test_before_response_delivers_first(emu, client, receiver):
    emu.set_scenario(PHONE, before_response=True)
    checkout_id = push(client, receiver)
    returned = time.time()
    # No waiting: the callback was answered before the push response came back.
    assert len(receiver.on("/cb")) == 1
    assert receiver.on("/cb")[0]["at"] <= returned
    assert (
        receiver.on("/cb")[0]["json"]["Body"]["stkCallback"]["CheckoutRequestID"]
        == checkout_id
    )
    assert emu.deliveries[0].status == 200


def test_no_callback(emu, client, receiver):
    emu.set_scenario(PHONE, no_callback=True)
    checkout_id = push(client, receiver)
    answer = wait_final(client, checkout_id)
    assert answer["ResultCode"] == "0"
    assert emu.deliveries == [] and receiver.received == []
    assert len(emu.payments) == 1


def test_paid_from_other_phone(emu, client, receiver):
    emu.set_scenario(PHONE, paid_phone="254722000111")
    push(client, receiver)
    assert items(callbacks(emu)[0])["PhoneNumber"] == 254722000111
    assert next(iter(emu.payments.values()))["phone"] == "254722000111"


def test_partial_amount(emu, client, receiver):
    emu.set_scenario(PHONE, amount=60)
    push(client, receiver, amount=100)
    assert items(callbacks(emu)[0])["Amount"] == 60
    assert next(iter(emu.payments.values()))["amount"] == 60


def test_metadata_missing(emu, client, receiver):
    emu.set_scenario(PHONE, metadata_missing=True)
    push(client, receiver)
    callback = callbacks(emu)[0]
    assert callback["ResultCode"] == 0 and "CallbackMetadata" not in callback


def test_default_scenario(emu, client, receiver):
    emu.set_default_scenario(result_code=1032)
    push(client, receiver, phone="254799999999")
    assert callbacks(emu)[0]["ResultCode"] == 1032


def test_unreachable_callback_url_is_logged(emu, client):
    status, _ = client.stk_push(callback_url="http://127.0.0.1:9/cb")
    assert status == 200
    delivery = emu.wait_for_deliveries(1)[0]
    assert delivery.status is None and delivery.error
    assert len(emu.payments) == 1  # the customer paid anyway


def test_ids_unique_and_well_formed(emu, client, receiver):
    ids = {push(client, receiver) for _ in range(10)}
    assert len(ids) == 10
    assert all(re.match(r"^ws_CO_\d{14}\d+$", i) for i in ids)
    receipts = {items(c)["MpesaReceiptNumber"] for c in callbacks(emu, 10)}
    assert len(receipts) == 10
    merchant_ids = [p.merchant_request_id for p in emu.prompts.values()]
    assert all(re.match(r"^\d+-\d+-\d+$", m) for m in merchant_ids)


# -- STK query -------------------------------------------------------------------
def test_query_pending_http500(emu, client, receiver):
    emu.set_scenario(PHONE, delay=5)
    checkout_id = push(client, receiver)
    status, answer = client.stk_query(checkout_id)
    assert status == 500
    assert answer == {
        "requestId": checkout_id,
        "errorCode": "500.001.1001",
        "errorMessage": "The transaction is being processed",
    }


def test_query_pending_4999(emu, client, receiver):
    emu.set_scenario(PHONE, delay=5, query_pending="4999")
    checkout_id = push(client, receiver)
    status, answer = client.stk_query(checkout_id)
    assert status == 200
    assert answer["ResponseCode"] == "0"
    assert answer["ResultCode"] == "4999"
    assert answer["ResultDesc"] == "The transaction is still under processing"


def test_query_final_result_code_is_string(emu, client, receiver):
    checkout_id = push(client, receiver)
    merchant_id = emu.prompts[checkout_id].merchant_request_id
    callbacks(emu)
    status, answer = client.stk_query(checkout_id)
    assert status == 200
    assert answer == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": merchant_id,
        "CheckoutRequestID": checkout_id,
        "ResultCode": "0",
        "ResultDesc": "The service request is processed successfully.",
    }


def test_query_errors(emu, client, receiver):
    checkout_id = push(client, receiver)
    status, answer = client.stk_query("ws_CO_000")
    assert (status, answer["errorMessage"]) == (
        400,
        "Bad Request - Invalid CheckoutRequestID",
    )
    status, answer = client.stk_query(checkout_id, Password="AAAA")
    assert (status, answer["errorCode"], answer["errorMessage"]) == (
        500,
        "500.001.1001",
        "Wrong credentials",
    )
    status, answer = client.stk_query(checkout_id, BusinessShortCode="999999")
    assert answer["errorMessage"] == "Bad Request - Invalid BusinessShortCode"


# -- request validation ------------------------------------------------------------------
REMARKS = "Bad Request - Invalid Remarks"
AMOUNT = "Bad Request - Invalid Amount"
PHONE_ERR = "Bad Request - Invalid PhoneNumber"
INVALID = [
    ({"BusinessShortCode": 999999}, 400, "Bad Request - Invalid BusinessShortCode"),
    ({"BusinessShortCode": "abc"}, 400, "Bad Request - Invalid BusinessShortCode"),
    ({"Password": "d3Jvbmc="}, 500, "Wrong credentials"),
    ({"Timestamp": "2024-01-01"}, 400, "Bad Request - Invalid Timestamp"),
    ({"TransactionType": "PayBill"}, 400, "Bad Request - Invalid TransactionType"),
    ({"Amount": 0}, 400, AMOUNT),
    ({"Amount": 1.5}, 400, AMOUNT),
    ({"Amount": "1.5"}, 400, AMOUNT),
    ({"Amount": 250001}, 400, AMOUNT),
    ({"Amount": "ten"}, 400, AMOUNT),
    ({"Amount": None}, 400, AMOUNT),
    ({"PhoneNumber": "0708374149"}, 400, PHONE_ERR),
    ({"PhoneNumber": "254808374149"}, 400, PHONE_ERR),
    ({"PartyA": "25470837414"}, 400, PHONE_ERR),
    ({"CallBackURL": "ftp://example.com/cb"}, 400, "Bad Request - Invalid CallBackURL"),
    ({"CallBackURL": "example.com/cb"}, 400, "Bad Request - Invalid CallBackURL"),
    ({"AccountReference": "A" * 13}, 400, REMARKS),
    ({"AccountReference": ""}, 400, REMARKS),
    ({"TransactionDesc": "D" * 14}, 400, REMARKS),
    ({"TransactionDesc": ""}, 400, REMARKS),
]


@pytest.mark.parametrize("override,status,message", INVALID)
def test_push_validation(emu, client, override, status, message):
    body = client.stk_body(**override)
    if "Timestamp" in override:  # keep the password consistent with the timestamp
        body["Password"] = client.password(override["Timestamp"])
    got_status, answer = client.post("/mpesa/stkpush/v1/processrequest", body)
    assert got_status == status
    assert answer["errorCode"] == ("400.002.02" if status == 400 else "500.001.1001")
    assert answer["errorMessage"] == message
    assert emu.prompts == {}


def test_push_limits_accepted(emu, client, receiver):
    push(
        client,
        receiver,
        phone="254110000001",
        AccountReference="A" * 12,
        TransactionDesc="D" * 13,
        BusinessShortCode="174379",
    )
    assert callbacks(emu)[0]["ResultCode"] == 0


def test_sample_request_password_vector(client, receiver):
    # The documented test vector: 174379 + sandbox passkey + 20160216165627.
    assert client.password("20160216165627", "174379", DEFAULT_PASSKEY) == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4Z"
        "TZiNzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3"
    )


def test_c2b_echo_of_stk_payment(emu, client, receiver):
    client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("/confirmation"),
            "ValidationURL": receiver.url("/validation"),
        },
    )
    emu.set_scenario(PHONE, c2b_echo=True, no_callback=True)
    checkout_id = push(client, receiver, amount=300)
    confirmation = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0].payload
    receipt = emu.prompts[checkout_id].receipt
    assert confirmation["TransID"] == receipt
    assert confirmation["TransAmount"] == "300.00"
    assert confirmation["BillRefNumber"] == "INV00042"
    assert confirmation["MSISDN"] == "2547 ***** 149"
    assert confirmation["OrgAccountBalance"] == "300.00"
    assert [d.kind for d in emu.deliveries] == ["c2b_confirmation"]  # no STK callback
    assert list(emu.payments) == [receipt]  # one payment, not two


def test_push_answer_lost_but_prompt_runs(emu, client, receiver):
    """Daraja accepted the push but the caller never got the answer: no
    CheckoutRequestID on the caller's side, yet the customer's callback comes."""
    emu.set_scenario(PHONE, response_lost=True)
    with pytest.raises(Exception) as lost:  # the connection closes with no answer
        client.stk_push(phone=PHONE, callback_url=receiver.url("/cb"))
    assert "RemoteDisconnected" in repr(lost.value) or "closed" in str(lost.value)
    (callback,) = callbacks(emu)
    assert callback["ResultCode"] == 0
    assert callback["CheckoutRequestID"] in emu.prompts
