"""The only code that reads Daraja's JSON.

Daraja mixes types freely (ResultCode is an int in callbacks and a string in STK
query answers, Amount may be ``1`` or ``1.00``, items may lack a ``Value``); every
such tolerance lives here, and callers get small typed records or a PayloadError.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ..kenya_time import kenya_to_utc

# str.isdigit() also accepts "²"; past 18 digits no Daraja integer is meant (and
# Python refuses to parse more than 4300 at all).
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")
_INTEGER_LIMIT = 10**18
# Far above any M-PESA amount or balance; past it a float is inf (1e400) or loses the
# shillings, and Odoo's rounding of inf fails.
_AMOUNT_LIMIT = Decimal(10) ** 15
# No Daraja text comes near this; an index entry cannot be much longer (PostgreSQL
# refuses a btree entry past about 2700 bytes).
_TEXT_LIMIT = 1000


class PayloadError(ValueError):
    """A payload that does not have the documented shape."""


def _as_int(value, name):
    if isinstance(value, bool):
        raise PayloadError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
        return value
    raise PayloadError(f"{name} must be an integer, got {repr(value)[:40]}")


def _as_amount(value, name="Amount"):
    if isinstance(value, bool) or value is None:
        raise PayloadError(f"{name} must be a number, got {value!r}")
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation as exc:
        raise PayloadError(f"{name} must be a number, got {value!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise PayloadError(f"{name} must be a positive number, got {value!r:.40}")
    if amount >= _AMOUNT_LIMIT:
        raise PayloadError(f"{name} is not a plausible amount, got {value!r:.40}")
    return amount


def _as_str(value, name, required=True):
    if value is None or value == "":
        if required:
            raise PayloadError(f"{name} is missing")
        return ""
    if isinstance(value, (dict, list, bool)):
        raise PayloadError(f"{name} must be text, got {value!r:.40}")
    return _storable(str(value).strip(), name)


def _storable(text, name):
    """Text the database can keep: no NUL, no lone surrogate (JSON escapes both), not
    longer than anything Daraja sends."""
    if "\x00" in text:
        raise PayloadError(f"{name} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PayloadError(f"{name} is not valid Unicode text: {text!r:.40}") from exc
    if len(text) > _TEXT_LIMIT:
        raise PayloadError(f"{name} is too long ({len(text)} characters)")
    return text


def _parameter(value, key):
    """A Result parameter's value: text or a number, as Daraja sends them."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        return _storable(value, key)
    raise PayloadError(f"{key} must be text or a number, got {value!r:.40}")


def parse_timestamp(value, name="TransactionDate"):
    """Daraja's YYYYMMDDHHMMSS in Kenya time (int or str) -> naive UTC datetime."""
    text = str(_as_int(value, name)) if not isinstance(value, str) else value.strip()
    try:
        local = dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise PayloadError(f"{name} is not a YYYYMMDDHHMMSS time: {value!r}") from exc
    return kenya_to_utc(local)


def _dict(value, name):
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be an object")
    return value


@dataclass(frozen=True)
class StkCallback:
    merchant_request_id: str
    checkout_request_id: str
    result_code: int
    result_desc: str
    amount: Decimal | None = None
    receipt: str | None = None
    transaction_date: dt.datetime | None = None
    phone: str | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def is_success(self):
        return self.result_code == 0


def parse_stk_callback(data):
    """Parse the body POSTed to the STK CallBackURL."""
    body = _dict(_dict(data, "body").get("Body"), "Body")
    cb = _dict(body.get("stkCallback"), "Body.stkCallback")
    result_code = _as_int(cb.get("ResultCode"), "ResultCode")
    values = {
        "merchant_request_id": _as_str(
            cb.get("MerchantRequestID"), "MerchantRequestID"
        ),
        "checkout_request_id": _as_str(
            cb.get("CheckoutRequestID"), "CheckoutRequestID"
        ),
        "result_code": result_code,
        "result_desc": _as_str(cb.get("ResultDesc"), "ResultDesc", required=False),
    }
    if result_code != 0:
        return StkCallback(**values)
    # A success must carry the receipt and the amount; without them it proves nothing.
    meta = _dict(
        cb.get("CallbackMetadata"), "CallbackMetadata (success without metadata)"
    )
    items = meta.get("Item")
    if not isinstance(items, list):
        raise PayloadError("CallbackMetadata.Item must be a list")
    metadata = {}
    for item in items:
        item = _dict(item, "CallbackMetadata.Item[]")
        if "Value" in item:  # e.g. {"Name": "Balance"} comes without a Value
            metadata[_as_str(item.get("Name"), "Item.Name")] = item["Value"]
    if "Amount" not in metadata or "MpesaReceiptNumber" not in metadata:
        raise PayloadError(
            "A successful callback must carry Amount and MpesaReceiptNumber"
        )
    return StkCallback(
        amount=_as_amount(metadata["Amount"]),
        receipt=_as_str(metadata["MpesaReceiptNumber"], "MpesaReceiptNumber").upper(),
        transaction_date=(
            parse_timestamp(metadata["TransactionDate"])
            if metadata.get("TransactionDate") not in (None, "")
            else None
        ),
        phone=(
            str(_as_int(metadata["PhoneNumber"], "PhoneNumber"))
            if metadata.get("PhoneNumber") not in (None, "")
            else None
        ),
        metadata=metadata,
        **values,
    )


@dataclass(frozen=True)
class StkQueryResult:
    checkout_request_id: str
    result_code: int | None  # None while the customer has not answered
    result_desc: str


def parse_stk_query(data, pending_codes=frozenset({"4999"})):
    """Parse an STK query answer (HTTP 200 body)."""
    data = _dict(data, "body")
    code = data.get("ResultCode")
    desc = _as_str(data.get("ResultDesc"), "ResultDesc", required=False)
    checkout = _as_str(
        data.get("CheckoutRequestID"), "CheckoutRequestID", required=False
    )
    if code is None or str(code).strip() in pending_codes:
        return StkQueryResult(checkout, None, desc)
    return StkQueryResult(checkout, _as_int(code, "ResultCode"), desc)


@dataclass(frozen=True)
class C2BPayment:
    trans_id: str
    trans_type: str
    trans_time: dt.datetime
    amount: Decimal
    shortcode: str
    bill_ref: str
    invoice_number: str
    org_balance: Decimal | None
    msisdn: str  # as given: plain, masked (v2) or a SHA-256 hash (v1)
    first_name: str
    middle_name: str
    last_name: str

    @property
    def customer_name(self):
        parts = (self.first_name, self.middle_name, self.last_name)
        return " ".join(p for p in parts if p).strip()


def parse_c2b(data):
    """Parse a C2B validation or confirmation body (every value a string)."""
    data = _dict(data, "body")
    balance = data.get("OrgAccountBalance")
    return C2BPayment(
        trans_id=_as_str(data.get("TransID"), "TransID").upper(),
        trans_type=_as_str(
            data.get("TransactionType"), "TransactionType", required=False
        ),
        trans_time=parse_timestamp(
            _as_str(data.get("TransTime"), "TransTime"), "TransTime"
        ),
        amount=_as_amount(data.get("TransAmount"), "TransAmount"),
        shortcode=_as_str(data.get("BusinessShortCode"), "BusinessShortCode"),
        bill_ref=_as_str(data.get("BillRefNumber"), "BillRefNumber", required=False),
        invoice_number=_as_str(
            data.get("InvoiceNumber"), "InvoiceNumber", required=False
        ),
        org_balance=_as_amount(balance, "OrgAccountBalance") if balance else None,
        msisdn=_as_str(data.get("MSISDN"), "MSISDN", required=False),
        first_name=_as_str(data.get("FirstName"), "FirstName", required=False),
        middle_name=_as_str(data.get("MiddleName"), "MiddleName", required=False),
        last_name=_as_str(data.get("LastName"), "LastName", required=False),
    )


@dataclass(frozen=True)
class InitiatorResult:
    """Async result of transaction status, reversal or account balance."""

    result_type: int
    result_code: str  # "0", "R000001", ... kept as text
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str
    parameters: dict

    @property
    def is_success(self):
        return self.result_code == "0"


def parse_initiator_result(data):
    result = _dict(_dict(data, "body").get("Result"), "Result")
    params = {}
    raw = _dict(result.get("ResultParameters") or {}, "ResultParameters")
    raw = raw.get("ResultParameter") or []
    if isinstance(raw, dict):  # a single parameter comes unwrapped
        raw = [raw]
    if not isinstance(raw, list):
        raise PayloadError("ResultParameter must be a list")
    for item in raw:
        item = _dict(item, "ResultParameter[]")
        if item.get("Key") not in (None, ""):
            key = _as_str(item["Key"], "ResultParameter.Key")
            params[key] = _parameter(item.get("Value"), key)
    if params.get("Amount") not in (None, ""):
        params["Amount"] = _as_amount(params["Amount"])
    return InitiatorResult(
        result_type=_as_int(result.get("ResultType", 0), "ResultType"),
        result_code=_as_str(result.get("ResultCode"), "ResultCode"),
        result_desc=_as_str(result.get("ResultDesc"), "ResultDesc", required=False),
        originator_conversation_id=_as_str(
            result.get("OriginatorConversationID"), "OriginatorConversationID", False
        ),
        conversation_id=_as_str(result.get("ConversationID"), "ConversationID", False),
        transaction_id=_as_str(result.get("TransactionID"), "TransactionID", False),
        parameters=params,
    )


def parse_error(data):
    """(errorCode, errorMessage) of a Daraja error body, or None."""
    if isinstance(data, dict) and data.get("errorCode"):
        return str(data["errorCode"]), str(data.get("errorMessage") or "")
    return None
