"""Initiator APIs answered by a later POST to ResultURL (transaction status,
reversal, account balance) and the synchronous Pull Transactions query."""

import json

from . import helpers
from .callbacks import spawn

SUCCESS = "The service request is processed successfully."
INVALID_ID = ("R000002", "The OriginatorConversationID or TransactionID is invalid")
ALREADY_REVERSED = ("R000001", "The transaction has already been reversed")
# Emulator's own choice: Safaricom documents no code for a wrong reversal amount.
WRONG_AMOUNT = ("R000003", "The reversal amount does not match the transaction amount")
ACK = "Accept the service request successfully."


def _params(pairs):
    return {"ResultParameter": [{"Key": k, "Value": v} for k, v in pairs]}


def _result(ack, code, desc, transaction_id, params=None, reference=None):
    result = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": desc,
        "OriginatorConversationID": ack["OriginatorConversationID"],
        "ConversationID": ack["ConversationID"],
        "TransactionID": transaction_id,
    }
    if params is not None:
        result["ResultParameters"] = _params(params)
    if reference is not None:
        result["ReferenceData"] = {"ReferenceItem": reference}
    return {"Result": result}


def acknowledge(emu, data, build):
    """Sync ack now; build(ack) -> Result body POSTed to ResultURL from a worker."""
    moment = helpers.kenya_now()
    ack = {
        "OriginatorConversationID": helpers.request_id(),
        "ConversationID": helpers.conversation_id(moment),
        "ResponseCode": "0",
        "ResponseDescription": ACK,
    }
    spawn(_send, emu, ack, data, build, emu.state.generation)
    return ack


def _send(emu, ack, data, build, gen):
    if not emu.pause(emu.result_delay) or not emu.alive(gen):
        return
    if emu.queue_timeouts:
        # Not taken from Safaricom's pages: a plain "timed out in the queue" Result.
        body = _result(ack, 1, "The request timed out in the queue", "")
        body["Result"]["ResultType"] = 1
        emu.courier.post("timeout", data["QueueTimeOutURL"], json.dumps(body).encode())
        if not emu.result_after_timeout or not emu.pause(emu.result_delay):
            return
    body = build(ack)
    emu.courier.post("result", data["ResultURL"], json.dumps(body).encode())


def _party(payment):
    return f"{payment['phone']} - {payment['first_name']}"


def transaction_status(emu, code, data):
    def build(ack):
        occasion = {"Key": "Occasion", "Value": data.get("Occasion") or ""}
        payment = _payment(emu, code, data.get("TransactionID"))
        receipt = emu.state.new_receipt()
        if payment is None:
            return _result(ack, *INVALID_ID, receipt, reference=occasion)
        when = int(helpers.stamp(payment["time"]))
        return _result(
            ack,
            0,
            SUCCESS,
            receipt,
            [
                ("DebitPartyName", _party(payment)),
                ("CreditPartyName", f"{code.shortcode} - {code.organization_name}"),
                ("OriginatorConversationID", ack["OriginatorConversationID"]),
                ("InitiatedTime", when),
                ("DebitAccountType", "Utility Account"),
                ("DebitPartyCharges", ""),
                ("TransactionReason", ""),
                (
                    "ReasonType",
                    "Buy Goods Online" if code.kind == "till" else "Pay Bill Online",
                ),
                ("TransactionStatus", payment["status"]),
                ("FinalisedTime", when),
                ("Amount", payment["amount"]),
                ("ConversationID", ack["ConversationID"]),
                ("ReceiptNo", payment["receipt"]),
            ],
            occasion,
        )

    return acknowledge(emu, data, build)


def reversal(emu, code, data, amount):
    def build(ack):
        reference = {"Key": "QueueTimeoutURL", "Value": data["QueueTimeOutURL"]}
        receipt = emu.state.new_receipt()
        with emu.state.lock:
            payment = _payment(emu, code, data.get("TransactionID"))
            if payment is None:
                error = INVALID_ID
            elif payment["status"] == "Reversed":
                error = ALREADY_REVERSED
            elif float(amount) != float(payment["amount"]):
                error = WRONG_AMOUNT
            else:
                error = None
                payment["status"] = "Reversed"
                payment["reversal"] = receipt
                code.balance -= float(payment["amount"])
                balance = helpers.money(code.balance)
        if error:
            return _result(ack, *error, receipt, reference=reference)
        return _result(
            ack,
            0,
            SUCCESS,
            receipt,
            [
                (
                    "DebitAccountBalance",
                    f"Utility Account|KES|{balance}|{balance}|0.00|0.00",
                ),
                ("Amount", payment["amount"]),
                ("TransCompletedTime", int(helpers.stamp(helpers.kenya_now()))),
                ("OriginalTransactionID", payment["receipt"]),
                ("Charge", 0.0),
                ("CreditPartyPublicName", _party(payment)),
                (
                    "DebitPartyPublicName",
                    f"{code.shortcode} - {code.organization_name}",
                ),
            ],
            reference,
        )

    return acknowledge(emu, data, build)


def account_balance(emu, code, data):
    def build(ack):
        bal = helpers.money(code.balance)
        accounts = "&".join(
            [
                "Working Account|KES|700000.00|700000.00|0.00|0.00",
                f"Utility Account|KES|{bal}|{bal}|0.00|0.00",
                "Charges Paid Account|KES|0.00|0.00|0.00|0.00",
            ]
        )
        return _result(
            ack,
            0,
            SUCCESS,
            emu.state.new_receipt(),
            [
                ("AccountBalance", accounts),
                ("BOCompletedTime", int(helpers.stamp(helpers.kenya_now()))),
            ],
            {"Key": "QueueTimeoutURL", "Value": data["QueueTimeOutURL"]},
        )

    return acknowledge(emu, data, build)


def _payment(emu, code, receipt):
    payment = emu.state.payments.get(receipt) if isinstance(receipt, str) else None
    if payment is None or payment["shortcode"] != code.shortcode:
        return None
    return payment


PAGE_SIZE = 100


def pull_rows(emu, code, start, end, offset):
    """One page of the shortcode's payments between start and end (Kenya time)."""
    with emu.state.lock:
        payments = [
            p
            for p in emu.state.payments.values()
            if p["shortcode"] == code.shortcode and start <= p["time"] <= end
        ]
    payments.sort(key=lambda p: (p["time"], p["receipt"]))
    kind = "c2b-buy-goods-debit" if code.kind == "till" else "c2b-pay-bill-debit"
    return [
        {
            "transactionId": p["receipt"],
            "trxDate": p["time"].strftime("%Y-%m-%dT%H:%M:%S.000+03:00"),
            "msisdn": int(p["phone"]),
            "sender": "",
            "transactiontype": kind,
            "billreference": p["bill_ref"],
            "amount": str(float(p["amount"])),
            "organizationname": code.organization_name,
        }
        for p in payments[offset : offset + PAGE_SIZE]
    ]
