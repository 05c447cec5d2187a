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


@given(
    narcotics=st.lists(st.booleans(), min_size=1, max_size=4),
    durations=st.lists(st.integers(1, 28), min_size=4, max_size=4),
    renewals=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    per=st.one_of(st.none(), st.integers(1, 28)),
    issued_minutes=st.integers(-60 * 24 * 3, 60 * 24 * 3),
    minutes=st.integers(-60 * 24, 60 * 24 * 400),
)
def test_first_sight_agrees_with_nothing_left(
    narcotics: list[bool],
    durations: list[int],
    renewals: list[int],
    per: int | None,
    issued_minutes: int,
    minutes: int,
) -> None:
    """``gives_at_first_sight`` never says a prescription may give something when
    ``nothing_left`` on its state without records says otherwise (around the clock skew, the
    first-dispensing window, the treatment period, Paris midnight and DST changes)."""
    p = model.from_input(load_example(), now=ISSUED)
    issued = dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=issued_minutes)
    lines = tuple(
        dataclasses.replace(
            p.lines[n % len(p.lines)],
            narcotic=narcotic,
            duration_days=durations[n],
            renewals=0 if narcotic else renewals[n],
            days_per_dispensing=None if per is None else min(per, durations[n]),
        )
        for n, narcotic in enumerate(narcotics)
    )
    p = dataclasses.replace(p, issued_at=issued, lines=lines)
    at = issued + dt.timedelta(minutes=minutes)
    decided = engine.nothing_left(state_of(p, "kid", History(p.id, ())), at)
    if engine.gives_at_first_sight(p, at):
        assert decided is None
    else:  # left to nothing_left: only when something may stop it
        assert decided is not None or any(narcotics) or not rules.within_first_window(issued, at)
