"""Account references and phone hashes, compared the way customers type them."""

import hashlib
import re

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def normalize_reference(text):
    """'inv/2026-0001 ' -> 'INV20260001': case, spaces, dashes and separators ignored."""
    return _NOT_ALNUM.sub("", (text or "").upper())


def msisdn_hash(msisdn):
    """What C2B v1 sends instead of the number: SHA-256 hex of 2547XXXXXXXX."""
    return hashlib.sha256(msisdn.encode()).hexdigest() if msisdn else False


def is_hashed_msisdn(value):
    return bool(re.fullmatch(r"[0-9a-f]{64}", value or ""))


def is_masked_msisdn(value):
    return "*" in (value or "")
