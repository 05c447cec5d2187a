"""French validity rules (Code de la santé publique), with an injectable clock.

Dates on a French ordonnance are local dates: every "3 months to the day" is counted on the
Europe/Paris calendar, not in UTC.
"""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
FIRST_DISPENSING_MONTHS = 3
NARCOTIC_FULL_WINDOW_DAYS = 3
MAX_DAYS_AT_ONCE = 30


def now() -> dt.datetime:
    """The real clock; callers take ``--at`` instead when given."""
    return dt.datetime.now(dt.UTC)


def local_date(moment: dt.datetime) -> dt.date:
    """The Europe/Paris date of ``moment``.

    One verification asks it several times of the same two moments (the verification time,
    the issue time) through different rules: it is remembered per datetime *object* (held, so
    that its id is not reused while remembered), never by value, so that nothing is carried
    from one prescription to the next."""
    known = _LOCAL_DATES.get(id(moment))
    if known is not None and known[0] is moment:
        return known[1]
    day = moment.astimezone(PARIS).date()
    if len(_LOCAL_DATES) >= _REMEMBERED:
        _LOCAL_DATES.clear()
    _LOCAL_DATES[id(moment)] = (moment, day)
    return day


#: How many moments :func:`local_date` and the deadlines remember (a handful is used at once).
_REMEMBERED = 16
_LOCAL_DATES: dict[int, tuple[dt.datetime, dt.date]] = {}
_DEADLINES: dict[tuple[int, int], tuple[dt.datetime, dt.date]] = {}


def _deadline(issued_at: dt.datetime, months: int) -> dt.date:
    """``add_months(local_date(issued_at), months)``, remembered as :func:`local_date` is."""
    key = (id(issued_at), months)
    known = _DEADLINES.get(key)
    if known is not None and known[0] is issued_at:
        return known[1]
    day = add_months(local_date(issued_at), months)
    if len(_DEADLINES) >= _REMEMBERED:
        _DEADLINES.clear()
    _DEADLINES[key] = (issued_at, day)
    return day


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    if day.day <= 28:  # in every month
        return dt.date(year, month, day.day)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def first_dispensing_deadline(issued_at: dt.datetime) -> dt.date:
    """Last local date on which a first dispensing is allowed (inclusive)."""
    return _deadline(issued_at, FIRST_DISPENSING_MONTHS)


def within_first_window(issued_at: dt.datetime, at: dt.datetime) -> bool:
    return local_date(at) <= first_dispensing_deadline(issued_at)


# --------------------------------------------------------------------------------------------
# Dispensing rules (SPEC §6), used by :mod:`eprescrire.dispensing`.

TREATMENT_MONTHS = 12
#: A renewal (or the next fraction) may be dispensed this share of its period early...
RENEWAL_TOLERANCE_SHARE = 10  # 1/10 of the period
#: ...but never more than this many days early.
RENEWAL_TOLERANCE_MAX_DAYS = 3


def treatment_deadline(issued_at: dt.datetime) -> dt.date:
    """Last local date on which any dispensing is allowed: 12 months after issue (inclusive)."""
    return _deadline(issued_at, TREATMENT_MONTHS)


def within_treatment(issued_at: dt.datetime, at: dt.datetime) -> bool:
    return local_date(at) <= treatment_deadline(issued_at)


def renewal_tolerance(period_days: int) -> int:
    """Days a renewal or next fraction may come before the previous supply runs out.

    A tenth of the period, at most three days: 3 days for a monthly treatment, 1 for ten
    days, none for a 7-day narcotic fraction (whose schedule the law fixes strictly).
    """
    return min(RENEWAL_TOLERANCE_MAX_DAYS, period_days // RENEWAL_TOLERANCE_SHARE)


#: R.5123-2: a contraceptive may be dispensed for twelve weeks at once.
CONTRACEPTIVE_DAYS_AT_ONCE = 84
#: R.5123-2: a pack made for more than a month, at most three months.
MAX_PACK_MONTHS = 3


def legal_days_at_once(pack_months: int | None = None, contraceptive: bool = False) -> int:
    """The most days of treatment the law lets go at once (R.5123-2): one month (30 days);
    a pack made for 2 or 3 months, its months; a contraceptive, twelve weeks."""
    cap = MAX_DAYS_AT_ONCE
    if pack_months:
        cap = max(cap, MAX_DAYS_AT_ONCE * min(pack_months, MAX_PACK_MONTHS))
    if contraceptive:
        cap = max(cap, CONTRACEPTIVE_DAYS_AT_ONCE)
    return cap


def max_days_at_once(
    days_per_dispensing: int | None,
    *,
    pack_months: int | None = None,
    contraceptive: bool = False,
) -> int:
    """Days of treatment that may be handed over at once: the legal cap
    (:func:`legal_days_at_once`), lowered by the line's fractioning. Fractioning never raises
    it, whatever a signed document says."""
    cap = legal_days_at_once(pack_months, contraceptive)
    return min(days_per_dispensing, cap) if days_per_dispensing else cap
