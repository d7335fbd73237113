"""Identifiers, Kenya time, amounts and field checks shared by the endpoints."""

import itertools
import random
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

# M-PESA timestamps are Kenya local time (EAT, UTC+3, no daylight saving).
KENYA = timezone(timedelta(hours=3), "EAT")
PHONE_RE = re.compile(r"^254(7|1)\d{8}$")
_ALNUM = string.ascii_uppercase + string.digits
# A process-wide counter keeps generated ids unique even within the same second.
_counter = itertools.count(1)


# How far the emulator's clock is from the real one (set_clock). Process-wide: every
# timestamp M-PESA writes (TransactionDate, TransTime, completion and statement times)
# reads this clock, so a demo can replay payments on the days they were made.
_clock_offset = timedelta(0)


def kenya_now():
    return datetime.now(KENYA) + _clock_offset


def set_clock(moment=None):
    """Make the clock read ``moment`` now and run on from it; None: the real time."""
    global _clock_offset  # one clock per process, like M-PESA's
    if moment is None:
        _clock_offset = timedelta(0)
        return
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=KENYA)
    _clock_offset = moment - datetime.now(KENYA)


def stamp(moment):
    """YYYYMMDDHHMMSS in Kenya time, the format of Timestamp/TransTime fields."""
    return moment.astimezone(KENYA).strftime("%Y%m%d%H%M%S")


def _digits(count):
    return "".join(random.choices(string.digits, k=count))


def request_id():
    """Ids shaped like "29115-34620561-1" (MerchantRequestID, requestId, ...)."""
    first, second = random.randint(1000, 99999), random.randint(100000, 99999999)
    return f"{first}-{second}-{next(_counter)}"


def checkout_request_id(moment):
    return f"ws_CO_{moment:%d%m%Y%H%M%S}{next(_counter):04d}{_digits(6)}"


def conversation_id(moment):
    return f"AG_{moment:%Y%m%d}_{secrets.token_hex(10)}"


def receipt_number():
    """10 uppercase alphanumerics starting with a letter, like "NLJ7RT61SV"."""
    return random.choice(string.ascii_uppercase) + "".join(random.choices(_ALNUM, k=9))


def access_token():
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(28))


def whole_number(value):
    """The int value of a whole number given as int, float or str; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def number(value):
    """An int when the amount is whole (JSON `10`), else a float."""
    value = float(value)
    return int(value) if value.is_integer() else value


def money(value):
    return f"{float(value):.2f}"


def phone_ok(value):
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    return bool(PHONE_RE.match(str(value)))


def url_ok(value):
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def text_ok(value, max_len=None):
    if not isinstance(value, str) or not value.strip():
        return False
    return max_len is None or len(value) <= max_len


def code_str(value):
    """Shortcodes arrive as int or str; the emulator keys them by str."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    value = str(value).strip()
    return value if value.isdigit() else None
