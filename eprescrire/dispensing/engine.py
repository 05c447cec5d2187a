"""The dispensing rules of SPEC §6, as pure functions: no I/O, no clock of their own.

Vocabulary. A line's ``quantity`` (boxes, in the line's ``unit``) is handed over once per
*dispensing*; "à renouveler N fois" allows N further dispensings, so a line may be dispensed
``renewals + 1`` times, each time up to ``quantity``. A dispensing may be split into *fractions*
(the pharmacy is out of stock, the line says "délivrance par 7 jours", or more than 30 days
cannot be handed over at once); fractions count toward the same dispensing, and the next
dispensing (a renewal) starts only once the previous one is complete.

Timing works on Europe/Paris dates. Every unit of a line covers
``duration_days / quantity`` days of treatment; handing units over extends the line's *supply*
(the date the patient runs out: ``max(supply, today) + days``). Then:

* the first dispensing of a line is due within 3 months of issue (``rules.within_first_window``),
  and nothing is dispensed after 12 months (``rules.within_treatment``);
* a renewal is due when the previous supply has run out, up to a *tolerance* early: a tenth of
  the period, at most 3 days (``rules.renewal_tolerance``: 3 days for 30 days, 0 for a 7-day
  fraction);
* at most ``days_per_dispensing`` (else 30) days of supply may be ahead of the patient after a
  dispensing; a single unit that covers more is allowed once the supply has run out;
* a narcotic's treatment runs from the issue date in fractions (``days_per_dispensing``, else
  one); each is dispensed in full only within 3 days of its start, later only for the days left
  in it; missed days are lost and later fractions keep their dates (:func:`_allow_narcotic`).

:func:`first_sight` decides whether a presented prescription may join its ledger history,
:func:`plan` turns a :class:`Request` into records to append or raises :class:`Refused`,
:func:`allow` says what a line may give now, and :func:`view` is the state as reported; the
clock is always a parameter. :mod:`eprescrire.dispensing.transaction` runs them inside one
ledger transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from eprescrire import ids, jws, model, rules
from eprescrire.dispensing.records import (
    DispensingBody,
    PrescriptionBody,
    Presented,
    _iso,
    _parse_time,
)
from eprescrire.dispensing.state import LineState, State, day
from eprescrire.errors import Error, ExitCode, Reason, UsageError, VerificationError
from eprescrire.ledger import History, NewRecord
from eprescrire.results import reason

#: Reason codes of a refused dispensing: the verdict's codes (SPEC §4) and the finer ones of §6.
Code = Reason

_day = day


def _date(ordinal: Fraction | int) -> dt.date:
    return dt.date.fromordinal(math.ceil(ordinal))


class Refused(Error):
    """The ledger refuses: the prescription or the law does not allow this dispensing (exit 1)."""

    exit_code = ExitCode.REJECTED

    def __init__(self, code: Code, message: str, details: list[tuple[Code, str]] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.reason = Reason(code.value) if code.value in Reason._value2member_map_ else None

    def to_json(self) -> list[dict[str, str]]:
        items = [(self.code, self.message), *self.details]
        return [reason(code, message) for code, message in items]


@dataclass(frozen=True)
class Allowance:
    """How much of a line may be handed over now, and if nothing, why."""

    quantity: int
    code: Code | None = None
    message: str = ""
    due: dt.date | None = None
    limited_by: Code | None = None  # the rule that capped a non-zero quantity


# --------------------------------------------------------------------------------------------
# Identifiers of the people involved


def check_rpps(value: str) -> str:
    """A pharmacist's RPPS: 11 digits with a valid Luhn key. Raises UsageError otherwise."""
    return _identifier(ids.check_rpps, value, "--pharmacist", "RPPS", "11 digits")


def check_finess(value: str) -> str:
    """A pharmacy's FINESS: 9 characters (2A/2B for Corsica) with a valid Luhn key."""
    return _identifier(ids.check_finess, value, "--pharmacy", "FINESS", "9 characters")


def _identifier(check: Callable[[str], str], value: str, option: str, name: str, shape: str) -> str:
    from stdnum.exceptions import InvalidFormat

    try:
        return check(value)
    except InvalidFormat as e:
        raise UsageError(f"{option}: a {name} number is {shape}") from e
    except ValueError as e:
        raise UsageError(f"{option}: the {name} Luhn key is wrong (mistyped number?)") from e


# --------------------------------------------------------------------------------------------
# Rules


def first_sight(history: History, presented: Presented) -> list[NewRecord]:
    """The prescription record to append the first time the ledger sees this prescription.

    The ledger is keyed on the identifier and the signer (:mod:`eprescrire.dispensing.lanes`):
    another signer's prescription under the same identifier starts its own lane and never
    blocks this one; a different prescription from the same signer under one identifier is
    refused, never merged."""
    from eprescrire.dispensing.lanes import lane

    known = lane(history, presented.kid).of_kind("prescription")
    if not known:
        return [NewRecord("prescription", presented.record_body())]
    body = PrescriptionBody.from_json(known[0].body)
    try:
        recorded = jws.parse(str(body.jws)).payload
    except VerificationError:
        recorded = b""
    if recorded != model.signed_bytes(presented.prescription):
        raise Refused(
            Code.CONFLICTING_RECORD,
            "the ledger holds a different prescription under this identifier",
        )
    return []


def prescription_refusal(state: State, at: dt.datetime) -> Refused | None:
    p = state.prescription
    if state.cancellation is not None:
        return Refused(
            Code.CANCELLED,
            f"cancelled by the prescriber on {state.cancellation['at']}: {state.cancellation['reason']}",
        )
    if p.issued_at > at + model.CLOCK_SKEW:
        return Refused(Code.NOT_YET_VALID, "issued after the dispensing time")
    if state.fully_dispensed:
        return Refused(Code.FULLY_DISPENSED, "every line has been dispensed in full")
    if not rules.within_treatment(p.issued_at, at):
        deadline = rules.treatment_deadline(p.issued_at)
        return Refused(
            Code.EXPIRED, f"the treatment period ended on {deadline.isoformat()} (12 months)"
        )
    if state.first_dispensed_at is None and not rules.within_first_window(p.issued_at, at):
        deadline = rules.first_dispensing_deadline(p.issued_at)
        return Refused(
            Code.EXPIRED,
            f"first dispensing was due by {deadline.isoformat()} (3 months after issue)",
        )
    return None


def allow(state: State, number: int, at: dt.datetime) -> Allowance:
    """How many units of line ``number`` may be handed over at ``at`` (rules of SPEC §6)."""
    ls = state.lines[number - 1]
    line, p = ls.line, state.prescription
    if ls.remaining == 0:
        return Allowance(
            0,
            Code.QUANTITY_EXCEEDED,
            f"line {number} is fully dispensed ({ls.dispensed} of {ls.prescribed})",
        )
    if not ls.events and not rules.within_first_window(p.issued_at, at):
        deadline = rules.first_dispensing_deadline(p.issued_at)
        return Allowance(
            0,
            Code.EXPIRED,
            f"line {number} was never dispensed and its first dispensing was due by {deadline.isoformat()}",
        )
    if line.narcotic:
        return _allow_narcotic(ls, p, number, at)
    per = line.units_per_dispensing
    window = rules.max_days_at_once(
        line.days_per_dispensing, pack_months=line.pack_months, contraceptive=line.contraceptive
    )
    if not ls.events:
        # Nothing handed over yet: no supply ahead, a whole dispensing (per units of
        # duration_days / per days each) within the window, and at least one unit (the cases
        # below with ahead = 0, in whole numbers).
        first = min(per, window * per // line.duration_days) or 1
        return Allowance(first, limited_by=Code.QUANTITY_EXCEEDED)
    new_round = ls.given_in_round >= per
    left = per if new_round else per - ls.given_in_round
    today = Fraction(_day(at))
    tolerance = rules.renewal_tolerance(min(line.duration_days, window))
    supply = ls.supply_until
    ahead = Fraction(0) if supply is None else max(Fraction(0), supply - today - tolerance)
    due = None if supply is None else _date(supply - tolerance)
    if new_round and ls.events and ahead > 0:
        assert due is not None
        return Allowance(
            0,
            Code.RENEWAL_NOT_DUE,
            f"line {number}: renewal {ls.round + 1} of {line.renewals} is due from {due.isoformat()} "
            f"(the previous dispensing lasts until {_date(supply).isoformat()})",  # type: ignore[arg-type]
            due,
        )
    limit_days = window - ahead
    limited_by = Code.QUANTITY_EXCEEDED
    quantity = min(left, max(0, math.floor(limit_days / ls.unit_days)))
    if quantity == 0 and ahead == 0:
        quantity = 1  # one unit covers more than the window: it may go once the supply ran out
    if quantity == 0:
        assert supply is not None
        # ahead + one unit fits the window from this day on (or, for a unit bigger than the
        # window, once the supply has run out)
        next_day = _date(supply - tolerance - max(Fraction(0), window - ls.unit_days))
        return Allowance(
            0,
            Code.RENEWAL_NOT_DUE,
            f"line {number}: the next fraction is due from {next_day.isoformat()}"
            f" (at most {window} days of treatment at once)",
            next_day,
        )
    return Allowance(quantity, limited_by=limited_by)


def _allow_narcotic(
    ls: LineState, p: model.Prescription, number: int, at: dt.datetime
) -> Allowance:
    """Narcotics (R.5132-33): the treatment runs from the issue date, in fractions of
    ``days_per_dispensing`` days (one fraction when the line is not fractioned). A fraction is
    dispensed in full only within 3 days of its start (the issue date, or the end of the
    previous fraction); later, only the units for what remains of that fraction, counted from
    today or from the end of what the patient already holds. Missed days are lost; later
    fractions keep their dates. A unit belongs to the fraction in which its days begin.
    """
    line = ls.line
    fraction_days = Fraction(line.days_per_dispensing or line.duration_days)
    unit = ls.unit_days
    issue_day = _day(p.issued_at)
    elapsed = Fraction(_day(at) - issue_day)
    if elapsed >= line.duration_days:
        end = _date(issue_day + line.duration_days)
        return Allowance(
            0,
            Code.NARCOTIC_WINDOW,
            f"line {number} is a narcotic whose treatment period ended on {end.isoformat()}",
        )
    k = math.floor(elapsed / fraction_days)
    start = k * fraction_days
    stop = min(start + fraction_days, Fraction(line.duration_days))

    def units_from(day: Fraction) -> int:
        """Units whose days begin in [day, stop)."""
        return max(0, math.ceil(stop / unit) - math.ceil(day / unit))

    given = sum(
        e.quantity
        for e in ls.events
        if math.floor(Fraction(_day(e.at) - issue_day) / fraction_days) == k
    )
    full_until = start + rules.NARCOTIC_FULL_WINDOW_DAYS
    if units_from(start) - given <= 0 and stop >= line.duration_days:
        return Allowance(
            0,
            Code.NARCOTIC_WINDOW,
            f"line {number}: the last narcotic fraction was dispensed; "
            f"{ls.remaining} unit(s) of missed fractions are not dispensed later",
        )
    if units_from(start) - given <= 0:
        due = _date(issue_day + stop)
        return Allowance(
            0,
            Code.RENEWAL_NOT_DUE,
            f"line {number}: this narcotic fraction was dispensed; the next is due from "
            f"{due.isoformat()}",
            due,
        )
    if elapsed <= full_until:
        quantity = min(units_from(start) - given, ls.remaining)
        return Allowance(quantity, limited_by=Code.QUANTITY_EXCEEDED)
    supply = ls.supply_until
    held_until = elapsed if supply is None else max(elapsed, supply - issue_day)
    quantity = min(units_from(held_until), units_from(start) - given, ls.remaining)
    if quantity <= 0:
        return Allowance(
            0,
            Code.NARCOTIC_WINDOW,
            f"line {number} is a narcotic presented after "
            f"{_date(issue_day + full_until).isoformat()}: only the remaining "
            f"{max(0, math.floor(stop - held_until))} day(s) of this period may be dispensed, "
            f"less than one unit",
        )
    return Allowance(quantity, limited_by=Code.NARCOTIC_WINDOW)


@dataclass(frozen=True)
class Request:
    """What the pharmacist asks to record. ``line=None`` means every line (``--all``);
    ``quantity=None`` means everything that may be handed over now."""

    pharmacist: str
    line: int | None = None
    quantity: int | None = None
    substitute: str | None = None  # the generic's label, when substituting
    pharmacy: str | None = None
    # A hand-over that happened earlier than now (``--handed-over``): recorded with both times,
    # bounded by :func:`check_handed_over`; it never moves the rules' clock.
    handed_over: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.quantity is not None and self.line is None:
            raise UsageError("--quantity needs --line")
        if self.quantity is not None and self.quantity < 1:
            raise UsageError("--quantity must be at least 1")
        if self.substitute is not None:
            if self.line is None:
                raise UsageError("--substitute needs --line (one line at a time)")
            text = self.substitute.strip()
            if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
                raise UsageError("--substitute: the generic's label, 1 to 200 characters")


#: How far back a hand-over may be recorded (the ledger was down, a paper register was kept).
HANDED_OVER_MAX_BACK = dt.timedelta(days=7)


def check_handed_over(state: State, handed_over: dt.datetime, at: dt.datetime) -> None:
    """The bounds of a stated earlier hand-over: not in the future, at most
    :data:`HANDED_OVER_MAX_BACK` before the real time ``at``, not before the prescription was
    issued nor before its latest ledger record. Raises :class:`Refused` (``conflicting_record``,
    ``not_yet_valid``) or UsageError."""
    if handed_over > at + model.CLOCK_SKEW:
        raise UsageError(f"--handed-over {_iso(handed_over)} is in the future (now {_iso(at)})")
    if handed_over < at - HANDED_OVER_MAX_BACK:
        raise UsageError(
            f"--handed-over {_iso(handed_over)} is more than "
            f"{HANDED_OVER_MAX_BACK.days} days back (now {_iso(at)})"
        )
    if handed_over < state.prescription.issued_at - model.CLOCK_SKEW:
        raise Refused(Code.NOT_YET_VALID, "the stated hand-over precedes the prescription's issue")
    last = None if state.last_recorded_at is None else _parse_time(state.last_recorded_at)
    if last is not None and handed_over < last:
        raise Refused(
            Code.CONFLICTING_RECORD,
            f"the stated hand-over {_iso(handed_over)} precedes the prescription's latest "
            f"ledger record ({_iso(last)})",
        )


def _dispensing(ls: LineState, quantity: int, request: Request, at: dt.datetime) -> NewRecord:
    new_round = not ls.events or ls.given_in_round >= ls.line.units_per_dispensing
    body = DispensingBody(
        line=ls.number,
        round=(ls.round + 1 if ls.events else 0) if new_round else ls.round,
        quantity=quantity,
        days=float(round(quantity * ls.unit_days, 2)),
        at=at,
        pharmacist=request.pharmacist,
        pharmacy=request.pharmacy,
        substituted=request.substitute is not None,
        generic=None if request.substitute is None else request.substitute.strip(),
        handed_over=request.handed_over,
    )
    return NewRecord("dispensing", body.to_json())


_PRIORITY = (Code.RENEWAL_NOT_DUE, Code.NARCOTIC_WINDOW, Code.EXPIRED, Code.QUANTITY_EXCEEDED)


def plan(state: State, request: Request, at: dt.datetime) -> list[NewRecord]:
    """The dispensing records for ``request`` at the real time ``at``; raises :class:`Refused`
    when the prescription or the law does not allow it (nothing is then recorded).

    A stated earlier hand-over (``request.handed_over``) never moves the rules' clock: the
    decision is the one made at ``at``, and it stands only if the same hand-over was allowed
    at the stated time too (so a hand-over recorded late gains nothing, and a renewal cannot be
    claimed as handed over before it was due)."""
    records = _plan(state, request, at)
    if request.handed_over is None:
        return records
    check_handed_over(state, request.handed_over, at)
    try:
        then = _plan(state, replace(request, handed_over=None), request.handed_over)
    except Refused as e:
        raise Refused(
            e.code, f"at the stated hand-over time {_iso(request.handed_over)}: {e.message}"
        ) from None
    allowed = {r.body["line"]: r.body["quantity"] for r in then}
    for record in records:
        line, quantity = record.body["line"], record.body["quantity"]
        if quantity > allowed.get(line, 0):
            raise Refused(
                Code.QUANTITY_EXCEEDED,
                f"line {line}: {quantity} may be dispensed now, but at most "
                f"{allowed.get(line, 0)} at the stated hand-over time "
                f"{_iso(request.handed_over)}",
            )
    return records


def _plan(state: State, request: Request, at: dt.datetime) -> list[NewRecord]:
    refusal = prescription_refusal(state, at)
    if refusal is not None:
        raise refusal
    latest = max((e.at for ls in state.lines for e in ls.events), default=None)
    if latest is not None and at < latest - model.CLOCK_SKEW:
        # Time never goes back in a prescription's history: a dispensing cannot be slipped in
        # before one already recorded (to reopen a window that has closed since, say).
        raise Refused(
            Code.CONFLICTING_RECORD,
            f"the dispensing time {_iso(at)} precedes a dispensing already recorded at "
            f"{_iso(latest)}",
        )
    if request.line is not None:
        if not 1 <= request.line <= len(state.lines):
            raise UsageError(
                f"--line {request.line}: the prescription has {len(state.lines)} line(s)"
            )
        ls = state.lines[request.line - 1]
        if request.substitute is not None and not ls.line.substitutable:
            raise Refused(
                Code.SUBSTITUTION_FORBIDDEN,
                f"line {ls.number} is non substituable ({ls.line.ns_reason}): no generic substitution",
            )
        allowance = allow(state, ls.number, at)
        if allowance.quantity == 0:
            assert allowance.code is not None
            raise Refused(allowance.code, allowance.message)
        quantity = request.quantity if request.quantity is not None else allowance.quantity
        if quantity > allowance.quantity:
            code = allowance.limited_by or Code.QUANTITY_EXCEEDED
            if quantity > ls.remaining:
                code, why = (
                    Code.QUANTITY_EXCEEDED,
                    f"only {ls.remaining} remain on the prescription",
                )
            elif code is Code.NARCOTIC_WINDOW:
                why = "a narcotic presented late is dispensed only for the remaining duration"
            else:
                why = "the rest of this dispensing, or the days that may be handed over at once"
            raise Refused(
                code,
                f"line {ls.number}: {quantity} asked, at most {allowance.quantity} may be dispensed now ({why})",
            )
        return [_dispensing(ls, quantity, request, at)]
    records = []
    refusals: list[tuple[Code, str]] = []
    for ls in state.lines:
        allowance = allow(state, ls.number, at)
        if allowance.quantity:
            records.append(_dispensing(ls, allowance.quantity, request, at))
        elif ls.remaining and allowance.code is not None:
            refusals.append((allowance.code, allowance.message))
    if not records:
        codes = [code for code, _ in refusals]
        main = next((c for c in _PRIORITY if c in codes), Code.QUANTITY_EXCEEDED)
        first = next(message for code, message in refusals if code is main)
        raise Refused(
            main, f"nothing may be dispensed now: {first}", [r for r in refusals if r[1] != first]
        )
    return records


def skipped(state: State, records: list[NewRecord], at: dt.datetime) -> list[tuple[int, Code, str]]:
    """The lines ``dispense --all`` left out of ``records`` (planned at ``at`` on ``state``),
    each with why: fully dispensed, not due yet, past its window..."""
    given = {r.body["line"] for r in records if r.kind == "dispensing"}
    result = []
    for ls in state.lines:
        if ls.number in given:
            continue
        allowance = allow(state, ls.number, at)
        if allowance.code is not None:
            result.append((ls.number, allowance.code, allowance.message))
    return result


_FINAL_PRIORITY = (Code.NARCOTIC_WINDOW, Code.EXPIRED, Code.QUANTITY_EXCEEDED)


def gives_at_first_sight(prescription: model.Prescription, at: dt.datetime) -> bool:
    """True when a prescription the ledger has never seen may give something at ``at``:
    ``nothing_left(state_of(prescription, kid, History(id, ())), at) is None``, decided
    without building that state, in the usual case; False leaves it to :func:`nothing_left`.

    For a state with no record, :func:`prescription_refusal` says nothing when the prescription
    is not issued after ``at`` (clock skew allowed) and ``at`` is within its treatment period
    and its first-dispensing window (no cancellation, nothing dispensed); then :func:`allow`
    gives a line that is not a narcotic, never dispensed and owed something, a whole first
    dispensing of at least one unit, so :func:`nothing_left` returns None when it reaches that
    line, if not before (``tests/test_first_allowance.py`` checks both ways agree)."""
    issued = prescription.issued_at
    return (
        issued <= at + model.CLOCK_SKEW
        and rules.within_treatment(issued, at)
        and rules.within_first_window(issued, at)
        and any(
            not line.narcotic and line.units_per_dispensing * (line.renewals + 1) > 0
            for line in prescription.lines
        )
    )


def nothing_left(state: State, at: dt.datetime) -> Refused | None:
    """Why nothing of the prescription may be dispensed at ``at`` nor later (what ``verify``
    reports instead of VALID), or None when some line may still give something, now or once
    a renewal or fraction is due. The same rules as :func:`plan`: every line still owed is
    tried on each day from ``at`` to the end of the treatment period."""
    refusal = prescription_refusal(state, at)
    if refusal is not None:
        return refusal
    last_day = rules.treatment_deadline(state.prescription.issued_at)
    refusals: list[tuple[Code, str]] = []
    for ls in state.lines:
        if not ls.remaining:
            continue
        now = allow(state, ls.number, at)
        if now.quantity:
            return None
        moment = at + dt.timedelta(days=1)
        while rules.local_date(moment) <= last_day:
            if allow(state, ls.number, moment).quantity:
                return None
            moment += dt.timedelta(days=1)
        assert now.code is not None
        if now.code is Code.RENEWAL_NOT_DUE:
            refusals.append(
                (
                    Code.EXPIRED,
                    f"{now.message}, after the end of the treatment period "
                    f"({last_day.isoformat()})",
                )
            )
        else:
            refusals.append((now.code, now.message))
    if not refusals:
        return Refused(Code.FULLY_DISPENSED, "every line has been dispensed in full")
    codes = [code for code, _ in refusals]
    main = next((c for c in _FINAL_PRIORITY if c in codes), refusals[0][0])
    first = next(message for code, message in refusals if code is main)
    return Refused(
        main,
        f"nothing may be dispensed any more: {first}",
        [r for r in refusals if r[1] != first],
    )


def view(state: State, at: dt.datetime | None = None, *, details: bool = True) -> dict[str, Any]:
    """The state as reported (the verdict's ``dispensing`` field, ``status --json``): the
    recorded facts and, at ``at``, for each line that may still give something, how much it may
    give now and from when the next part is due. Without ``details``, see
    :meth:`State.to_json <eprescrire.dispensing.state.State.to_json>`."""
    result = state.to_json(details=details)
    if at is None or not details or state.cancelled:
        return result
    for ls, item in zip(state.lines, result["lines"], strict=True):
        if ls.remaining:
            allowance = allow(state, ls.number, at)
            item["available_now"] = allowance.quantity
            if allowance.due is not None:
                item["next_due"] = allowance.due.isoformat()
    return result
