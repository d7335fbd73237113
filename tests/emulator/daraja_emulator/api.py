"""The Daraja endpoints: request checks as strict as Safaricom's, then the work."""

import base64
import binascii
from datetime import datetime, timedelta

from . import c2b, credentials, helpers, orgapi, stk
from .state import Prompt

STK_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
# Words Safaricom refuses in production callback URLs.
FORBIDDEN_URL_WORDS = (
    "m-pesa",
    "mpesa",
    "safaricom",
    "exe",
    "exec",
    "cmd",
    "sql",
    "query",
)
MAX_AMOUNT = 250000
PULL_WINDOW = timedelta(hours=48)


class DarajaError(Exception):
    """An error answered with Daraja's body; HTTP status = errorCode's first part."""

    def __init__(self, code, message, request_id=None):
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id

    @property
    def status(self):
        return int(self.code.split(".")[0])

    def body(self):
        return {
            "requestId": self.request_id or helpers.request_id(),
            "errorCode": self.code,
            "errorMessage": self.message,
        }


def bad(what):
    raise DarajaError("400.002.02", f"Bad Request - {what}")


# -- OAuth ---------------------------------------------------------------------
def oauth(emu, query, authorization):
    if query.get("grant_type") != ["client_credentials"]:
        raise DarajaError("400.008.02", "Invalid grant type passed")
    key = secret = None
    if authorization.startswith("Basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True)
            key, _, secret = decoded.decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
    if key is None or key not in emu.state.apps or emu.state.apps[key] != secret:
        raise DarajaError("400.008.01", "Invalid Authentication passed")
    lifetime = emu.state.token_lifetime
    return 200, {
        "access_token": emu.state.issue_token(key),
        "expires_in": str(lifetime) if emu.expires_in_as_string else lifetime,
    }


# -- STK push ------------------------------------------------------------------
def _stk_credentials(emu, data):
    """Shortcode, Timestamp and Password checks shared by push and query."""
    code = emu.state.find_shortcode(data.get("BusinessShortCode"))
    if code is None:
        bad("Invalid BusinessShortCode")
    timestamp = data.get("Timestamp")
    try:
        if not (isinstance(timestamp, str) and len(timestamp) == 14):
            raise ValueError
        datetime.strptime(timestamp, "%Y%m%d%H%M%S")
    except ValueError:
        bad("Invalid Timestamp")
    raw = f"{code.shortcode}{code.passkey}{timestamp}".encode()
    if not code.passkey or data.get("Password") != base64.b64encode(raw).decode():
        raise DarajaError("500.001.1001", "Wrong credentials")
    return code


def stk_push(emu, data):
    code = _stk_credentials(emu, data)
    ttype = data.get("TransactionType")
    if ttype not in STK_TYPES:
        bad("Invalid TransactionType")
    amount = helpers.whole_number(data.get("Amount"))
    if amount is None or not 1 <= amount <= MAX_AMOUNT:
        bad("Invalid Amount")
    if not (
        helpers.phone_ok(data.get("PartyA"))
        and helpers.phone_ok(data.get("PhoneNumber"))
    ):
        bad("Invalid PhoneNumber")
    party_b = helpers.code_str(data.get("PartyB"))
    if party_b is None:
        bad("Invalid PartyB")
    if not helpers.url_ok(data.get("CallBackURL")):
        bad("Invalid CallBackURL")
    if not (
        helpers.text_ok(data.get("AccountReference"), 12)
        and helpers.text_ok(data.get("TransactionDesc"), 13)
    ):
        bad("Invalid Remarks")
    now = helpers.kenya_now()
    phone = str(data["PhoneNumber"])
    prompt = Prompt(
        checkout_request_id=helpers.checkout_request_id(now),
        merchant_request_id=helpers.request_id(),
        shortcode=code.shortcode,
        phone=phone,
        amount=amount,
        account_reference=data["AccountReference"],
        transaction_desc=data["TransactionDesc"],
        callback_url=data["CallBackURL"],
        transaction_type=ttype,
        scenario=emu.state.scenario_for(phone),
        created_at=now,
    )
    if ttype == "CustomerPayBillOnline":
        mismatch = code.kind != "paybill" or party_b != code.shortcode
    else:
        mismatch = code.kind != "till" or party_b != code.till_number
    if mismatch:
        # Accepted, then refused by M-PESA: the customer never sees a prompt.
        prompt.forced_code = 2028
    with emu.state.lock:
        emu.state.prompts[prompt.checkout_request_id] = prompt
    stk.launch(emu, prompt)
    if prompt.scenario.response_lost:
        return 200, None  # nothing is written: the connection just closes
    return 200, {
        "MerchantRequestID": prompt.merchant_request_id,
        "CheckoutRequestID": prompt.checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }


def stk_query(emu, data):
    code = _stk_credentials(emu, data)
    prompt = emu.state.prompts.get(data.get("CheckoutRequestID"))
    if prompt is None or prompt.shortcode != code.shortcode:
        bad("Invalid CheckoutRequestID")
    return stk.query_answer(prompt)


# -- C2B -----------------------------------------------------------------------
def _check_url(emu, value, name):
    if not helpers.url_ok(value):
        bad(f"Invalid {name}")
    if emu.production:
        lowered = value.lower()
        if not lowered.startswith("https://") or any(
            word in lowered for word in FORBIDDEN_URL_WORDS
        ):
            bad(f"Invalid {name}")


def c2b_register(emu, data, version):
    code = emu.state.find_shortcode(data.get("ShortCode"), till_ok=True)
    if code is None:
        bad("Invalid ShortCode")
    if data.get("ResponseType") not in ("Completed", "Cancelled"):
        bad("Invalid ResponseType")
    _check_url(emu, data.get("ConfirmationURL"), "ConfirmationURL")
    _check_url(emu, data.get("ValidationURL"), "ValidationURL")
    with emu.state.lock:
        # Sandbox and production are separate systems: only a registration made
        # while in production mode blocks a new one.
        if emu.production and (code.c2b or {}).get("production"):
            raise DarajaError("500.003.1001", "Urls are already registered")
        code.c2b = {
            "confirmation_url": data["ConfirmationURL"],
            "validation_url": data["ValidationURL"],
            "response_type": data["ResponseType"],
            "api_version": version,
            "production": emu.production,
        }
    return 200, {
        "OriginatorCoversationID": helpers.request_id(),
        "ResponseCode": "0",
        "ResponseDescription": "Success",
    }


def c2b_simulate(emu, data, version):
    code = emu.state.find_shortcode(data.get("ShortCode"), till_ok=True)
    if code is None:
        bad("Invalid ShortCode")
    if data.get("CommandID") not in STK_TYPES:
        bad("Invalid CommandID")
    amount = helpers.whole_number(data.get("Amount"))
    if amount is None or not 1 <= amount <= MAX_AMOUNT:
        bad("Invalid Amount")
    if not helpers.phone_ok(data.get("Msisdn")):
        bad("Invalid Msisdn")
    c2b.pay(
        emu,
        code.shortcode,
        data["Msisdn"],
        amount,
        data.get("BillRefNumber") or "",
        api_version=version,
    )
    return 200, {
        "OriginatorCoversationID": helpers.request_id(),
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    }


# -- Initiator APIs ----------------------------------------------------------------
def _initiator(emu, data, party_key, command):
    """Check the common fields; return (shortcode, whether the credential is the
    initiator's password encrypted with the emulator's certificate). The party may
    be a till number: Transaction Status documents IdentifierType 1 MSISDN, 2 till
    number, 4 organization shortcode (developer.safaricom.co.ke/apis/TransactionStatus);
    each API then checks the IdentifierType it accepts."""
    code = emu.state.find_shortcode(data.get(party_key), till_ok=True)
    if code is None:
        bad(f"Invalid {party_key}")
    if data.get("Initiator") != code.initiator:
        bad("Invalid Initiator")
    credential_ok = _credential_ok(emu, code, data.get("SecurityCredential"))
    if data.get("CommandID") != command:
        bad("Invalid CommandID")
    for key in ("ResultURL", "QueueTimeOutURL"):
        if not helpers.url_ok(data.get(key)):
            bad(f"Invalid {key}")
    if not helpers.text_ok(data.get("Remarks"), 100):
        bad("Invalid Remarks")
    return code, credential_ok


def _credential_ok(emu, code, credential):
    """Decrypt the SecurityCredential with the emulator's private key (PKCS#1 v1.5)
    and compare it with the initiator's password. Something that is not base64 at
    all is refused at once (400 "Invalid SecurityCredential", gathuku/laravel_mpesa#22);
    a well-formed credential that decrypts to anything else is accepted for
    processing and refused in the Result (2001, see orgapi.INVALID_INITIATOR).
    With ``emu.fixed_credentials`` the shortcode's fixed credential string is also
    taken as is (tests written before real encryption)."""
    if (
        emu.fixed_credentials
        and code.security_credential
        and credential == code.security_credential
    ):
        return True
    if credentials.decode(credential) is None:
        bad("Invalid SecurityCredential")
    return emu.key_pair.matches(credential, code.initiator_password)


def _identifier(data, key, allowed):
    if str(data.get(key)) not in allowed:
        bad(f"Invalid {key}")


def transaction_status(emu, data):
    code, credential_ok = _initiator(emu, data, "PartyA", "TransactionStatusQuery")
    _identifier(data, "IdentifierType", ("1", "2", "4"))
    if not helpers.text_ok(data.get("TransactionID")):
        bad("Invalid TransactionID")
    if not credential_ok:
        return 200, orgapi.invalid_initiator(emu, data, "status")
    return 200, orgapi.transaction_status(emu, code, data)


def reversal(emu, data):
    code, credential_ok = _initiator(emu, data, "ReceiverParty", "TransactionReversal")
    # Daraja only reads the misspelled key; "ReceiverIdentifierType" is ignored.
    _identifier(data, "RecieverIdentifierType", ("1", "2", "4", "11"))
    if not helpers.text_ok(data.get("TransactionID")):
        bad("Invalid TransactionID")
    amount = helpers.whole_number(data.get("Amount"))
    if amount is None or amount < 1:
        bad("Invalid Amount")
    if not credential_ok:
        return 200, orgapi.invalid_initiator(emu, data, "reversal")
    return 200, orgapi.reversal(emu, code, data, amount)


def account_balance(emu, data):
    code, credential_ok = _initiator(emu, data, "PartyA", "AccountBalance")
    # A shortcode (4) or a till number (2): Safaricom's page is "Enquire the balance
    # on an M-Pesa BuyGoods (Till Number)" (developer.safaricom.co.ke/apis/AccountBalance).
    _identifier(data, "IdentifierType", ("2", "4"))
    if not credential_ok:
        return 200, orgapi.invalid_initiator(emu, data, "balance")
    return 200, orgapi.account_balance(emu, code, data)


# -- Pull transactions ---------------------------------------------------------------
# The documented shapes, their sources and the test controls: orgapi.py.
def pull_register(emu, data):
    code = emu.state.find_shortcode(data.get("ShortCode"), till_ok=True)
    if code is None:
        bad("Invalid ShortCode")
    if data.get("RequestType") != "Pull":
        bad("Invalid RequestType")
    if helpers.code_str(data.get("NominatedNumber")) is None:
        bad("Invalid NominatedNumber")
    if not helpers.url_ok(data.get("CallBackURL")):
        bad("Invalid CallBackURL")
    nominated, url = str(data["NominatedNumber"]), data["CallBackURL"]
    return 200, orgapi.pull_register(emu, code, nominated, url)


def _pull_date(data, key):
    try:
        moment = datetime.strptime(str(data.get(key)), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        bad(f"Invalid {key}")
    return moment.replace(tzinfo=helpers.KENYA)


def pull_query(emu, data):
    code = emu.state.find_shortcode(data.get("ShortCode"), till_ok=True)
    if code is None:
        bad("Invalid ShortCode")
    start, end = _pull_date(data, "StartDate"), _pull_date(data, "EndDate")
    if end < start or end - start > PULL_WINDOW:
        bad("Invalid date range")
    offset = helpers.whole_number(data.get("OffSetValue", "0"))
    if offset is None or offset < 0:
        bad("Invalid OffSetValue")
    return orgapi.pull_answer(emu, code, start, end, offset)
