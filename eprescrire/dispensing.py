"""The dispensing rules engine (SPEC §6) and the ledger operations built on it.

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

The engine is pure: :func:`state_of` reads a ledger :class:`~eprescrire.ledger.History`,
:func:`plan` turns a :class:`Request` into records to append or raises :class:`Refused`, and the
clock is a parameter. :func:`dispense`, :func:`cancel` and :func:`set_consent` run them inside
:meth:`Ledger.update <eprescrire.ledger.Ledger.update>`, so the check and the write are one
transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eprescrire import canonical, jws, model, rules
from eprescrire.errors import Error, ExitCode, InputError, Reason, UsageError, VerificationError
from eprescrire.ledger import History, Ledger, LedgerError, NewRecord, Record

#: Reason codes of a refused dispensing: the verdict's codes (SPEC §4) and the finer ones of §6.
Code = Reason


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
        return [{"code": code.value, "message": message} for code, message in items]


def _iso(moment: dt.datetime) -> str:
    return model.format_timestamp(moment)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day(moment: dt.datetime) -> int:
    return rules.local_date(moment).toordinal()


def _date(ordinal: Fraction | int) -> dt.date:
    return dt.date.fromordinal(math.ceil(ordinal))


# --------------------------------------------------------------------------------------------
# Identifiers of the people involved


def check_rpps(value: str) -> str:
    """A pharmacist's RPPS: 11 digits with a valid Luhn key. Raises UsageError otherwise."""
    from stdnum import luhn
    from stdnum.exceptions import ValidationError as StdnumError

    if not re.fullmatch(r"\d{11}", value):
        raise UsageError("--pharmacist: an RPPS number is 11 digits")
    try:
        luhn.validate(value)
    except StdnumError as e:
        raise UsageError("--pharmacist: the RPPS Luhn key is wrong (mistyped number?)") from e
    return value


def check_finess(value: str) -> str:
    """A pharmacy's FINESS: 9 characters (2A/2B for Corsica) with a valid Luhn key."""
    from stdnum import luhn
    from stdnum.exceptions import ValidationError as StdnumError

    value = value.strip().upper()
    if not re.fullmatch(r"(\d{2}|2A|2B)\d{7}", value):
        raise UsageError("--pharmacy: a FINESS number is 9 characters")
    try:
        luhn.validate(value[:2].replace("2A", "20").replace("2B", "20") + value[2:])
    except StdnumError as e:
        raise UsageError("--pharmacy: the FINESS Luhn key is wrong (mistyped number?)") from e
    return value


# --------------------------------------------------------------------------------------------
# What a verified prescription brings to the ledger


@dataclass(frozen=True)
class Presented:
    """A prescription whose signature and trust were verified, with its signer."""

    prescription: model.Prescription
    token: str
    kid: str
    certificate: x509.Certificate | None = None

    def record_body(self) -> dict[str, Any]:
        der = (
            None
            if self.certificate is None
            else base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode(
                "ascii"
            )
        )
        return {"kid": self.kid, "certificate": der, "jws": self.token}


def first_sight(history: History, presented: Presented) -> list[NewRecord]:
    """The prescription record to append the first time the ledger sees this prescription.

    The ledger is keyed on the identifier; a second, different prescription claiming the same
    identifier (another signer, or other content) is refused, never merged."""
    known = history.of_kind("prescription")
    if not known:
        return [NewRecord("prescription", presented.record_body())]
    body = known[0].body
    if body.get("kid") != presented.kid:
        raise Refused(
            Code.PRESCRIBER_MISMATCH,
            "the ledger holds a prescription with this identifier from another signer",
        )
    try:
        recorded = jws.parse(str(body.get("jws"))).payload
    except VerificationError:
        recorded = b""
    if recorded != model.signed_bytes(presented.prescription):
        raise Refused(
            Code.CONFLICTING_RECORD,
            "the ledger holds a different prescription under this identifier",
        )
    return []


def recorded_prescription(history: History) -> tuple[Presented | None, str | None]:
    """The prescription as first seen by the ledger (signature re-checked when the certificate
    was stored), or (None, why not)."""
    known = history.of_kind("prescription")
    if not known:
        return None, None
    body = known[0].body
    try:
        token = jws.parse(str(body.get("jws")))
        certificate = None
        if isinstance(body.get("certificate"), str):
            certificate = x509.load_der_x509_certificate(base64.b64decode(body["certificate"]))
            jws.verify(token, certificate.public_key())  # type: ignore[arg-type]
        prescription = model.from_payload(canonical.loads(token.payload))
    except (VerificationError, ValueError, InputError) as e:
        return None, f"the ledger's copy of the prescription does not verify: {e}"
    return Presented(prescription, str(body["jws"]), token.kid, certificate), None


# --------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class Dispensed:
    """One dispensing event (a whole dispensing or a fraction of one)."""

    seq: int
    line: int
    round: int  # 0 = first dispensing, 1 = first renewal, ...
    quantity: int
    at: dt.datetime
    pharmacist: str
    pharmacy: str | None
    substituted: bool
    generic: str | None
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "line": self.line,
            "dispensing": self.round + 1,
            "renewal": self.round > 0,
            "quantity": self.quantity,
            "at": _iso(self.at),
            "pharmacist": self.pharmacist,
            "pharmacy": self.pharmacy,
            "substituted": self.substituted,
            "generic": self.generic,
            "recorded_at": self.recorded_at,
        }


@dataclass(frozen=True)
class LineState:
    number: int  # 1-based, as printed
    line: model.Line
    events: tuple[Dispensed, ...]

    @property
    def prescribed(self) -> int:
        return self.line.quantity * (self.line.renewals + 1)

    @property
    def dispensed(self) -> int:
        return sum(e.quantity for e in self.events)

    @property
    def remaining(self) -> int:
        return self.prescribed - self.dispensed

    @property
    def round(self) -> int:
        """Index of the latest dispensing begun (0 when none)."""
        return max((e.round for e in self.events), default=0)

    @property
    def given_in_round(self) -> int:
        current = self.round
        return sum(e.quantity for e in self.events if e.round == current)

    @property
    def renewals_used(self) -> int:
        return self.round if self.events else 0

    @property
    def unit_days(self) -> Fraction:
        return Fraction(self.line.duration_days, self.line.quantity)

    @property
    def supply_until(self) -> Fraction | None:
        """Paris-date ordinal (fractional) on which the patient runs out, None before any."""
        supply: Fraction | None = None
        for event in self.events:
            start = Fraction(_day(event.at))
            supply = (
                start if supply is None else max(supply, start)
            ) + event.quantity * self.unit_days
        return supply


@dataclass(frozen=True)
class Allowance:
    """How much of a line may be handed over now, and if nothing, why."""

    quantity: int
    code: Code | None = None
    message: str = ""
    due: dt.date | None = None
    limited_by: Code | None = None  # the rule that capped a non-zero quantity


@dataclass(frozen=True)
class State:
    prescription: model.Prescription
    kid: str
    lines: tuple[LineState, ...]
    cancellation: dict[str, Any] | None = None
    opposition: bool = False
    consent_changed: bool = False

    @property
    def cancelled(self) -> bool:
        return self.cancellation is not None

    @property
    def fully_dispensed(self) -> bool:
        return all(ls.remaining == 0 for ls in self.lines)

    @property
    def first_dispensed_at(self) -> dt.datetime | None:
        moments = [e.at for ls in self.lines for e in ls.events]
        return min(moments) if moments else None

    def to_json(self, at: dt.datetime | None = None, *, details: bool = True) -> dict[str, Any]:
        """The dispensing state (the verdict's ``dispensing`` field, ``status --json``)."""
        first = self.first_dispensed_at
        result: dict[str, Any] = {
            "id": self.prescription.id,
            "cancelled": self.cancellation,
            "fully_dispensed": self.fully_dispensed,
            "share_opposition": self.opposition,
            "first_dispensed_at": None if first is None else _iso(first),
            "lines": [],
        }
        for ls in self.lines:
            item: dict[str, Any] = {
                "line": ls.number,
                "label": ls.line.label,
                "quantity_per_dispensing": ls.line.quantity,
                "renewals": ls.line.renewals,
                "prescribed": ls.prescribed,
            }
            if details:
                item.update(
                    dispensed=ls.dispensed,
                    remaining=ls.remaining,
                    renewals_used=ls.renewals_used,
                    events=[e.to_json() for e in ls.events],
                )
                if at is not None and not self.cancelled and ls.remaining:
                    allowance = allow(self, ls.number, at)
                    item["available_now"] = allowance.quantity
                    if allowance.due is not None:
                        item["next_due"] = allowance.due.isoformat()
            result["lines"].append(item)
        if not details:
            # Whether, when and how much was dispensed is the patient's to share: keep the keys
            # (stable output) but say nothing.
            result.update(fully_dispensed=None, first_dispensed_at=None)
            result["withheld"] = "the patient opposed sharing dispensing data with the prescriber"
        return result


def _cancellation_summary(record: Record, signer_kid: str) -> dict[str, Any] | None:
    body = record.body
    if body.get("kid") != signer_kid:
        return None  # only the prescription's own signer can cancel it
    return {"at": body.get("at"), "reason": body.get("reason"), "seq": record.seq}


def state_of(prescription: model.Prescription, kid: str, history: History) -> State:
    """The dispensing state of ``prescription`` (signed with ``kid``) from its ledger history.

    A record whose body is not what this version writes raises :class:`LedgerError` (exit 4):
    the ledger is corrupt, and nothing is decided on it."""
    try:
        return _state_of(prescription, kid, history)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise LedgerError(
            f"the ledger record of prescription {prescription.id} is corrupt "
            f"({e.__class__.__name__}); run `ledger verify`"
        ) from e


def _state_of(prescription: model.Prescription, kid: str, history: History) -> State:
    lines: list[list[Dispensed]] = [[] for _ in prescription.lines]
    cancellation = None
    opposition = prescription.share_opposition
    changed = False
    for record in history.records:
        body = record.body
        if record.kind == "dispensing":
            number = int(body["line"])
            if not 1 <= number <= len(lines):
                continue
            lines[number - 1].append(
                Dispensed(
                    seq=record.seq,
                    line=number,
                    round=int(body["round"]),
                    quantity=int(body["quantity"]),
                    at=_parse_time(str(body["at"])),
                    pharmacist=str(body["pharmacist"]),
                    pharmacy=body.get("pharmacy"),
                    substituted=bool(body.get("substituted")),
                    generic=body.get("generic"),
                    recorded_at=record.recorded_at,
                )
            )
        elif record.kind == "cancellation" and cancellation is None:
            cancellation = _cancellation_summary(record, kid)
        elif record.kind == "consent":
            opposition = bool(body["share_opposition"])
            changed = True
    return State(
        prescription=prescription,
        kid=kid,
        lines=tuple(
            LineState(n, line, tuple(events))
            for n, (line, events) in enumerate(zip(prescription.lines, lines, strict=True), start=1)
        ),
        cancellation=cancellation,
        opposition=opposition,
        consent_changed=changed,
    )


# --------------------------------------------------------------------------------------------
# Rules


def _prescription_refusal(state: State, at: dt.datetime) -> Refused | None:
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
    new_round = not ls.events or ls.given_in_round >= line.quantity
    left = line.quantity if new_round else line.quantity - ls.given_in_round
    today = Fraction(_day(at))
    window = rules.max_days_at_once(line.days_per_dispensing)
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


def _dispensing(ls: LineState, quantity: int, request: Request, at: dt.datetime) -> NewRecord:
    new_round = not ls.events or ls.given_in_round >= ls.line.quantity
    return NewRecord(
        "dispensing",
        {
            "line": ls.number,
            "round": (ls.round + 1 if ls.events else 0) if new_round else ls.round,
            "quantity": quantity,
            "days": float(round(quantity * ls.unit_days, 2)),
            "at": _iso(at),
            "pharmacist": request.pharmacist,
            "pharmacy": request.pharmacy,
            "substituted": request.substitute is not None,
            "generic": None if request.substitute is None else request.substitute.strip(),
        },
    )


_PRIORITY = (Code.RENEWAL_NOT_DUE, Code.NARCOTIC_WINDOW, Code.EXPIRED, Code.QUANTITY_EXCEEDED)


def plan(state: State, request: Request, at: dt.datetime) -> list[NewRecord]:
    """The dispensing records for ``request`` at ``at``; raises :class:`Refused` when the
    prescription or the law does not allow it (nothing is then recorded)."""
    refusal = _prescription_refusal(state, at)
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


# --------------------------------------------------------------------------------------------
# Ledger operations


@dataclass
class Outcome:
    """What a ledger operation recorded, and the state after it."""

    records: tuple[Record, ...]
    state: State | None  # None: the ledger has not seen the prescription itself
    notes: list[str] = field(default_factory=list)


def dispense(
    ledger: Ledger,
    presented: Presented,
    request: Request,
    at: dt.datetime,
) -> Outcome:
    """Record a dispensing of a verified prescription; the rules and the write are one
    transaction. On refusal, raises :class:`Refused` and records nothing."""
    seen: list[History] = []

    def change(history: History) -> list[NewRecord]:
        seen.append(history)
        new = first_sight(history, presented)
        state = state_of(presented.prescription, presented.kid, history)
        return new + plan(state, request, at)

    written = ledger.update(presented.prescription.id, change)
    after = History(presented.prescription.id, seen[-1].records + written)
    return Outcome(written, state_of(presented.prescription, presented.kid, after))


def record_cancellation(
    ledger: Ledger, cancellation: Any, presented: Presented | None = None
) -> Outcome:
    """Record a verified cancellation (:class:`eprescrire.cancellation.Cancellation`).

    With ``presented`` (the signed prescription) the ledger learns the prescription first.
    The cancellation is recorded only if its signer is the prescription's signer; for a
    prescription the ledger has never seen, it is kept with its signer and takes effect only if
    that prescription turns out to have the same signer. Recording it twice changes nothing.
    Returns the outcome (state None when the prescription is unknown). Raises :class:`Refused`
    (``prescriber_mismatch``).
    """
    notes: list[str] = []
    seen: list[History] = []

    def change(history: History) -> list[NewRecord]:
        seen.append(history)
        new: list[NewRecord] = []
        if presented is not None:
            if presented.kid != cancellation.kid:
                raise Refused(
                    Code.PRESCRIBER_MISMATCH,
                    "the cancelling key is not the key that signed the prescription",
                )
            new += first_sight(history, presented)
        known = history.of_kind("prescription")
        if known and known[0].body.get("kid") != cancellation.kid:
            raise Refused(
                Code.PRESCRIBER_MISMATCH,
                "the cancelling key is not the key that signed the prescription",
            )
        if any(r.body.get("kid") == cancellation.kid for r in history.of_kind("cancellation")):
            notes.append("already cancelled; nothing new recorded")
            return new
        if not known and presented is None:
            notes.append(
                "the ledger has not seen this prescription yet; the cancellation applies when it does"
            )
        new.append(NewRecord("cancellation", cancellation.record_body()))
        return new

    written = ledger.update(cancellation.prescription_id, change)
    after = History(cancellation.prescription_id, seen[-1].records + written)
    prescription, _ = (presented, None) if presented is not None else recorded_prescription(after)
    state = (
        None
        if prescription is None
        else state_of(prescription.prescription, prescription.kid, after)
    )
    return Outcome(written, state, notes)


def set_consent(
    ledger: Ledger,
    prescription_id: str,
    opposition: bool,
    at: dt.datetime,
    pharmacist: str | None = None,
) -> Outcome:
    """Record the patient's (renewed or withdrawn) opposition to sharing dispensing data with the
    prescriber. Raises :class:`InputError` when the ledger does not know the prescription."""
    seen: list[History] = []

    def change(history: History) -> list[NewRecord]:
        seen.append(history)
        if not history.known:
            raise InputError(f"the ledger has no record of prescription {prescription_id}")
        return [
            NewRecord(
                "consent",
                {"share_opposition": opposition, "at": _iso(at), "pharmacist": pharmacist},
            )
        ]

    written = ledger.update(prescription_id, change)
    after = History(prescription_id, seen[-1].records + written)
    presented, problem = recorded_prescription(after)
    if presented is None:
        raise InputError(problem or "the ledger's copy of the prescription is unreadable")
    return Outcome(written, state_of(presented.prescription, presented.kid, after))


def annotate(verdict: Any, ledger: Ledger, at: dt.datetime) -> None:
    """Complete a verification verdict from the ledger (``verify --ledger``): fill its
    ``dispensing`` field, reject it as ``cancelled`` or ``fully_dispensed``, and lift
    ``expired`` for a prescription first dispensed in time whose renewals are still due."""
    if not verdict.authentic or verdict.id is None or verdict.signer is None:
        return
    history = ledger.history(verdict.id)
    if history.known:
        try:
            first_sight(
                history, Presented(verdict.prescription, verdict.token or "", verdict.signer.kid)
            )
        except Refused as e:
            verdict.reject(Reason.PRESCRIBER_MISMATCH, str(e))
            return
    state = state_of(verdict.prescription, verdict.signer.kid, history)
    verdict.dispensing = state.to_json(at)
    if state.cancellation is not None:
        verdict.reject(Reason.CANCELLED, _prescription_refusal(state, at).message)  # type: ignore[union-attr]
    elif state.fully_dispensed:
        verdict.reject(Reason.FULLY_DISPENSED, "every line has been dispensed in full")
    elif state.first_dispensed_at is not None:
        if rules.within_treatment(verdict.prescription.issued_at, at):
            verdict.reasons[:] = [r for r in verdict.reasons if r.code is not Reason.EXPIRED]
        elif not any(r.code is Reason.EXPIRED for r in verdict.reasons):
            deadline = rules.treatment_deadline(verdict.prescription.issued_at)
            verdict.reject(
                Reason.EXPIRED, f"the treatment period ended on {deadline.isoformat()} (12 months)"
            )


def prove_possession(credentials: Any, certificate: x509.Certificate | None, kid: str) -> None:
    """Check that ``credentials`` hold the private key of the prescription's signer: sign a fresh
    random challenge and verify it with the certificate the ledger recorded (or, when none was
    recorded, with the credentials' certificate if its kid is the signer's kid).

    On failure, raises :class:`Refused` (``prescriber_mismatch``)."""
    import os

    from eprescrire.keys import kid_of

    if certificate is None:
        if kid_of(credentials.certificate) != kid:
            raise Refused(Code.PRESCRIBER_MISMATCH, "this key did not sign the prescription")
        certificate = credentials.certificate
    challenge = b"eprescrire-status-challenge/1\x00" + os.urandom(32)
    # The key may be on a token (ES256, PS256 or RS256): sign as a JWS, check with the record.
    token = jws.sign(challenge, credentials.key, kid_of(credentials.certificate))
    try:
        jws.verify(jws.parse(token), certificate.public_key())  # type: ignore[arg-type]
    except VerificationError as e:
        raise Refused(Code.PRESCRIBER_MISMATCH, "this key did not sign the prescription") from e


def lines_from(records: Sequence[Record]) -> list[dict[str, Any]]:
    """The dispensing records of an outcome, as reported to the pharmacist."""
    return [
        {
            "seq": r.seq,
            **{k: r.body[k] for k in ("line", "quantity", "substituted", "generic")},
            "dispensing": int(r.body["round"]) + 1,
        }
        for r in records
        if r.kind == "dispensing"
    ]
