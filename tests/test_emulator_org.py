"""Transaction status, reversal, account balance and pull transactions."""

import time
from datetime import datetime, timedelta

import pytest
from daraja_emulator import DEFAULT_INITIATOR
from daraja_emulator.helpers import KENYA

ACK_KEYS = {
    "OriginatorConversationID",
    "ConversationID",
    "ResponseCode",
    "ResponseDescription",
}


# The credential of the default initiator, set per emulator by real_credential().
CREDENTIAL = {}


@pytest.fixture(autouse=True)
def real_credential(emu):
    """The initiator password encrypted with this emulator's certificate, as a
    Daraja client sends it: the emulator, like Daraja, refuses anything else."""
    CREDENTIAL["default"] = emu.security_credential()
    yield
    CREDENTIAL.clear()


def initiator_body(receiver, **overrides):
    body = {
        "Initiator": DEFAULT_INITIATOR,
        "SecurityCredential": CREDENTIAL["default"],
        "PartyA": "174379",
        "IdentifierType": "4",
        "ResultURL": receiver.url("/result"),
        "QueueTimeOutURL": receiver.url("/timeout"),
        "Remarks": "Check",
        "Occasion": "",
    }
    body.update(overrides)
    return body


def status_query(client, receiver, receipt, **overrides):
    body = initiator_body(
        receiver, CommandID="TransactionStatusQuery", TransactionID=receipt, **overrides
    )
    return client.post("/mpesa/transactionstatus/v1/query", body)


def reverse(client, receiver, receipt, amount, **overrides):
    body = initiator_body(
        receiver,
        CommandID="TransactionReversal",
        TransactionID=receipt,
        Amount=str(amount),
        ReceiverParty="174379",
        RecieverIdentifierType="11",
        Remarks="Refund",
    )
    del body["PartyA"], body["IdentifierType"]
    body.update(overrides)
    return client.post("/mpesa/reversal/v1/request", body)


def result_of(emu, count=1):
    return emu.wait_for_deliveries(count, kind="result")[count - 1].payload["Result"]


def params(result):
    return {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}


def check_ack(status, answer):
    assert status == 200, answer
    assert set(answer) == ACK_KEYS
    assert answer["ResponseCode"] == "0"
    assert answer["ResponseDescription"] == "Accept the service request successfully."
    assert answer["ConversationID"].startswith("AG_")


# -- transaction status -------------------------------------------------------------------
def test_status_known_receipt(emu, client, receiver):
    receipt = emu.add_payment(
        10, phone="254708374149", bill_ref="INV1", first_name="JOHN DOE"
    )
    status, answer = status_query(client, receiver, receipt, Occasion="Audit")
    check_ack(status, answer)
    result = result_of(emu)
    assert emu.deliveries[0].url == receiver.url("/result")
    assert result["ResultType"] == 0 and result["ResultCode"] == 0
    assert result["OriginatorConversationID"] == answer["OriginatorConversationID"]
    assert result["ConversationID"] == answer["ConversationID"]
    values = params(result)
    assert values["ReceiptNo"] == receipt
    assert values["Amount"] == 10 and isinstance(values["Amount"], int)
    assert values["TransactionStatus"] == "Completed"
    assert values["DebitPartyName"] == "254708374149 - JOHN DOE"
    assert values["CreditPartyName"].startswith("174379 - ")
    assert isinstance(values["InitiatedTime"], int)
    assert isinstance(values["FinalisedTime"], int)
    assert result["ReferenceData"]["ReferenceItem"] == {
        "Key": "Occasion",
        "Value": "Audit",
    }


def test_status_of_stk_payment(emu, client, receiver):
    client.stk_push(callback_url=receiver.url("/cb"))
    callback = emu.wait_for_deliveries(1, kind="stk_callback")[0].payload
    items = callback["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    receipt = items[1]["Value"]
    status_query(client, receiver, receipt)
    assert params(result_of(emu))["ReceiptNo"] == receipt


def test_status_unknown_receipt(emu, client, receiver):
    status, answer = status_query(client, receiver, "ZZZ0000000")
    check_ack(status, answer)
    result = result_of(emu)
    assert result["ResultCode"] == "R000002"
    assert result["ResultDesc"] == (
        "The OriginatorConversationID or TransactionID is invalid"
    )
    assert "ResultParameters" not in result


def test_status_receipt_of_other_shortcode_is_unknown(emu, client, receiver):
    emu.add_shortcode("600984")
    receipt = emu.add_payment(10, shortcode="600984")
    status_query(client, receiver, receipt)
    assert result_of(emu)["ResultCode"] == "R000002"


def test_status_reversed_receipt(emu, client, receiver):
    receipt = emu.add_payment(10)
    reverse(client, receiver, receipt, 10)
    assert result_of(emu)["ResultCode"] == 0
    status_query(client, receiver, receipt)
    assert params(result_of(emu, 2))["TransactionStatus"] == "Reversed"


@pytest.mark.parametrize(
    "override,message",
    [
        ({"Initiator": "someone"}, "Invalid Initiator"),
        ({"SecurityCredential": "bad"}, "Invalid SecurityCredential"),
        ({"PartyA": "123"}, "Invalid PartyA"),
        ({"CommandID": "Nope"}, "Invalid CommandID"),
        ({"ResultURL": "nope"}, "Invalid ResultURL"),
        ({"QueueTimeOutURL": ""}, "Invalid QueueTimeOutURL"),
        ({"Remarks": ""}, "Invalid Remarks"),
        ({"IdentifierType": "9"}, "Invalid IdentifierType"),
        ({"TransactionID": ""}, "Invalid TransactionID"),
    ],
)
def test_status_validation(emu, client, receiver, override, message):
    body = initiator_body(
        receiver, CommandID="TransactionStatusQuery", TransactionID="X"
    )
    body.update(override)
    status, answer = client.post("/mpesa/transactionstatus/v1/query", body)
    assert (status, answer["errorCode"]) == (400, "400.002.02")
    assert answer["errorMessage"] == f"Bad Request - {message}"


def test_custom_initiator(emu, client, receiver):
    emu.add_shortcode("600984", initiator="apiop37", initiator_password="S3cr3t!")
    ok = status_query(
        client,
        receiver,
        "X",
        PartyA="600984",
        Initiator="apiop37",
        SecurityCredential=emu.security_credential("S3cr3t!"),
    )
    assert ok[0] == 200
    bad = status_query(client, receiver, "X", PartyA="600984")
    assert bad[1]["errorMessage"] == "Bad Request - Invalid Initiator"


def test_queue_timeout(emu, client, receiver):
    emu.queue_timeouts = True
    status_query(client, receiver, "X")
    delivery = emu.wait_for_deliveries(1, kind="timeout")[0]
    assert delivery.url == receiver.url("/timeout")
    assert delivery.payload["Result"]["ResultType"] == 1


def test_result_after_queue_timeout(emu, client, receiver):
    emu.queue_timeouts = True
    emu.result_after_timeout = True
    receipt = emu.add_payment(150)
    status_query(client, receiver, receipt)
    (timeout,) = emu.wait_for_deliveries(1, kind="timeout")
    (result,) = emu.wait_for_deliveries(1, kind="result")
    assert timeout.payload["Result"]["ResultType"] == 1
    assert result.payload["Result"]["ResultCode"] == 0


def test_result_before_the_acknowledgement(emu, client, receiver):
    emu.result_before_ack = True
    receipt = emu.add_payment(150)
    status, answer = status_query(client, receiver, receipt)
    check_ack(status, answer)
    # Already delivered, and answered, when the acknowledgement came: not waited for.
    (result,) = [d for d in emu.deliveries if d.kind == "result"]
    assert result.status == 200
    assert result.payload["Result"]["ConversationID"] == answer["ConversationID"]
    assert result.payload["Result"]["ResultCode"] == 0


# -- reversal ----------------------------------------------------------------------------------
def test_reversal_success_then_repeated(emu, client, receiver):
    receipt = emu.add_payment(200, first_name="JANE")
    assert emu.balance() == 200
    status, answer = reverse(client, receiver, receipt, 200)
    check_ack(status, answer)
    result = result_of(emu)
    assert result["ResultCode"] == 0
    values = params(result)
    assert set(values) == {
        "DebitAccountBalance",
        "Amount",
        "TransCompletedTime",
        "OriginalTransactionID",
        "Charge",
        "CreditPartyPublicName",
        "DebitPartyPublicName",
    }
    assert values["OriginalTransactionID"] == receipt
    assert values["Amount"] == 200
    assert values["DebitAccountBalance"].startswith("Utility Account|KES|0.00|")
    assert values["CreditPartyPublicName"] == "254708374149 - JANE"
    assert isinstance(values["TransCompletedTime"], int)
    assert emu.balance() == 0
    assert emu.payments[receipt]["status"] == "Reversed"

    reverse(client, receiver, receipt, 200)
    again = result_of(emu, 2)
    assert (again["ResultCode"], again["ResultDesc"]) == (
        "R000001",
        "The transaction has already been reversed",
    )
    assert emu.balance() == 0


def test_reversal_answer_lost_but_money_moves(emu, client, receiver):
    """Daraja took the reversal but its answer never reached the caller: the
    connection closes with no answer, yet the money moves and the Result comes."""
    emu.initiator_response_lost = True
    receipt = emu.add_payment(200)
    with pytest.raises(Exception) as lost:
        reverse(client, receiver, receipt, 200)
    assert "RemoteDisconnected" in repr(lost.value) or "closed" in str(lost.value)
    assert result_of(emu)["ResultCode"] == 0
    assert emu.payments[receipt]["status"] == "Reversed"


def test_reversal_result_held_then_released(emu, client, receiver):
    """A late Result on demand: after the queue timeout, M-PESA reverses the
    payment and gives the receipt code, but the Result is kept back until the
    test releases it, then POSTed unchanged."""
    emu.queue_timeouts = emu.result_after_timeout = emu.hold_results = True
    receipt = emu.add_payment(200)
    check_ack(*reverse(client, receiver, receipt, 200))
    emu.wait_for_deliveries(1, kind="timeout")
    deadline = time.monotonic() + 5
    while not emu.held_results and time.monotonic() < deadline:
        time.sleep(0.02)
    [(url, body)] = emu.held_results
    assert url == receiver.url("/result")
    assert emu.payments[receipt]["status"] == "Reversed" and emu.balance() == 0
    assert not [d for d in emu.deliveries if d.kind == "result"]

    [delivery] = emu.release_results()
    assert delivery.payload == body and delivery.status == 200
    assert params(body["Result"])["OriginalTransactionID"] == receipt
    assert body["Result"]["TransactionID"] != receipt
    assert emu.held_results == []


def test_reversal_unknown_and_wrong_amount(emu, client, receiver):
    reverse(client, receiver, "NOPE000000", 10)
    assert result_of(emu)["ResultCode"] == "R000002"
    receipt = emu.add_payment(50)
    reverse(client, receiver, receipt, 40)
    assert result_of(emu, 2)["ResultCode"] != 0
    assert emu.payments[receipt]["status"] == "Completed" and emu.balance() == 50


def test_reversal_requires_misspelled_key(emu, client, receiver):
    receipt = emu.add_payment(10)
    body = initiator_body(
        receiver,
        CommandID="TransactionReversal",
        TransactionID=receipt,
        Amount="10",
        ReceiverParty="174379",
        ReceiverIdentifierType="11",
    )  # correct spelling: ignored
    status, answer = client.post("/mpesa/reversal/v1/request", body)
    assert (status, answer["errorMessage"]) == (
        400,
        "Bad Request - Invalid RecieverIdentifierType",
    )


@pytest.mark.parametrize(
    "override,message",
    [
        ({"Amount": "1.5"}, "Invalid Amount"),
        ({"ReceiverParty": "1"}, "Invalid ReceiverParty"),
        ({"CommandID": "TransactionStatusQuery"}, "Invalid CommandID"),
    ],
)
def test_reversal_validation(client, receiver, override, message):
    status, answer = reverse(client, receiver, "ABC", 10, **override)
    assert (status, answer["errorMessage"]) == (400, f"Bad Request - {message}")


# -- account balance -----------------------------------------------------------------------------
def test_account_balance(emu, client, receiver):
    emu.add_payment(1234.5)
    body = initiator_body(receiver, CommandID="AccountBalance")
    status, answer = client.post("/mpesa/accountbalance/v1/query", body)
    check_ack(status, answer)
    result = result_of(emu)
    assert result["ResultCode"] == 0
    values = params(result)
    assert values["AccountBalance"] == (
        "Working Account|KES|700000.00|700000.00|0.00|0.00"
        "&Utility Account|KES|1234.50|1234.50|0.00|0.00"
        "&Charges Paid Account|KES|0.00|0.00|0.00|0.00"
    )
    assert isinstance(values["BOCompletedTime"], int)
    assert len(str(values["BOCompletedTime"])) == 14


def test_account_balance_validation(client, receiver):
    body = initiator_body(receiver, CommandID="AccountBalance", IdentifierType="1")
    status, answer = client.post("/mpesa/accountbalance/v1/query", body)
    assert (status, answer["errorMessage"]) == (
        400,
        "Bad Request - Invalid IdentifierType",
    )


def test_initial_balance(emu, client, receiver):
    emu.add_shortcode("600100", balance=500)
    body = initiator_body(receiver, CommandID="AccountBalance", PartyA="600100")
    client.post("/mpesa/accountbalance/v1/query", body)
    assert "Utility Account|KES|500.00|" in params(result_of(emu))["AccountBalance"]


# -- pull transactions ----------------------------------------------------------------------------
def pull(client, start, end, offset="0", shortcode="174379"):
    return client.post(
        "/pulltransactions/v1/query",
        {
            "ShortCode": shortcode,
            "StartDate": start.strftime("%Y-%m-%d %H:%M:%S"),
            "EndDate": end.strftime("%Y-%m-%d %H:%M:%S"),
            "OffSetValue": offset,
        },
    )


def test_pull_register(client):
    status, answer = client.post(
        "/pulltransactions/v1/register",
        {
            "ShortCode": "174379",
            "RequestType": "Pull",
            "NominatedNumber": "254708374149",
            "CallBackURL": "https://shop.example/pull",
        },
    )
    assert status == 200
    assert answer["ResponseStatus"] == "1000" and answer["ShortCode"] == "174379"
    assert answer["ResponseDescription"] == "Shortcode Registered Successfully"
    assert "ResponseRefID" in answer
    status, answer = client.post(
        "/pulltransactions/v1/register",
        {
            "ShortCode": "174379",
            "RequestType": "Push",
            "NominatedNumber": "254708374149",
            "CallBackURL": "https://shop.example/pull",
        },
    )
    assert answer["errorMessage"] == "Bad Request - Invalid RequestType"


def test_pull_rows(emu, client):
    when = datetime(2023, 11, 21, 12, 13, 25, tzinfo=KENYA)
    receipt = emu.add_payment(
        1000, phone="254708374149", bill_ref="INV00042", time=when
    )
    status, answer = pull(client, when - timedelta(hours=1), when + timedelta(hours=1))
    assert status == 200
    assert (answer["ResponseCode"], answer["ResponseMessage"]) == ("1000", "Success")
    assert answer["Response"] == [
        [
            {
                "transactionId": receipt,
                "trxDate": "2023-11-21T12:13:25.000+03:00",
                "msisdn": 254708374149,
                "sender": "",
                "transactiontype": "c2b-pay-bill-debit",
                "billreference": "INV00042",
                "amount": "1000.0",
                "organizationname": "Emulator Merchant",
            }
        ]
    ]


def test_pull_window_and_no_records(emu, client):
    start = datetime(2023, 11, 1, 0, 0, 0)
    status, answer = pull(client, start, start + timedelta(hours=48, seconds=1))
    assert (status, answer["errorMessage"]) == (400, "Bad Request - Invalid date range")
    status, answer = pull(client, start, start - timedelta(seconds=1))
    assert answer["errorMessage"] == "Bad Request - Invalid date range"
    status, answer = pull(client, start, start + timedelta(hours=48))
    assert status == 200
    assert (answer["ResponseCode"], answer["ResponseMessage"]) == (
        "1001",
        "No records found",
    )
    assert answer["Response"] == []
    status, answer = client.post(
        "/pulltransactions/v1/query",
        {
            "ShortCode": "174379",
            "StartDate": "21/11/2023",
            "EndDate": "x",
            "OffSetValue": "0",
        },
    )
    assert answer["errorMessage"] == "Bad Request - Invalid StartDate"


def test_pull_paging(emu, client):
    start = datetime(2023, 11, 21, 8, 0, 0, tzinfo=KENYA)
    receipts = [
        emu.add_payment(i + 1, time=start + timedelta(seconds=i)) for i in range(150)
    ]
    end = start + timedelta(hours=2)
    first = pull(client, start, end)[1]["Response"][0]
    second = pull(client, start, end, offset="100")[1]["Response"][0]
    assert len(first) == 100 and len(second) == 50
    assert [r["transactionId"] for r in first + second] == receipts
    assert pull(client, start, end, offset="150")[1]["ResponseCode"] == "1001"


def test_pull_includes_stk_and_c2b(emu, client, receiver):
    client.stk_push(callback_url=receiver.url("/cb"))
    emu.wait_for_deliveries(1)
    trans_id = emu.c2b_pay("174379", "254711222333", 5, "ACC")
    now = datetime.now(KENYA)
    for _ in range(100):  # the C2B payment is recorded by a worker thread
        if trans_id in emu.payments:
            break
        time.sleep(0.02)
    rows = pull(client, now - timedelta(minutes=5), now + timedelta(minutes=5))[1]
    sources = sorted(r["billreference"] for r in rows["Response"][0])
    assert sources == ["ACC", "INV00042"]


def test_till_asked_by_its_till_number(emu, client, receiver):
    """A Buy Goods till is queried by its till number (IdentifierType 2): the
    balance and the status of a payment made to it."""
    emu.add_shortcode("600100", kind="till", till="600200", balance=300)
    receipt = emu.c2b_pay("600200", "254708374149", 120, "", msisdn_style="plain")
    for _ in range(100):  # the payment is recorded by a worker thread
        if receipt in emu.payments:
            break
        time.sleep(0.02)
    body = initiator_body(
        receiver, CommandID="AccountBalance", PartyA="600200", IdentifierType="2"
    )
    check_ack(*client.post("/mpesa/accountbalance/v1/query", body))
    assert "Utility Account|KES|420.00|" in params(result_of(emu))["AccountBalance"]
    check_ack(
        *status_query(client, receiver, receipt, PartyA="600200", IdentifierType="2")
    )
    assert result_of(emu, 2)["ResultCode"] == 0
