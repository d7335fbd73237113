"""Account references and phone hashes, compared the way customers type them.

Plain Python, no Odoo import: the in-memory matcher (mpesa_reconciliation/matching.py)
uses these rules too.
"""

import hashlib
import itertools
import re

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_NOT_DIGIT = re.compile(r"\D")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def normalize_reference(text):
    """'inv/2026-0001 ' -> 'INV20260001': case, spaces, dashes and separators ignored."""
    return _NOT_ALNUM.sub("", (text or "").upper())


def prompt_reference(text, limit):
    """The account number an STK prompt shows for a document numbered ``text``: its
    normalized reference in at most ``limit`` characters, keeping the document prefix
    (INV, S...) and the distinguishing last digits. The number as a customer types
    it on the paybill menu gives the same value, so a paybill payment finds the
    prompt it stands for."""
    compact = normalize_reference(text)
    if len(compact) <= limit:
        return compact
    prefix = "".join(itertools.takewhile(str.isalpha, compact))[:4]
    return prefix + compact[len(prefix) :][-(limit - len(prefix)) :]


def msisdn_hash(msisdn):
    """What C2B v1 sends instead of the number: SHA-256 hex of 2547XXXXXXXX."""
    return hashlib.sha256(msisdn.encode()).hexdigest() if msisdn else False


def phone_kind(value):
    """How Daraja shows the payer's number: 'hashed' (C2B v1's SHA-256 hex), 'masked'
    ('2547 ***** 126'), 'plain' or '' (no phone)."""
    value = (value or "").strip()
    if not value:
        return ""
    if _HEX64.fullmatch(value):
        return "hashed"
    return "masked" if "*" in value else "plain"


def masked_parts(value):
    """'2547 ***** 126' -> ('2547', '126'): the digits shown before and after the mask.

    None when fewer than 4 leading or 3 trailing digits are shown.
    """
    if "*" not in (value or ""):
        return None
    head = _NOT_DIGIT.sub("", value.split("*", 1)[0])
    tail = _NOT_DIGIT.sub("", value.rsplit("*", 1)[1])
    if head.startswith("0"):
        head = "254" + head[1:]
    elif head[:1] in ("7", "1"):
        head = "254" + head
    if len(head) < 4 or len(tail) < 3:
        return None
    return head, tail


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
