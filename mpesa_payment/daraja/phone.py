"""Kenyan mobile numbers in the 2547XXXXXXXX / 2541XXXXXXXX form Daraja wants.

The one phone normaliser of the addons (the matcher uses it too). It calls phonenumbers
itself rather than Odoo's phone_validation, which wraps the same library: that one
imports Odoo (this layer is plain Python) and does not tell an M-PESA mobile
(2547/2541) from a landline.
"""

import re

import phonenumbers

MSISDN_RE = re.compile(r"^254[71]\d{8}$")
_DIGITS_RE = re.compile(r"^\+?\d+$")


class PhoneError(ValueError):
    pass


def normalize_msisdn(raw):
    """Turn 07.., 01.., +254.., 254.., 7.. (spaces, dashes allowed) into 2547/2541..."""
    text = re.sub(r"[\s\-().]", "", str(raw or ""))
    if not text:
        raise PhoneError("Enter the M-PESA phone number that will pay.")
    # Digits only: phonenumbers reads letters as keypad digits, so "0722 OOO 111"
    # (letter O for zero) would prompt 254722666111, a stranger's phone.
    if not _DIGITS_RE.match(text):
        raise PhoneError(f"{raw} is not a phone number: it has letters.")
    if text.startswith("254") and not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, "KE")
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{raw} is not a phone number.") from exc
    msisdn = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not MSISDN_RE.match(msisdn) or not phonenumbers.is_valid_number(number):
        raise PhoneError(
            f"{raw} is not a Kenyan mobile number. Use the number registered "
            "with M-PESA, e.g. 0712 345 678."
        )
    return msisdn


def mask_msisdn(msisdn):
    """2547****678: enough for a customer to recognise their number."""
    return f"{msisdn[:4]}****{msisdn[-3:]}" if msisdn and len(msisdn) > 7 else msisdn
