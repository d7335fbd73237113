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
# A SecurityCredential that does not decrypt to the initiator's password (encrypted
# with another certificate, or another password) is acknowledged like any request,
# then refused in the Result, as integrators report of Daraja:
# safaricom/mpesa-php-sdk#40 (the ack: ResponseCode "0" whatever the credential),
# dkiptugen/mpesa-php-full-integration#1 (transaction status),
# newtonmunene99/mpesa-api#12 (account balance), safaricom/mpesa-node-library#13.
INVALID_INITIATOR = (2001, "The initiator information is invalid.")


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
    if emu.result_before_ack:
        _send(emu, ack, data, build, emu.state.generation, delay=0)
    else:
        spawn(_send, emu, ack, data, build, emu.state.generation)
    return None if emu.initiator_response_lost else ack  # None: nothing is written


def _send(emu, ack, data, build, gen, delay=None):
    if not emu.pause(emu.result_delay if delay is None else delay):
        return
    if not emu.alive(gen):
        return
    if emu.queue_timeouts:
        # Not taken from Safaricom's pages: a plain "timed out in the queue" Result.
        body = _result(ack, 1, "The request timed out in the queue", "")
        body["Result"]["ResultType"] = 1
        emu.courier.post("timeout", data["QueueTimeOutURL"], json.dumps(body).encode())
        if not emu.result_after_timeout or not emu.pause(emu.result_delay):
            return
    body = json.dumps(build(ack)).encode()
    if emu.hold_results:
        emu.hold_result(data["ResultURL"], body)
        return
    emu.courier.post("result", data["ResultURL"], body)


def invalid_initiator(emu, data, kind):
    """Ack now; the Result then refuses the initiator (ResultCode 2001), with a
    placeholder TransactionID such as "OFP0000000" and the reference data of the
    kind of request, as in the reports cited at INVALID_INITIATOR."""

    def build(ack):
        transaction_id = emu.state.new_receipt()[:3] + "0000000"
        if kind == "status":
            reference = {"Key": "Occasion", "Value": data.get("Occasion") or ""}
        else:
            reference = {"Key": "QueueTimeoutURL", "Value": data["QueueTimeOutURL"]}
        body = _result(ack, *INVALID_INITIATOR, transaction_id, reference=reference)
        if kind == "balance":
            # A single parameter comes unwrapped (not in a list) in that report.
            body["Result"]["ResultParameters"] = {
                "ResultParameter": {
                    "Key": "BOCompletedTime",
                    "Value": int(helpers.stamp(helpers.kenya_now())),
                }
            }
        return body

    return acknowledge(emu, data, build)


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
                balance = helpers.money(
                    emu.state.reverse_payment(code, payment, receipt)
                )
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


# -- Pull Transactions ------------------------------------------------------------------
# Safaricom's page https://developer.safaricom.co.ke/apis/PullTransaction (a copy:
# github.com/JacksCodeVault/mpesa-daraja-mcp, daraja_docs_v3/docs/PullTransaction.md;
# the Daraja 2.0 samples: github.com/Ghostscypher/php-mpesa, mpesa_endpoints.md):
# - register: POST /pulltransactions/v1/register {ShortCode, RequestType "Pull",
#   NominatedNumber ("0722000000" in the sample, 254722000000 in the table),
#   CallBackURL} -> {"ResponseRefID", "ResponseStatus": "1000", "ShortCode",
#   "ResponseDescription": "Shortcode Registered Successfully"}; ResponseStatus
#   "1001" is "ShortCode already Registered" (registration is one-time).
# - query: POST /pulltransactions/v1/query {ShortCode, StartDate, EndDate,
#   OffSetValue} -> {"ResponseRefID", "ResponseCode": "1000", "ResponseMessage":
#   "Success", "Response": [[{transactionId, trxDate, msisdn, sender,
#   transactiontype, billreference, amount, organizationname}, ...]]}; "1001": no
#   transactions in the period. Any code other than those is an error ("0 means
#   successful processing and any other code means an error occurred"), and comes
#   with HTTP 200 (shared/daraja README; navariltd/frappe-mpsa-payments#116).
# - FAQ: no pull without a registration; transactions can be pulled for 48 hours;
#   OffSetValue counts rows: "Suppose you wanted to show results 101-200 ... type
#   100", i.e. 100 rows a page.
# - Error codes table: 400.001 invalid ShortCode, 401.001 invalid access token,
#   500 "Failed to retrieve transactions".
#
# Test controls, set on the emulator like ``queue_timeouts``:
# - ``emu.pull_requires_registration = True``: a shortcode not registered for Pull
#   is refused (off by default: older suites pull without registering);
# - ``emu.pull_page_size``: rows per page (default PAGE_SIZE);
# - ``fail_pulls(emu, ...)``: the next queries answer HTTP 200 with an error code.
PAGE_SIZE = 100
REGISTERED = ("1000", "Shortcode Registered Successfully")
ALREADY_REGISTERED = ("1001", "ShortCode already Registered")
# Our assumption: Safaricom says a pull needs a registration (FAQ 2) but documents
# no answer for a shortcode without one; we answer HTTP 200 with this error code,
# the way Daraja reports other failed pulls.
NOT_REGISTERED = ("1002", "ShortCode not registered for Pull Transactions")
# The "500 Failed to retrieve transactions" of the error codes table, given the
# way integrators see failed pulls: HTTP 200 with a code that is not 1000/1001.
RETRIEVE_FAILED = ("500", "Failed to retrieve transactions")


def pull_register(emu, code, nominated, callback_url):
    """Register the shortcode for Pull once; a second registration is 1001 and
    keeps the first one."""
    with emu.state.lock:
        if code.pull:
            status, description = ALREADY_REGISTERED
        else:
            status, description = REGISTERED
            code.pull = {"nominated": nominated, "callback_url": callback_url}
    return {
        "ResponseRefID": helpers.request_id(),
        "ResponseStatus": status,
        "ShortCode": code.shortcode,
        "ResponseDescription": description,
    }


def fail_pulls(emu, response_code=RETRIEVE_FAILED[0], message=None, times=1):
    """The next ``times`` pull queries (None: until cleared with times=0) answer
    HTTP 200 with ``response_code``, as Daraja does when a pull fails."""
    if times == 0:
        emu.pull_fault = None
        return
    if message is None:
        message = RETRIEVE_FAILED[1]
    emu.pull_fault = {"code": str(response_code), "message": message, "times": times}


def _take_fault(emu):
    with emu.state.lock:
        fault = getattr(emu, "pull_fault", None)
        if not fault:
            return None
        if fault["times"] is not None:
            fault["times"] -= 1
            if fault["times"] <= 0:
                emu.pull_fault = None
        return fault["code"], fault["message"]


def pull_answer(emu, code, start, end, offset):
    """The query's answer: (HTTP status, body)."""
    answer = {"ResponseRefID": helpers.request_id()}
    error = _take_fault(emu)
    if error is None and getattr(emu, "pull_requires_registration", False):
        error = None if code.pull else NOT_REGISTERED
    if error:
        return 200, {**answer, "ResponseCode": error[0], "ResponseMessage": error[1]}
    size = getattr(emu, "pull_page_size", PAGE_SIZE)
    rows = pull_rows(emu, code, start, end, offset, size)
    if not rows:
        return 200, {
            **answer,
            "ResponseCode": "1001",
            "ResponseMessage": "No records found",
            "Response": [],
        }
    return 200, {
        **answer,
        "ResponseCode": "1000",
        "ResponseMessage": "Success",
        "Response": [rows],
    }


def pull_rows(emu, code, start, end, offset, limit=PAGE_SIZE):
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
        for p in payments[offset : offset + limit]
    ]
