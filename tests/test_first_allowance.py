"""A line never dispensed: what ``allow`` gives, in whole numbers, is what the rule with
fractional days gives (a whole dispensing within the window of days at once, at least one
unit)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from conftest import load_example
from eprescrire import model, rules
from eprescrire.dispensing import engine, state_of
from eprescrire.ledger import History

ISSUED = dt.datetime(2026, 11, 25, 17, 30, tzinfo=dt.UTC)


@given(
    duration=st.integers(1, 365),
    quantity=st.integers(1, 999),
    units=st.one_of(st.none(), st.integers(1, 999)),
    per=st.one_of(st.none(), st.integers(1, 365)),
    pack_months=st.sampled_from([None, 2, 3]),
    contraceptive=st.booleans(),
    days=st.integers(0, 95),
)
def test_first_dispensing_in_whole_numbers(
    duration: int,
    quantity: int,
    units: int | None,
    per: int | None,
    pack_months: int | None,
    contraceptive: bool,
    days: int,
) -> None:
    p = model.from_input(load_example(), now=ISSUED)
    line = dataclasses.replace(
        p.lines[0],
        narcotic=False,
        duration_days=duration,
        quantity=quantity,
        units_per_box=units,
        days_per_dispensing=per,
        pack_months=pack_months,
        contraceptive=contraceptive,
    )
    p = dataclasses.replace(p, lines=(line,))
    at = ISSUED + dt.timedelta(days=days)
    allowance = engine.allow(state_of(p, "kid", History(p.id, ())), 1, at)
    if not rules.within_first_window(ISSUED, at):
        assert allowance.quantity == 0 and allowance.code is engine.Code.EXPIRED
        return
    whole = line.units_per_dispensing
    window = rules.max_days_at_once(per, pack_months=pack_months, contraceptive=contraceptive)
    expected = min(whole, max(0, math.floor(Fraction(window) / Fraction(duration, whole)))) or 1
    assert allowance.quantity == expected
    assert allowance.code is None and allowance.due is None
    assert allowance.limited_by is engine.Code.QUANTITY_EXCEEDED


@given(day=st.dates(dt.date(1890, 1, 1), dt.date(2990, 12, 31)), months=st.integers(0, 120))
def test_add_months_clamps_to_the_end_of_the_month(day: dt.date, months: int) -> None:
    import calendar

    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    expected = dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    assert rules.add_months(day, months) == expected
