"""One identifier, several signers: the dispensing state is kept per (identifier, signer).

Identifiers are unguessable, but one is printed on the paper: a trusted prescriber who learns
another's identifier could sign a different prescription under it and have it dispensed first.
Were the ledger keyed on the identifier alone, the genuine prescription would then be refused
for good. So the state of a prescription is computed from the records of its own *lane*: the
records about the prescription signed with that key (its ``kid``, i.e. its certificate):

- a ``prescription`` record belongs to the lane of its ``kid``;
- a ``cancellation`` to the lane of the key that signed it (only the prescription's own signer
  cancels it);
- a ``dispensing`` or ``consent`` record to the lane named by its ``lane`` field (the kid of the
  prescription it is about), which this version writes; a dispensing without one (written
  before lanes existed) belongs to the first signer's lane, a consent without one to every lane.

The ledger keeps one history per identifier (:meth:`eprescrire.ledger.Ledger.history`); lanes
are a filter over it. :func:`conflict` words what both parties are told when an identifier has
more than one signer.
"""

from __future__ import annotations

from typing import Any

from eprescrire.ledger import History, Record

LANE_FIELD = "lane"


def _prescription_kid(record: Record) -> Any:
    return record.body.get("kid")


def signers(history: History) -> list[str]:
    """The kids of the prescriptions recorded under this identifier, first seen first."""
    seen: list[str] = []
    for record in history.records:
        if record.kind == "prescription":
            kid = _prescription_kid(record)
            if isinstance(kid, str) and kid not in seen:
                seen.append(kid)
    return seen


def lane(history: History, kid: str) -> History:
    """The records of ``history`` about the prescription signed with ``kid``."""
    kids = signers(history)
    if kids in ([], [kid]) and not any(
        LANE_FIELD in r.body and r.body[LANE_FIELD] != kid for r in history.records
    ):
        return history  # the usual case: one signer, nothing to filter
    first = kids[0] if kids else kid
    kept = []
    for record in history.records:
        if record.kind == "prescription":
            keep = _prescription_kid(record) == kid
        elif record.kind == "cancellation":
            keep = record.body.get("kid") == kid
        elif record.kind == "dispensing":
            keep = record.body.get(LANE_FIELD, first) == kid
        else:  # consent, and kinds to come
            keep = record.body.get(LANE_FIELD, kid) == kid
        if keep:
            kept.append(record)
    return History(history.prescription_id, tuple(kept))


def conflict(history: History, kid: str) -> str | None:
    """What to tell the holder of ``kid``'s prescription when other signers recorded a
    prescription under the same identifier; None when there is none."""
    others = [k for k in signers(history) if k != kid]
    if not others:
        return None
    return (
        f"another prescription signed by a different key ({', '.join(others)}) is recorded "
        "under this identifier: the two are kept apart; tell both prescribers"
    )


def tagged(body: dict[str, Any], kid: str) -> dict[str, Any]:
    """``body`` with the lane it belongs to."""
    return body | {LANE_FIELD: kid}
