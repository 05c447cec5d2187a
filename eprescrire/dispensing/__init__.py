"""Dispensing: the ledger's record bodies, the state folded from them, the rules of SPEC §6 and
the transactions that apply them.

- :mod:`~eprescrire.dispensing.records`: typed bodies of ledger records (``from_json``/``to_json``).
- :mod:`~eprescrire.dispensing.state`: a prescription's dispensing state from its history.
- :mod:`~eprescrire.dispensing.engine`: the rules, pure (no I/O, the clock a parameter).
- :mod:`~eprescrire.dispensing.transaction`: dispense, cancel, consent as ledger transactions.
"""

from __future__ import annotations

from eprescrire.dispensing.engine import (
    Allowance,
    Code,
    Refused,
    Request,
    allow,
    check_finess,
    check_rpps,
    first_sight,
    gives_at_first_sight,
    nothing_left,
    plan,
    prescription_refusal,
    skipped,
    view,
)
from eprescrire.dispensing.records import Presented, recorded_prescription
from eprescrire.dispensing.state import Dispensed, LineState, State, state_of
from eprescrire.dispensing.transaction import Outcome, dispense, record_cancellation, set_consent

__all__ = [
    "Allowance",
    "Code",
    "Dispensed",
    "LineState",
    "Outcome",
    "Presented",
    "Refused",
    "Request",
    "State",
    "allow",
    "check_finess",
    "check_rpps",
    "dispense",
    "first_sight",
    "gives_at_first_sight",
    "nothing_left",
    "plan",
    "prescription_refusal",
    "record_cancellation",
    "recorded_prescription",
    "set_consent",
    "skipped",
    "state_of",
    "view",
]
