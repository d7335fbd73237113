"""Kenya time: M-PESA's clock, and the day a payment belongs to.

Nairobi keeps UTC+3 all year (no daylight saving), so a fixed offset is exact and
needs no time zone database; SQL names the zone. Plain Python, no Odoo import.
"""

import datetime as dt

KENYA_TZ = dt.timezone(dt.timedelta(hours=3))
KENYA_TZ_NAME = "Africa/Nairobi"


def to_kenya(utc):
    """Naive UTC (as Odoo stores it) -> naive Kenya time."""
    return utc.replace(tzinfo=dt.UTC).astimezone(KENYA_TZ).replace(tzinfo=None)


def kenya_to_utc(local):
    """Kenya time -> naive UTC. Naive as Daraja and M-PESA's statements write it; an
    aware moment (an XLSX cell may carry its zone) is converted from its own zone."""
    if local.tzinfo is None:
        local = local.replace(tzinfo=KENYA_TZ)
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def kenya_date(utc):
    """The day in Nairobi of a naive UTC moment: a payment at 00:30 EAT is that day's."""
    return to_kenya(utc).date()


def kenya_today():
    return kenya_date(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def kenya_day_bounds(day):
    """The naive UTC moments where ``day`` starts and ends in Nairobi: 00:00 EAT is
    21:00 UTC the day before."""
    start = dt.datetime.combine(day, dt.time.min)
    return kenya_to_utc(start), kenya_to_utc(start + dt.timedelta(days=1))
