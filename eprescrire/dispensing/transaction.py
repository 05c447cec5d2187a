"""The ledger operations: each runs the rules and its write as one ledger transaction.

:meth:`Ledger.update <eprescrire.ledger.Ledger.update>` reads a prescription's history, calls
the change (pure: :mod:`eprescrire.dispensing.engine`) and appends what it returns, in one
serialised transaction, so two counters dispensing the same paper at the same moment cannot
both succeed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from eprescrire.dispensing import lanes
from eprescrire.dispensing.engine import Code, Refused, Request, first_sight, plan, skipped
from eprescrire.dispensing.records import (
    CancellationBody,
    ConsentBody,
    PrescriptionBody,
    Presented,
    _iso,
    recorded_prescription,
)
from eprescrire.dispensing.state import State, state_after, state_of
from eprescrire.errors import InputError
from eprescrire.ledger import History, Ledger, NewRecord, Record


@dataclass(frozen=True)
class Outcome:
    """What a ledger operation recorded, and the state after it."""

    records: tuple[Record, ...]
    state: State | None  # None: the ledger has not seen the prescription itself
    notes: tuple[str, ...] = field(default=())
    #: Lines a ``--all`` dispensing left out, with why: (line, reason code, message).
    skipped: tuple[tuple[int, Code, str], ...] = field(default=())


def dispense(
    ledger: Ledger,
    presented: Presented,
    request: Request,
    at: dt.datetime,
) -> Outcome:
    """Record a dispensing of a verified prescription; the rules and the write are one
    transaction. On refusal, raises :class:`Refused` and records nothing."""
    seen: list[tuple[History, State]] = []
    left_out: list[tuple[int, Code, str]] = []

    def change(history: History) -> list[NewRecord]:
        new = first_sight(history, presented)
        state = state_of(presented.prescription, presented.kid, history)
        seen.append((history, state))
        planned = plan(state, request, at)
        left_out[:] = skipped(state, planned, at) if request.line is None else []
        return new + [NewRecord(r.kind, lanes.tagged(r.body, presented.kid)) for r in planned]

    # Recorded at the time the rules decided at (the real clock, given by the caller).
    written = ledger.update(presented.prescription.id, change, now=at)
    before, state = seen[-1]
    after = History(presented.prescription.id, before.records + written)
    conflict = lanes.conflict(after, presented.kid)
    return Outcome(
        written,
        state_after(state, before, written),
        () if conflict is None else (conflict,),
        skipped=tuple(left_out),
    )


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
        notes.clear()  # a ledger may call it again with another history: the last call counts
        new: list[NewRecord] = []
        if presented is not None:
            if presented.kid != cancellation.kid:
                raise Refused(
                    Code.PRESCRIBER_MISMATCH,
                    "the cancelling key is not the key that signed the prescription",
                )
            new += first_sight(history, presented)
        known = history.of_kind("prescription")
        if known and PrescriptionBody.from_json(known[0].body).kid != cancellation.kid:
            raise Refused(
                Code.PRESCRIBER_MISMATCH,
                "the cancelling key is not the key that signed the prescription",
            )
        cancellations = history.of_kind("cancellation")
        if any(CancellationBody.from_json(r.body).kid == cancellation.kid for r in cancellations):
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
    return Outcome(written, state, tuple(notes))


def set_consent(
    ledger: Ledger,
    prescription_id: str,
    opposition: bool,
    at: dt.datetime,
    pharmacist: str | None = None,
    signed: dict[str, Any] | None = None,
) -> Outcome:
    """Record the patient's (renewed or withdrawn) opposition to sharing dispensing data with the
    prescriber; ``signed`` is the body :func:`eprescrire.consents.signed_body` made (who records
    it, and their signature). Raises :class:`InputError` when the ledger does not know the
    prescription."""
    seen: list[History] = []

    def change(history: History) -> list[NewRecord]:
        seen.append(history)
        if not history.known:
            raise InputError(f"the ledger has no record of prescription {prescription_id}")
        body = ConsentBody(opposition, _iso(at), pharmacist).to_json()
        return [NewRecord("consent", body if signed is None else body | signed)]

    written = ledger.update(prescription_id, change)
    after = History(prescription_id, seen[-1].records + written)
    presented, problem = recorded_prescription(after)
    if presented is None:
        raise InputError(problem or "the ledger's copy of the prescription is unreadable")
    return Outcome(written, state_of(presented.prescription, presented.kid, after))
