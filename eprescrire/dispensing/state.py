"""The dispensing state of a prescription, folded from its ledger history (no rules, no I/O)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eprescrire import model, rules
from eprescrire.dispensing.records import CancellationBody, ConsentBody, DispensingBody, _iso
from eprescrire.ledger import History, LedgerError, Record


def day(moment: dt.datetime) -> int:
    """The Europe/Paris date of ``moment`` as an ordinal."""
    return rules.local_date(moment).toordinal()


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
    handed_over: dt.datetime | None = None  # stated earlier hand-over (``at`` is the real clock)

    def to_json(self) -> dict[str, Any]:
        item = {
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
        if self.handed_over is not None:
            item["handed_over"] = _iso(self.handed_over)
        return item


@dataclass(frozen=True)
class LineState:
    """What has been dispensed of one line."""

    number: int  # 1-based, as printed
    line: model.Line
    events: tuple[Dispensed, ...]

    @property
    def prescribed(self) -> int:
        return self.line.units_per_dispensing * (self.line.renewals + 1)

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
        return Fraction(self.line.duration_days, self.line.units_per_dispensing)

    @property
    def supply_until(self) -> Fraction | None:
        """Paris-date ordinal (fractional) on which the patient runs out, None before any."""
        supply: Fraction | None = None
        for event in self.events:
            start = Fraction(day(event.at))
            supply = (
                start if supply is None else max(supply, start)
            ) + event.quantity * self.unit_days
        return supply

    def to_json(self, *, details: bool = True) -> dict[str, Any]:
        item: dict[str, Any] = {
            "line": self.number,
            "label": self.line.label,
            "quantity_per_dispensing": self.line.units_per_dispensing,
            "renewals": self.line.renewals,
            "prescribed": self.prescribed,
            # What the quantities count: units (gélules, ampoules...) when the line states
            # units_per_box, else boxes.
            "counted_in": "units" if self.line.units_per_box else "boxes",
        }
        if details:
            item.update(
                dispensed=self.dispensed,
                remaining=self.remaining,
                renewals_used=self.renewals_used,
                events=[e.to_json() for e in self.events],
            )
        return item


#: What the prescriber is told instead of the dispensing details the patient keeps private.
WITHHELD = "the patient opposed sharing dispensing data with the prescriber"


@dataclass(frozen=True)
class State:
    """A prescription and what the ledger says was dispensed of it."""

    prescription: model.Prescription
    kid: str
    lines: tuple[LineState, ...]
    cancellation: dict[str, Any] | None = None
    opposition: bool = False
    last_recorded_at: str | None = None  # the real time of the latest record, if any

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

    def to_json(self, *, details: bool = True) -> dict[str, Any]:
        """The recorded facts; without ``details`` (the prescriber's view when the patient
        opposed sharing), whether, when and how much was dispensed is left out. What each line
        may give now is the rules' to say: :func:`eprescrire.dispensing.engine.view`."""
        first = self.first_dispensed_at
        result: dict[str, Any] = {
            "id": self.prescription.id,
            "cancelled": self.cancellation,
            "fully_dispensed": self.fully_dispensed,
            "share_opposition": self.opposition,
            "first_dispensed_at": None if first is None else _iso(first),
            "lines": [ls.to_json(details=details) for ls in self.lines],
        }
        if not details:
            # Whether, when and how much was dispensed is the patient's to share: keep the keys
            # (stable output) but say nothing.
            result.update(fully_dispensed=None, first_dispensed_at=None, withheld=WITHHELD)
        return result


def _cancellation_summary(record: Record, signer_kid: str) -> dict[str, Any] | None:
    body = CancellationBody.from_json(record.body)
    if body.kid != signer_kid:
        return None  # only the prescription's own signer can cancel it
    return {"at": body.at, "reason": body.reason, "seq": record.seq}


def state_of(prescription: model.Prescription, kid: str, history: History) -> State:
    """The dispensing state of ``prescription`` (signed with ``kid``) from its ledger history.

    A record whose body is not what this version writes raises :class:`LedgerError` (exit 4):
    the ledger is corrupt, and nothing is decided on it. Only the records of this signer's
    lane count (:mod:`eprescrire.dispensing.lanes`)."""
    from eprescrire.dispensing.lanes import lane

    try:
        return _state_of(prescription, kid, lane(history, kid))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise LedgerError(
            f"the ledger record of prescription {prescription.id} is corrupt "
            f"({e.__class__.__name__}); run `ledger verify`"
        ) from e


def state_after(state: State, before: History, written: Sequence[Record]) -> State:
    """``state_of(prescription, kid, before + written)``, where ``state`` is the state of
    ``before``: in the usual case (one signer, every record in its lane, so the lane is the
    whole history before and after) the fold goes on from ``state`` over ``written`` only
    (the same fold, the same result, without reading ``before`` again)."""
    from eprescrire.dispensing.lanes import lane

    after = History(before.prescription_id, before.records + tuple(written))
    if lane(after, state.kid) is not after:
        return state_of(state.prescription, state.kid, after)
    try:
        return _fold(state, written)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise LedgerError(
            f"the ledger record of prescription {state.prescription.id} is corrupt "
            f"({e.__class__.__name__}); run `ledger verify`"
        ) from e


def _state_of(prescription: model.Prescription, kid: str, history: History) -> State:
    empty = State(
        prescription=prescription,
        kid=kid,
        lines=tuple(LineState(n, line, ()) for n, line in enumerate(prescription.lines, start=1)),
        opposition=prescription.share_opposition,
    )
    return _fold(empty, history.records)


def _fold(state: State, records: Sequence[Record]) -> State:
    """``state`` after ``records`` (of its lane, in order)."""
    if not records:
        return state
    lines: list[list[Dispensed]] = [list(ls.events) for ls in state.lines]
    cancellation = state.cancellation
    opposition = state.opposition
    kid = state.kid
    for record in records:
        if record.kind == "dispensing":
            body = DispensingBody.from_json(record.body)
            if not 1 <= body.line <= len(lines):
                continue
            lines[body.line - 1].append(
                Dispensed(
                    seq=record.seq,
                    line=body.line,
                    round=body.round,
                    quantity=body.quantity,
                    at=body.at,
                    pharmacist=body.pharmacist,
                    pharmacy=body.pharmacy,
                    substituted=body.substituted,
                    generic=body.generic,
                    recorded_at=record.recorded_at,
                    handed_over=body.handed_over,
                )
            )
        elif record.kind == "cancellation" and cancellation is None:
            cancellation = _cancellation_summary(record, kid)
        elif record.kind == "consent":
            opposition = ConsentBody.from_json(record.body).share_opposition
    return State(
        prescription=state.prescription,
        kid=kid,
        lines=tuple(
            LineState(ls.number, ls.line, tuple(events))
            for ls, events in zip(state.lines, lines, strict=True)
        ),
        cancellation=cancellation,
        opposition=opposition,
        last_recorded_at=records[-1].recorded_at,
    )
