"""The dispensing rules' table (tests/test_dispensing_rules.py) replayed through a real ledger of
each backend: every attempt goes through ``dispensing.dispense`` (the rules and the write in
one transaction), so each backend stores, reads back and, on PostgreSQL, checks at commit
exactly what the pure engine decided."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_dispensing_rules as rules

from conftest import LEDGER_BACKENDS
from eprescrire import dispensing as d
from eprescrire import keys, model, signing
from eprescrire.keys import kid_of
from eprescrire.ledger import NewRecord


@pytest.fixture(scope="module", params=list(LEDGER_BACKENDS))
def ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One ledger per backend for the whole table: each case is its own prescription."""
    factory = LEDGER_BACKENDS[request.param](Path(tmp_path_factory.mktemp(request.param)))
    opened = factory()
    try:
        yield opened
    finally:
        opened.close()
        factory.cleanup()


class LedgerPharmacy:
    """As ``test_dispensing_rules.Pharmacy``, writing to the ledger."""

    def __init__(self, ledger: Any, p: model.Prescription, credentials: keys.Credentials):
        document = signing.sign(p, credentials)
        certificate = credentials.certificate
        self.ledger = ledger
        self.presented = d.Presented(
            document.prescription, document.token, kid_of(certificate), certificate
        )

    def state(self) -> d.State:
        p = self.presented
        return d.state_of(p.prescription, p.kid, self.ledger.history(p.prescription.id))

    def attempt(
        self, when: str, line: int | None, quantity: int | None = None, **extra: Any
    ) -> int | str:
        request = d.Request(pharmacist=rules.RPPS, line=line, quantity=quantity, **extra)
        try:
            outcome = d.dispense(self.ledger, self.presented, request, rules.paris(when))
        except d.Refused as e:
            return e.code.value
        return sum(r.body["quantity"] for r in outcome.records if r.kind == "dispensing")

    def append(self, kind: Any, body: dict[str, Any]) -> None:
        self.ledger.update(self.presented.prescription.id, lambda history: [NewRecord(kind, body)])


@pytest.mark.parametrize(
    ("name", "lines", "issued", "attempts"), rules.CASES, ids=[c[0] for c in rules.CASES]
)
def test_rule_table_through_the_ledger(
    ledger: Any,
    demo_credentials: keys.Credentials,
    name: str,
    lines: list[dict[str, Any]],
    issued: str,
    attempts: list[tuple[Any, ...]],
) -> None:
    pharmacy = LedgerPharmacy(ledger, rules.prescription(lines, issued), demo_credentials)
    outcomes = [pharmacy.attempt(when, line, quantity) for when, line, quantity, _ in attempts]
    assert outcomes == [expected for *_, expected in attempts]
    state = pharmacy.state()
    assert [ls.dispensed for ls in state.lines] == [
        sum(e.quantity for e in ls.events) for ls in state.lines
    ]
    assert ledger.verify().ok


def test_cancellation_through_the_ledger(ledger: Any, demo_credentials: keys.Credentials) -> None:
    pharmacy = LedgerPharmacy(
        ledger, rules.prescription([rules.MONTHLY, rules.SECOND]), demo_credentials
    )
    assert pharmacy.attempt("2026-01-15", 1, 1) == 1
    pharmacy.append(
        "cancellation", {"kid": "BBBBBBBBBBB", "reason": "forged", "at": "2026-01-15T10:00:00Z"}
    )
    assert pharmacy.attempt("2026-01-16", 2, 1) == 1  # another key's cancellation is ignored
    kid = pharmacy.presented.kid
    pharmacy.append("cancellation", {"kid": kid, "reason": "erreur", "at": "2026-01-16T11:00:00Z"})
    assert pharmacy.attempt("2026-02-20", 1, 1) == "cancelled"
    assert pharmacy.attempt("2026-02-20", None) == "cancelled"
    assert pharmacy.state().cancelled
    assert ledger.verify().ok


def test_substitution_through_the_ledger(ledger: Any, demo_credentials: keys.Credentials) -> None:
    p = rules.prescription(
        [
            {"duration_days": 30, "quantity": 1, "substitutable": False, "ns_reason": "MTE"},
            {"duration_days": 30, "quantity": 1},
        ]
    )
    pharmacy = LedgerPharmacy(ledger, p, demo_credentials)
    assert (
        pharmacy.attempt("2026-01-15", 1, 1, substitute="LÉVOTHYROXINE GÉNÉRIQUE")
        == "substitution_forbidden"
    )
    assert pharmacy.attempt("2026-01-15", 2, 1, substitute="AMLODIPINE BIOGARAN") == 1
    body = pharmacy.state().lines[1].events[-1]
    assert body.quantity == 1
    records = ledger.history(p.id).records
    assert records[-1].body["substituted"] is True
    assert records[-1].body["generic"] == "AMLODIPINE BIOGARAN"
