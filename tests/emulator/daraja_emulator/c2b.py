"""Customer to business: a payment made from the phone menu, then validation and
confirmation POSTs to the URLs registered for the shortcode."""

import hashlib
import json

from . import helpers
from .callbacks import spawn


def mask_msisdn(msisdn, style):
    if style == "hashed":  # API v1
        return hashlib.sha256(msisdn.encode()).hexdigest()
    if style == "plain":
        return msisdn
    if style == "masked_compact":
        # The payer masking Safaricom rolled out in March 2026, as integrators
        # report it ("2547****123"); no Safaricom sample shows it yet: an assumption.
        return f"{msisdn[:4]}****{msisdn[-3:]}"
    return f"{msisdn[:4]} ***** {msisdn[-3:]}"  # API v2: "2547 ***** 126"


def pay(
    emu,
    shortcode,
    msisdn,
    amount,
    bill_ref,
    msisdn_style=None,
    api_version="v2",
    trans_id=None,
    first_name="JOHN",
):
    """Start a C2B payment in a worker thread; return its TransID."""
    code = emu.state.find_shortcode(shortcode, till_ok=True)
    if code is None:
        raise ValueError(f"unknown shortcode {shortcode!r}")
    msisdn = str(msisdn)
    if not helpers.phone_ok(msisdn):
        raise ValueError(f"invalid msisdn {msisdn!r}")
    if float(amount) <= 0:
        raise ValueError("amount must be positive")
    style = msisdn_style or ("hashed" if api_version == "v1" else "masked")
    if style not in ("masked", "masked_compact", "hashed", "plain"):
        raise ValueError("msisdn_style must be masked, masked_compact, hashed or plain")
    trans_id = trans_id or emu.state.new_receipt()
    payment = {
        "trans_id": trans_id,
        "msisdn": msisdn,
        "amount": float(amount),
        "bill_ref": str(bill_ref),
        "style": style,
        "first_name": first_name,
    }
    spawn(_run, emu, code, payment, emu.state.generation)
    return trans_id


def notification(code, payment, moment, balance=""):
    """Validation (balance "") or confirmation payload; every value a string."""
    return {
        "TransactionType": "Buy Goods" if code.kind == "till" else "Pay Bill",
        "TransID": payment["trans_id"],
        "TransTime": helpers.stamp(moment),
        "TransAmount": helpers.money(payment["amount"]),
        "BusinessShortCode": code.shortcode,
        "BillRefNumber": payment["bill_ref"],
        "InvoiceNumber": "",
        "OrgAccountBalance": balance,
        "ThirdPartyTransID": "",
        "MSISDN": mask_msisdn(payment["msisdn"], payment["style"]),
        "FirstName": payment["first_name"],
        "MiddleName": "",
        "LastName": "",
    }


def accepted(delivery, response_type):
    """Did the merchant's validation answer let the payment through?"""
    answer = delivery.response_json() if delivery.status == 200 else None
    if isinstance(answer, dict) and "ResultCode" in answer:
        return str(answer["ResultCode"]) == "0"
    # No usable answer in time: M-PESA applies the registered ResponseType.
    return response_type == "Completed"


def echo_stk(emu, prompt, amount, phone):
    """Send a settled STK payment again as a C2B confirmation, as M-PESA may."""
    code = emu.state.shortcodes[prompt.shortcode]
    reg = dict(code.c2b or {})
    if not reg.get("confirmation_url"):
        return
    payment = {
        "trans_id": prompt.receipt,
        "msisdn": phone,
        "amount": float(amount),
        "bill_ref": prompt.account_reference,
        "first_name": "JOHN",
        "style": "hashed" if reg["api_version"] == "v1" else "masked",
    }
    body = notification(code, payment, prompt.resolved_at, helpers.money(code.balance))
    emu.courier.post(
        "c2b_confirmation", reg["confirmation_url"], json.dumps(body).encode()
    )


def _run(emu, code, payment, gen):
    sc = emu.state.scenario_for(payment["msisdn"])
    if not emu.pause(sc.delay) or not emu.alive(gen):
        return
    reg = dict(code.c2b or {})
    moment = helpers.kenya_now()
    if not sc.no_callback and code.external_validation and reg.get("validation_url"):
        body = json.dumps(notification(code, payment, moment)).encode()
        delivery = emu.courier.post(
            "c2b_validation", reg["validation_url"], body, emu.validation_timeout
        )
        if not accepted(delivery, reg["response_type"]) or not emu.alive(gen):
            return
    balance = emu.state.record_payment(
        code,
        payment["trans_id"],
        payment["amount"],
        payment["msisdn"],
        payment["bill_ref"],
        moment,
        "c2b",
        payment["first_name"],
    )
    if sc.no_callback or not reg.get("confirmation_url"):
        return
    body = notification(code, payment, moment, helpers.money(balance))
    emu.courier.post_repeated(
        "c2b_confirmation",
        reg["confirmation_url"],
        json.dumps(body).encode(),
        max(1, int(sc.repeat)),
        sc.concurrent,
    )
