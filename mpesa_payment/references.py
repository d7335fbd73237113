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


def within_one_typo(typed, reference):
    """True when ``typed`` is ``reference`` with one slip of the thumb: one character
    wrong, missing or extra, or two neighbours swapped (normalized references)."""
    if typed == reference:
        return False
    if len(typed) == len(reference):
        diffs = [
            i for i, (a, b) in enumerate(zip(typed, reference, strict=True)) if a != b
        ]
        if len(diffs) == 1:
            return True
        first, second = (diffs + [None, None])[:2]
        return (
            len(diffs) == 2
            and second == first + 1
            and typed[first] == reference[second]
            and typed[second] == reference[first]
        )
    shorter, longer = sorted((typed, reference), key=len)
    if len(longer) - len(shorter) != 1:
        return False
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))
