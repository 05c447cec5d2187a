"""Verify prescriptions (``verify``): verdicts for scans, PDFs, signed files and QR text,
completed from the dispensing ledger when one is given."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eprescrire import batch, rules
from eprescrire.errors import Reason, UsageError
from eprescrire.ledger import Ledger
from eprescrire.services.context import check_engine
from eprescrire.trust import TrustStore
from eprescrire.verdict import ReasonItem, Verdict


@dataclass(frozen=True)
class VerifyRequest:
    """Inputs to verify (paths, or ``-`` for ``stdin``) against ``store`` at ``at``."""

    inputs: tuple[str, ...]
    store: TrustStore
    at: dt.datetime
    engine: str = "zxing"
    ledger: Ledger | None = None
    jobs: int = 1
    stdin: bytes = b""
    #: Why the ledger named for this verification could not be opened, if it could not.
    ledger_problem: str | None = None

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")


def _verify_one(request: VerifyRequest, name: str) -> list[Verdict]:
    """Verdicts for one input (in a worker process or in-process)."""
    from eprescrire import verifying

    stdin = io.BytesIO(request.stdin) if name == "-" else None
    return list(
        verifying.verify_input(name, request.store, request.at, engine=request.engine, stdin=stdin)
    )


def verify(request: VerifyRequest) -> Iterator[tuple[Verdict, ...]]:
    """The verdicts of each input, in order (an image may hold several codes); never raises
    for bad input. With a ledger, each verdict is completed by :func:`annotate`."""
    from eprescrire.ledger import LedgerError

    jobs = min(request.jobs, max(1, len(request.inputs)))
    ledger, problem = request.ledger, request.ledger_problem
    for verdicts in batch.run(_verify_one, request, request.inputs, jobs, chunksize=1):
        if ledger is not None:
            try:
                verdicts = [annotate(v, ledger, request.at) for v in verdicts]
            except LedgerError as e:
                # The signature verdict stands on its own; only the dispensing state is unknown.
                problem, ledger = f"ledger unavailable, dispensing state unknown: {e}", None
        if ledger is None:
            verdicts = [without_ledger(v, request.at) for v in verdicts]
        if problem is not None:
            verdicts = [dataclasses.replace(v, warnings=[*v.warnings, problem]) for v in verdicts]
        yield tuple(verdicts)


def annotate(verdict: Verdict, ledger: Ledger, at: dt.datetime) -> Verdict:
    """The verdict completed from the ledger (``verify --ledger``): its ``dispensing`` field
    filled, rejected as ``cancelled`` or ``fully_dispensed``, and ``expired`` lifted for a
    prescription first dispensed in time whose renewals are still due. Returns a new verdict."""
    from eprescrire.dispensing import (
        Presented,
        Refused,
        first_sight,
        prescription_refusal,
        state_of,
        view,
    )

    if not verdict.authentic or verdict.id is None or verdict.signer is None:
        return verdict
    assert verdict.prescription is not None
    reasons = list(verdict.reasons)
    history = ledger.history(verdict.id)
    if history.known:
        try:
            first_sight(
                history, Presented(verdict.prescription, verdict.token or "", verdict.signer.kid)
            )
        except Refused as e:  # the same signer, another prescription under this identifier
            reasons.append(ReasonItem(e.reason or Reason.CONFLICTING_RECORD, str(e)))
            return dataclasses.replace(verdict, reasons=reasons)
    state = state_of(verdict.prescription, verdict.signer.kid, history)
    from eprescrire.dispensing.lanes import conflict

    warnings = list(verdict.warnings)
    if (warning := conflict(history, verdict.signer.kid)) is not None:
        warnings.append(warning)
    if state.cancellation is not None:
        refusal = prescription_refusal(state, at)
        assert refusal is not None
        reasons.append(ReasonItem(Reason.CANCELLED, refusal.message))
    elif state.fully_dispensed:
        reasons.append(ReasonItem(Reason.FULLY_DISPENSED, "every line has been dispensed in full"))
    elif state.first_dispensed_at is not None:
        issued = verdict.prescription.issued_at
        if rules.within_treatment(issued, at):
            reasons = [r for r in reasons if r.code is not Reason.EXPIRED]
        elif not any(r.code is Reason.EXPIRED for r in reasons):
            deadline = rules.treatment_deadline(issued)
            reasons.append(
                ReasonItem(
                    Reason.EXPIRED,
                    f"the treatment period ended on {deadline.isoformat()} (12 months)",
                )
            )
    reasons = _what_dispense_decides(state, at, reasons)
    return dataclasses.replace(
        verdict, reasons=reasons, dispensing=view(state, at), warnings=warnings
    )


def without_ledger(verdict: Verdict, at: dt.datetime) -> Verdict:
    """The verdict of a prescription the ledger has never seen (``verify`` without
    ``--ledger``): rejected when even a first dispensing could give nothing (a narcotic
    presented after its treatment period, say), as ``dispense`` would refuse it."""
    if verdict.reasons or verdict.signer is None or verdict.prescription is None:
        return verdict  # not authentic, or already refused
    # Modules, not packages: no importlib code runs for these once they are loaded.
    from eprescrire.dispensing.engine import gives_at_first_sight

    if gives_at_first_sight(verdict.prescription, at):
        return verdict
    from eprescrire.dispensing.state import state_of
    from eprescrire.ledger.interface import History

    assert verdict.id is not None
    state = state_of(verdict.prescription, verdict.signer.kid, History(verdict.id, ()))
    reasons = _what_dispense_decides(state, at, [])
    return verdict if not reasons else dataclasses.replace(verdict, reasons=reasons)


def _what_dispense_decides(
    state: Any, at: dt.datetime, reasons: list[ReasonItem]
) -> list[ReasonItem]:
    """``reasons``, and when there are none, why nothing may be dispensed any more, as the
    dispensing rules decide it (:func:`eprescrire.dispensing.nothing_left`): verify and
    dispense agree."""
    from eprescrire.dispensing import nothing_left

    if reasons:
        return reasons
    refusal = nothing_left(state, at)
    if refusal is None:
        return reasons
    return [ReasonItem(Reason(refusal.code.value), refusal.message)]
