"""Every payload the emulator emits has the documented shape of its sample in
daraja_emulator/samples/: same keys (recursively, including Item names and
ResultParameter keys, in order) and the same JSON type for every value."""

import json
import re
from pathlib import Path

import daraja_emulator
from daraja_emulator import DEFAULT_PASSKEY

SAMPLES = Path(daraja_emulator.__file__).parent / "samples"
PHONE = "254708374149"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def sample_text(name):
    return (SAMPLES / name).read_text()


def shape(value):
    """Structure and JSON types; Name/Key labels are kept as they are."""
    if isinstance(value, dict):
        return {k: v if k in ("Name", "Key") else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def assert_same_shape(emitted, name):
    expected = sample(name)
    assert shape(emitted) == shape(expected), name
    assert list(emitted) == list(expected), f"{name}: key order"


def stk_callback(emu, client, receiver, phone=PHONE, **scenario):
    if scenario:
        emu.set_scenario(phone, **scenario)
    client.stk_push(phone=phone, callback_url=receiver.url("/cb"))
    delivery = emu.wait_for_deliveries(1)[0]
    assert json.loads(delivery.body) == delivery.payload
    return delivery


def test_all_samples_are_packaged():
    names = {p.name for p in SAMPLES.iterdir()}
    assert names == {
        "c2b_confirmation_v2_masked.json",
        "c2b_register_request.json",
        "c2b_register_response.json",
        "c2b_validation_v2.json",
        "oauth_response.json",
        "org_portal_statement.csv",
        "reversal_request.json",
        "stk_callback_cancelled.json",
        "stk_callback_success.json",
        "stk_callback_success_with_empty_balance.json",
        "stk_push_error_response.json",
        "stk_push_request.json",
        "stk_push_response.json",
        "stk_query_request.json",
        "stk_query_response_done.json",
        "stk_query_response_processing_http500.json",
        "transaction_status_result.json",
    }
    header = sample_text("org_portal_statement.csv").splitlines()[0]
    assert header.startswith("Receipt No.,Completion Time,Initiation Time,Details")


def test_oauth_shape(client):
    assert_same_shape(client.oauth()[1], "oauth_response.json")


def test_sample_push_request_accepted_and_response_shape(emu, client, receiver):
    # The sample is sent as is (its Password is the documented test vector).
    request = {**sample("stk_push_request.json"), "CallBackURL": receiver.url("/cb")}
    status, answer = client.post("/mpesa/stkpush/v1/processrequest", request)
    assert status == 200
    assert_same_shape(answer, "stk_push_response.json")
    callback = emu.wait_for_deliveries(1)[0].payload["Body"]["stkCallback"]
    assert callback["CheckoutRequestID"] == answer["CheckoutRequestID"]
    assert callback["MerchantRequestID"] == answer["MerchantRequestID"]


def test_push_error_shape(client):
    status, answer = client.stk_push(BusinessShortCode=600000)
    assert status == 400
    assert_same_shape(answer, "stk_push_error_response.json")
    expected = sample("stk_push_error_response.json")
    assert (answer["errorCode"], answer["errorMessage"]) == (
        expected["errorCode"],
        expected["errorMessage"],
    )


def test_callback_success_decimal_shape(emu, client, receiver):
    delivery = stk_callback(emu, client, receiver, amount_style="decimal")
    assert_same_shape(delivery.payload, "stk_callback_success.json")
    literal = '{"Name": "Amount", "Value": 1.00}'
    assert literal in sample_text("stk_callback_success.json")
    assert literal.encode() in delivery.body


def test_callback_success_with_empty_balance_shape(emu, client, receiver):
    delivery = stk_callback(emu, client, receiver, balance_item=True)
    assert_same_shape(delivery.payload, "stk_callback_success_with_empty_balance.json")
    literal = '{"Name": "Amount", "Value": 1}'
    assert literal in sample_text("stk_callback_success_with_empty_balance.json")
    assert literal.encode() in delivery.body and b"1.0" not in delivery.body
    assert b'{"Name": "Balance"}' in delivery.body


def test_callback_cancelled_shape(emu, client, receiver):
    delivery = stk_callback(emu, client, receiver, phone="254700001032")
    assert_same_shape(delivery.payload, "stk_callback_cancelled.json")
    expected = sample("stk_callback_cancelled.json")["Body"]["stkCallback"]
    got = delivery.payload["Body"]["stkCallback"]
    assert (got["ResultCode"], got["ResultDesc"]) == (
        expected["ResultCode"],
        expected["ResultDesc"],
    )


def test_query_shapes(emu, client, receiver):
    emu.set_scenario(PHONE, delay=5)
    _, open_push = client.stk_push(callback_url=receiver.url("/cb"))
    request = sample("stk_query_request.json")
    assert set(client.stk_query("x")[1]) >= {"errorCode"}  # unknown id: an error
    timestamp = request["Timestamp"]
    request.update(
        Password=client.password(timestamp),
        CheckoutRequestID=open_push["CheckoutRequestID"],
    )
    status, pending = client.post("/mpesa/stkpushquery/v1/query", request)
    assert status == 500
    assert_same_shape(pending, "stk_query_response_processing_http500.json")
    assert (
        pending["errorMessage"]
        == sample("stk_query_response_processing_http500.json")["errorMessage"]
    )

    emu.set_scenario(PHONE)
    _, done_push = client.stk_push(callback_url=receiver.url("/cb"))
    emu.wait_for_deliveries(1)
    request["CheckoutRequestID"] = done_push["CheckoutRequestID"]
    status, done = client.post("/mpesa/stkpushquery/v1/query", request)
    assert status == 200
    assert_same_shape(done, "stk_query_response_done.json")
    expected = sample("stk_query_response_done.json")
    for key in ("ResponseCode", "ResponseDescription", "ResultCode", "ResultDesc"):
        assert done[key] == expected[key]


def test_c2b_register_shapes(emu, client, receiver):
    emu.add_shortcode("600984")
    request = {
        **sample("c2b_register_request.json"),
        "ConfirmationURL": receiver.url("/confirmation"),
        "ValidationURL": receiver.url("/validation"),
    }
    status, answer = client.post("/mpesa/c2b/v2/registerurl", request)
    assert status == 200
    assert_same_shape(answer, "c2b_register_response.json")
    assert answer["ResponseDescription"] == "Success"


def test_c2b_payloads_match_samples(emu, client, receiver):
    emu.add_shortcode("600966", balance=20)
    client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "600966",
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("/c"),
            "ValidationURL": receiver.url("/v"),
        },
    )
    emu.c2b_pay(
        "600966",
        "254708374126",
        5,
        "Sample Transaction",
        trans_id="RKL51ZDR4F",
        first_name="NICHOLAS",
    )
    validation, confirmation = emu.wait_for_deliveries(2)
    for delivery, name in (
        (validation, "c2b_validation_v2.json"),
        (confirmation, "c2b_confirmation_v2_masked.json"),
    ):
        assert_same_shape(delivery.payload, name)
        assert re.fullmatch(r"\d{14}", delivery.payload["TransTime"])
        # Identical to the sample apart from the time of payment.
        assert {**delivery.payload, "TransTime": "20231121121325"} == sample(name)


def test_transaction_status_result_shape(emu, client, receiver):
    emu.add_shortcode("600984", organization_name="Safaricom")
    emu.add_payment(
        10, phone=PHONE, shortcode="600984", receipt="MBN31H462N", first_name="John Doe"
    )
    client.post(
        "/mpesa/transactionstatus/v1/query",
        {
            "Initiator": "testapi",
            "SecurityCredential": emu.security_credential(),
            "CommandID": "TransactionStatusQuery",
            "TransactionID": "MBN31H462N",
            "PartyA": "600984",
            "IdentifierType": "4",
            "ResultURL": receiver.url("/r"),
            "QueueTimeOutURL": receiver.url("/t"),
            "Remarks": "OK",
            "Occasion": "",
        },
    )
    payload = emu.wait_for_deliveries(1, kind="result")[0].payload
    assert_same_shape(payload, "transaction_status_result.json")
    expected = sample("transaction_status_result.json")["Result"]
    got = payload["Result"]
    for key in (
        "DebitPartyName",
        "CreditPartyName",
        "DebitAccountType",
        "ReasonType",
        "TransactionStatus",
        "Amount",
        "ReceiptNo",
        "DebitPartyCharges",
    ):
        assert _param(got, key) == _param(expected, key), key
    assert got["ReferenceData"] == expected["ReferenceData"]


def _param(result, key):
    return next(
        p["Value"]
        for p in result["ResultParameters"]["ResultParameter"]
        if p["Key"] == key
    )


def test_sample_reversal_request_accepted(emu, client, receiver):
    request = sample("reversal_request.json")
    emu.add_shortcode("603021", initiator=request["Initiator"])
    # The sample's credential is encrypted with Safaricom's certificate, whose
    # private key only Safaricom has: the emulator decrypts its own.
    request["SecurityCredential"] = emu.security_credential()
    emu.add_payment(200, shortcode="603021", receipt=request["TransactionID"])
    request.update(ResultURL=receiver.url("/r"), QueueTimeOutURL=receiver.url("/t"))
    status, answer = client.post("/mpesa/reversal/v1/request", request)
    assert status == 200 and answer["ResponseCode"] == "0"
    result = emu.wait_for_deliveries(1, kind="result")[0].payload["Result"]
    assert result["ResultCode"] == 0
    assert _param(result, "OriginalTransactionID") == "PDU91HIVIT"


def test_sample_password_matches_test_vector(client):
    request = sample("stk_push_request.json")
    assert request["Password"] == client.password(
        request["Timestamp"], "174379", DEFAULT_PASSKEY
    )
