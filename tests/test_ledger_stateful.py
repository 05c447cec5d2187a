"""A Hypothesis state machine over a real ledger of each backend (SQLite, PostgreSQL): whatever the pharmacists try, in any
order and at any time, nothing is dispensed beyond the prescription, renewals are counted,
a cancelled prescription stays cancelled, and the chain always verifies."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import LEDGER_BACKENDS
from eprescrire import cancellation, keys, model, signing
from eprescrire import dispensing as d
from eprescrire.keys import kid_of

ROOT = Path(__file__).resolve().parent.parent
RPPS = "10003456786"
ISSUED = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
LINES = [
    {
        "label": "METFORMINE 1000 mg",
        "posology": "1 matin et soir",
        "duration_days": 30,
        "quantity": 2,
        "renewals": 2,
    },
    {
        "label": "LÉVOTHYROXINE 75 µg",
        "posology": "1 le matin",
        "duration_days": 30,
        "quantity": 1,
        "renewals": 1,
        "substitutable": False,
        "ns_reason": "MTE",
    },
    {
        "label": "SULFATE DE MORPHINE 30 mg",
        "posology": "1 matin et soir",
        "duration_days": 28,
        "quantity": 4,
        "narcotic": True,
        "days_per_dispensing": 7,
    },
    {"label": "LEVOTHYROX 100 µg", "posology": "1 le matin", "duration_days": 90, "quantity": 3},
]

_CREDENTIALS = keys.load_pkcs12(ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True)


def _document() -> d.Presented:
    data = {
        "prescriber": {
            "name": "Dr Claire Martin",
            "rpps": RPPS,
            "specialty": "Médecine générale",
            "facility": {"name": "Cabinet", "address": "12 rue de la Roquette, 75011 Paris"},
        },
        "patient": {"family_name": "Durand", "given_name": "Louise", "birth_date": "1956-03-14"},
        "lines": LINES,
    }
    document = signing.sign(model.from_input(data, now=ISSUED), _CREDENTIALS)
    return d.Presented(
        document.prescription,
        document.token,
        kid_of(_CREDENTIALS.certificate),
        _CREDENTIALS.certificate,
    )


class LedgerMachine(RuleBasedStateMachine):
    backend = "sqlite"  # a subclass per entry of conftest.LEDGER_BACKENDS

    @initialize()
    def start(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.factory = LEDGER_BACKENDS[self.backend](Path(self.directory))
        self.ledger = self.factory()
        self.document = _document()
        self.clock = ISSUED
        self.cancelled = False
        self.dispensed_after_cancel = False

    def teardown(self) -> None:
        if hasattr(self, "ledger"):
            self.ledger.close()
            self.factory.cleanup()
            shutil.rmtree(self.directory, ignore_errors=True)

    def state(self) -> d.State:
        return d.state_of(
            self.document.prescription,
            self.document.kid,
            self.ledger.history(self.document.prescription.id),
        )

    @rule(days=st.integers(0, 40), hours=st.integers(0, 23))
    def wait(self, days: int, hours: int) -> None:
        self.clock += dt.timedelta(days=days, hours=hours)

    @rule(
        line=st.integers(1, len(LINES)),
        quantity=st.one_of(st.none(), st.integers(1, 5)),
        substitute=st.booleans(),
    )
    def dispense_line(self, line: int, quantity: int | None, substitute: bool) -> None:
        request = d.Request(
            RPPS, line=line, quantity=quantity, substitute="GÉNÉRIQUE" if substitute else None
        )
        self._dispense(request)

    @rule()
    def dispense_all(self) -> None:
        self._dispense(d.Request(RPPS))

    def _dispense(self, request: d.Request) -> None:
        before = self.state()
        try:
            outcome = d.dispense(self.ledger, self.document, request, self.clock)
        except d.Refused as e:
            if self.cancelled:
                assert e.code is d.Code.CANCELLED
            elif request.substitute and not LINES[request.line - 1].get("substitutable", True):  # type: ignore[index]
                # prescription-wide refusals come first; otherwise substitution is the reason
                assert e.code in {
                    d.Code.SUBSTITUTION_FORBIDDEN,
                    d.Code.EXPIRED,
                    d.Code.FULLY_DISPENSED,
                }
            return
        assert not self.cancelled
        if request.substitute:
            assert LINES[request.line - 1].get("substitutable", True)  # type: ignore[index]
        after = outcome.state
        assert after is not None
        assert after == self.state()  # folded on from the rules' state: the ledger's own
        gained = sum(
            a.dispensed - b.dispensed for a, b in zip(after.lines, before.lines, strict=True)
        )
        assert gained > 0
        if request.quantity is not None:
            assert gained == request.quantity

    @rule(reason=st.sampled_from(["Erreur de posologie", "Traitement arrêté"]))
    def cancel(self, reason: str) -> None:
        signed = cancellation.sign_cancellation(
            self.document.prescription.id, reason, self.clock, _CREDENTIALS
        )
        d.record_cancellation(self.ledger, signed, self.document)
        self.cancelled = True

    @invariant()
    def never_more_than_prescribed(self) -> None:
        if not hasattr(self, "ledger"):
            return
        state = self.state()
        for ls in state.lines:
            assert 0 <= ls.dispensed <= ls.prescribed
            rounds: dict[int, int] = {}
            for event in ls.events:
                rounds[event.round] = rounds.get(event.round, 0) + event.quantity
            assert all(total <= ls.line.quantity for total in rounds.values())
            assert sorted(rounds) == list(range(len(rounds)))  # renewals counted in order
            assert ls.renewals_used == max(0, len(rounds) - 1) <= ls.line.renewals
            # a renewal starts only once the previous dispensing is complete
            for index in range(1, len(rounds)):
                assert rounds[index - 1] == ls.line.quantity
            if ls.line.narcotic:
                assert all(e.quantity <= 1 for e in ls.events)  # 7 days of a 28-day box of 4
        assert state.cancelled == self.cancelled

    @invariant()
    def chain_verifies(self) -> None:
        if hasattr(self, "ledger"):
            assert self.ledger.verify().ok


EXAMPLES = {"sqlite": 30, "postgresql": 15}


def _machine_tests() -> dict[str, Any]:
    """One TestCase per ledger backend: the same invariants hold whatever stores the records."""
    tests = {}
    for backend in LEDGER_BACKENDS:
        machine = type(f"LedgerMachine_{backend}", (LedgerMachine,), {"backend": backend})
        case = machine.TestCase
        # A server ledger is made afresh for each example: fewer examples keep the run short.
        case.settings = settings(
            max_examples=EXAMPLES.get(backend, 15),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        tests[f"TestLedgerMachine_{backend}"] = case
    return tests


globals().update(_machine_tests())
