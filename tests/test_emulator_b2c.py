"""B2C payment requests (refunds): acknowledgement, Result, each failure."""

import time

import pytest
from daraja_emulator import DEFAULT_INITIATOR, DEFAULT_INITIATOR_PASSWORD

B2C_SHORTCODE = "600000"
PHONE = "254708374149"


@pytest.fixture
def b2c(emu):
    """A B2C shortcode with money in it; credentials really encrypted."""
    emu.fixed_credentials = False
    return emu.add_shortcode(B2C_SHORTCODE, balance=5000)


def pay(emu, client, receiver, version="v3", **overrides):
    body = {
        "OriginatorConversationID": "odoo-refund-1",
        "InitiatorName": DEFAULT_INITIATOR,
        "SecurityCredential": emu.security_credential(DEFAULT_INITIATOR_PASSWORD),
        "CommandID": "BusinessPayment",
        "Amount": 300,
        "PartyA": B2C_SHORTCODE,
        "PartyB": PHONE,
        "Remarks": "Refund INV/1",
        "QueueTimeOutURL": receiver.url("/timeout"),
        "ResultURL": receiver.url("/result"),
        "Occassion": "",
    }
    body.update(overrides)
    return client.post(f"/mpesa/b2c/{version}/paymentrequest", body)


def result_of(emu):
    return emu.wait_for_deliveries(1, kind="result")[0].payload["Result"]


def params(result):
    return {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}


def test_success_pays_the_phone_from_the_b2c_balance(emu, client, receiver, b2c):
    status, ack = pay(emu, client, receiver)
    assert status == 200, ack
    assert ack["ResponseCode"] == "0"
    assert ack["OriginatorConversationID"] == "odoo-refund-1"
    assert ack["ConversationID"].startswith("AG_")
    result = result_of(emu)
    assert emu.deliveries[0].url == receiver.url("/result")
    assert result["ResultCode"] == 0
    assert result["ConversationID"] == ack["ConversationID"]
    values = params(result)
    assert values["TransactionAmount"] == 300
    assert values["TransactionReceipt"] == result["TransactionID"]
    assert values["B2CRecipientIsRegisteredCustomer"] == "Y"
    assert values["ReceiverPartyPublicName"].startswith(PHONE + " - ")
    assert values["B2CUtilityAccountAvailableFunds"] == 4700.0
    assert set(values) >= {
        "TransactionCompletedDateTime",
        "B2CChargesPaidAccountAvailableFunds",
        "B2CWorkingAccountAvailableFunds",
    }
    assert b2c.balance == 4700
    assert emu.b2c_payments[result["TransactionID"]]["phone"] == PHONE


def test_v1_needs_no_originator_id(emu, client, receiver, b2c):
    status, ack = pay(
        emu, client, receiver, version="v1", OriginatorConversationID=None
    )
    assert status == 200 and ack["OriginatorConversationID"]
    assert result_of(emu)["ResultCode"] == 0


@pytest.mark.parametrize(
    "override,message",
    [
        ({"InitiatorName": "someone"}, "Invalid InitiatorName"),
        ({"SecurityCredential": "not base64!"}, "Invalid SecurityCredential"),
        ({"PartyA": "999999"}, "Invalid PartyA"),
        ({"CommandID": "TransactionReversal"}, "Invalid CommandID"),
        ({"Amount": "12.5"}, "Invalid Amount"),
        ({"PartyB": "0708374149"}, "Invalid PartyB"),
        ({"ResultURL": "nope"}, "Invalid ResultURL"),
        ({"OriginatorConversationID": ""}, "Invalid OriginatorConversationID"),
    ],
)
def test_bad_requests_refused_at_once(emu, client, receiver, b2c, override, message):
    status, answer = pay(emu, client, receiver, **override)
    assert status == 400
    assert answer["errorMessage"] == f"Bad Request - {message}"
    time.sleep(0.15)
    assert not emu.deliveries and b2c.balance == 5000


def test_wrong_credential_refused_in_result(emu, client, receiver, b2c):
    other = emu.security_credential("another password")
    status, ack = pay(emu, client, receiver, SecurityCredential=other)
    assert status == 200 and ack["ResponseCode"] == "0"
    result = result_of(emu)
    assert result["ResultCode"] == 2001
    assert result["ResultDesc"] == "The initiator information is invalid."
    assert "ResultParameters" not in result
    assert b2c.balance == 5000


def test_insufficient_balance(emu, client, receiver, b2c):
    pay(emu, client, receiver, Amount=5001)
    result = result_of(emu)
    assert result["ResultCode"] == 1
    assert "insufficient" in result["ResultDesc"]
    assert b2c.balance == 5000


@pytest.mark.parametrize("phone,code", [("254700002040", 2040), ("254700008006", 8006)])
def test_magic_phone_failures(emu, client, receiver, b2c, phone, code):
    pay(emu, client, receiver, PartyB=phone)
    assert result_of(emu)["ResultCode"] == code
    assert b2c.balance == 5000


def test_queue_timeout(emu, client, receiver, b2c):
    emu.queue_timeouts = True
    pay(emu, client, receiver)
    delivery = emu.wait_for_deliveries(1, kind="timeout")[0]
    assert delivery.url == receiver.url("/timeout")
    time.sleep(0.15)
    assert [d.kind for d in emu.deliveries] == ["timeout"]
    assert b2c.balance == 5000


def test_result_that_never_comes(emu, client, receiver, b2c):
    emu.b2c_silent = True
    status, ack = pay(emu, client, receiver)
    assert status == 200 and ack["ResponseCode"] == "0"
    time.sleep(0.3)
    assert not emu.deliveries
    assert b2c.balance == 5000
