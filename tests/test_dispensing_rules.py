"""The dispensing rules of SPEC §6, case by case, through the pure engine (no ledger, no clock).

Each case is a line, a list of attempts (Paris date and time, line, quantity) and the expected
outcome of every attempt: a number of units handed over, or a reason code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from eprescrire import dispensing as d
from eprescrire import model
from eprescrire.ledger import History, Record
from eprescrire.rules import PARIS

KID = "AAAAAAAAAAA"
RPPS = "10003456786"


def paris(text: str) -> dt.datetime:
    """'2026-01-15' (noon) or '2026-01-15T23:30' in Paris time -> aware UTC."""
    moment = dt.datetime.fromisoformat(text if "T" in text else text + "T12:00")
    return moment.replace(tzinfo=PARIS).astimezone(dt.UTC)


def prescription(
    lines: list[dict[str, Any]], issued: str = "2026-01-15T10:00"
) -> model.Prescription:
    data = {
        "issued": paris(issued).isoformat(),
        "prescriber": {
            "name": "Dr Claire Martin",
            "rpps": RPPS,
            "specialty": "Médecine générale",
            "facility": {"name": "Cabinet", "address": "12 rue de la Roquette, 75011 Paris"},
        },
        "patient": {"family_name": "Durand", "given_name": "Louise", "birth_date": "1956-03-14"},
        "lines": [
            {"label": f"MÉDICAMENT {n}", "posology": "1 par jour", **line}
            for n, line in enumerate(lines, start=1)
        ],
    }
    return model.from_input(data, now=paris("2027-12-31"))


class Pharmacy:
    """Applies attempts to an in-memory history, as the ledger would."""

    def __init__(self, p: model.Prescription) -> None:
        self.p = p
        self.records: list[Record] = []

    def state(self) -> d.State:
        return d.state_of(self.p, KID, History(self.p.id, tuple(self.records)))

    def append(self, kind: str, body: dict[str, Any]) -> None:
        self.records.append(Record(len(self.records) + 1, kind, self.p.id, "t", body, "", ""))

    def attempt(
        self, when: str, line: int | None, quantity: int | None = None, **extra: Any
    ) -> int | str:
        request = d.Request(pharmacist=RPPS, line=line, quantity=quantity, **extra)
        try:
            new = d.plan(self.state(), request, paris(when))
        except d.Refused as e:
            return e.code.value
        for item in new:
            self.append(item.kind, item.body)
        return sum(item.body["quantity"] for item in new)


MONTHLY = {"duration_days": 30, "quantity": 1, "renewals": 2}
SECOND = {"duration_days": 10, "quantity": 1}  # keeps the prescription from being fully dispensed

CASES: list[
    tuple[str, list[dict[str, Any]], str, list[tuple[str, int | None, int | None, Any]]]
] = [
    (
        "first dispensing: 3 months to the day, not a day more",
        [MONTHLY, SECOND],
        "2026-01-15T10:00",
        [("2026-04-16", 1, 1, "expired"), ("2026-04-15T23:59", 1, 1, 1)],
    ),
    (
        "3 months counted on Paris dates (00:30 in Paris is still the previous day in UTC)",
        [MONTHLY, SECOND],
        "2026-01-15T23:30",
        [("2026-04-16T00:30", 1, 1, "expired"), ("2026-04-15T23:59", 1, 1, 1)],
    ),
    (
        "3 months from 30 November end on 28 February",
        [MONTHLY, SECOND],
        "2025-11-30T10:00",
        [("2026-03-01", 1, 1, "expired"), ("2026-02-28", 1, 1, 1)],
    ),
    (
        "renewals: due 3 days before the previous month runs out, counted, then exhausted",
        [MONTHLY, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, 1, 1),
            ("2026-02-10", 1, 1, "renewal_not_due"),  # supply lasts to 14 Feb; due from 11 Feb
            ("2026-02-11", 1, 1, 1),
            ("2026-03-12", 1, 1, "renewal_not_due"),
            ("2026-03-13", 1, 1, 1),
            ("2026-04-20", 1, 1, "quantity_exceeded"),  # 3 of 3: renewals used up
        ],
    ),
    (
        "a renewal of a prescription first dispensed in time may come after 3 months",
        [{"duration_days": 90, "quantity": 1, "renewals": 3}, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, None, 1),
            ("2026-04-11", 1, None, "renewal_not_due"),
            ("2026-04-12", 1, None, 1),
        ],
    ),
    (
        "nothing after 12 months of treatment",
        [{"duration_days": 30, "quantity": 1, "renewals": 11}, SECOND],
        "2026-01-15T10:00",
        [("2026-01-15", 1, 1, 1), ("2027-01-15", 1, 1, 1), ("2027-01-16", 1, 1, "expired")],
    ),
    (
        "quantity above what remains; partial dispensings count toward the same dispensing",
        [{"duration_days": 20, "quantity": 3}, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, 4, "quantity_exceeded"),
            ("2026-01-15", 1, 2, 2),
            ("2026-01-16", 1, 2, "quantity_exceeded"),
            ("2026-01-16", 1, 1, 1),
            ("2026-01-16", 1, 1, "quantity_exceeded"),
        ],
    ),
    (
        "at most 30 days at once: a 90-day line of 3 boxes goes one box a month",
        [{"duration_days": 90, "quantity": 3}, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, 2, "quantity_exceeded"),
            ("2026-01-15", 1, 1, 1),
            ("2026-01-16", 1, 1, "renewal_not_due"),
            ("2026-02-11", 1, 1, 1),
        ],
    ),
    (
        "fractioning (days_per_dispensing 7) with no tolerance on 7-day fractions",
        [{"duration_days": 28, "quantity": 4, "days_per_dispensing": 7}, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, 2, "quantity_exceeded"),
            ("2026-01-15", 1, 1, 1),
            ("2026-01-21", 1, 1, "renewal_not_due"),
            ("2026-01-22", 1, 1, 1),
        ],
    ),
    (
        "narcotic presented within 3 days of issue: in full",
        [{"duration_days": 28, "quantity": 4, "narcotic": True}, SECOND],
        "2026-01-15T10:00",
        [("2026-01-18T23:00", 1, 4, 4)],
    ),
    (
        "narcotic presented on the 4th day: only the remaining 24 days (3 boxes of 7 days)",
        [{"duration_days": 28, "quantity": 4, "narcotic": True}, SECOND],
        "2026-01-15T10:00",
        [("2026-01-19", 1, 4, "narcotic_window"), ("2026-01-19", 1, None, 3)],
    ),
    (
        "fractioned narcotic: late first fraction leaves less than one unit",
        [{"duration_days": 28, "quantity": 4, "narcotic": True, "days_per_dispensing": 7}, SECOND],
        "2026-01-15T10:00",
        [("2026-01-20", 1, 1, "narcotic_window")],
    ),
    (
        "fractioned narcotic: next fraction in full up to 3 days after the previous one ends",
        [{"duration_days": 28, "quantity": 4, "narcotic": True, "days_per_dispensing": 7}, SECOND],
        "2026-01-15T10:00",
        [
            ("2026-01-15", 1, 1, 1),
            ("2026-01-21", 1, 1, "renewal_not_due"),
            ("2026-01-25", 1, 1, 1),
            ("2026-02-02", 1, 1, "narcotic_window"),  # third fraction (29/01-04/02) missed: lost
            ("2026-02-05", 1, 1, 1),  # the fourth keeps its date: in full on its first day
            ("2026-02-06", 1, 1, "narcotic_window"),  # 3 of 4 given, the missed one is lost
        ],
    ),
    (
        "narcotic presented late: only the remaining days, and asking again gives nothing more",
        [{"duration_days": 28, "quantity": 4, "narcotic": True}, SECOND],
        "2026-01-10T10:00",
        [
            ("2026-01-20T10:00", 1, None, 2),  # day 10 of 28: the 2 weeks left, 2 boxes
            ("2026-01-20T11:00", 1, None, "narcotic_window"),
            ("2026-01-27", 1, None, "narcotic_window"),
        ],
    ),
    (
        "fractioned narcotic presented late: the rest of that fraction only, later ones on time",
        [{"duration_days": 28, "quantity": 28, "narcotic": True, "days_per_dispensing": 7}, SECOND],
        "2026-01-10T10:00",
        [
            ("2026-01-15T10:00", 1, None, 2),  # day 5 of the first 7: 2 days left
            ("2026-01-15T11:00", 1, None, "narcotic_window"),
            ("2026-01-17", 1, None, 7),  # second fraction, on its first day
            ("2026-02-07", 1, None, "narcotic_window"),  # treatment ended on 07/02
        ],
    ),
    (
        "a dispensing cannot be recorded before one already recorded",
        [MONTHLY],
        "2026-01-15T10:00",
        [("2026-01-20", 1, 1, 1), ("2026-01-18", 1, 1, "conflicting_record")],
    ),
    (
        "issued later than the dispensing time",
        [MONTHLY],
        "2026-01-15T10:00",
        [("2026-01-14", 1, 1, "not_yet_valid")],
    ),
    (
        "fully dispensed prescription",
        [{"duration_days": 10, "quantity": 2}],
        "2026-01-15T10:00",
        [
            ("2026-01-15", None, None, 2),
            ("2026-01-16", None, None, "fully_dispensed"),
            ("2026-01-16", 1, 1, "fully_dispensed"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "lines", "issued", "attempts"), CASES, ids=[c[0] for c in CASES])
def test_rule_table(
    name: str, lines: list[dict[str, Any]], issued: str, attempts: list[tuple[Any, ...]]
) -> None:
    pharmacy = Pharmacy(prescription(lines, issued))
    outcomes = [pharmacy.attempt(when, line, quantity) for when, line, quantity, _ in attempts]
    assert outcomes == [expected for *_, expected in attempts]


def test_substitution_forbidden_on_non_substitutable_line() -> None:
    p = prescription(
        [
            {"duration_days": 30, "quantity": 1, "substitutable": False, "ns_reason": "MTE"},
            {"duration_days": 30, "quantity": 1},
        ]
    )
    pharmacy = Pharmacy(p)
    assert (
        pharmacy.attempt("2026-01-15", 1, 1, substitute="LÉVOTHYROXINE GÉNÉRIQUE")
        == "substitution_forbidden"
    )
    assert pharmacy.attempt("2026-01-15", 2, 1, substitute="AMLODIPINE BIOGARAN") == 1
    body = pharmacy.records[-1].body
    assert body["substituted"] is True and body["generic"] == "AMLODIPINE BIOGARAN"
    assert pharmacy.attempt("2026-01-15", 1, 1) == 1


def test_cancellation_only_from_the_signer_and_final() -> None:
    pharmacy = Pharmacy(prescription([MONTHLY, SECOND]))
    pharmacy.append(
        "cancellation", {"kid": "BBBBBBBBBBB", "reason": "forged", "at": "2026-01-15T10:00:00Z"}
    )
    assert pharmacy.attempt("2026-01-15", 1, 1) == 1  # another key's cancellation is ignored
    pharmacy.append("cancellation", {"kid": KID, "reason": "erreur", "at": "2026-01-15T11:00:00Z"})
    assert pharmacy.attempt("2026-02-20", 1, 1) == "cancelled"
    assert pharmacy.attempt("2026-02-20", None) == "cancelled"
    assert pharmacy.state().cancelled


def test_all_reports_the_most_useful_reason() -> None:
    pharmacy = Pharmacy(
        prescription([MONTHLY, {"duration_days": 30, "quantity": 1, "renewals": 1}])
    )
    assert pharmacy.attempt("2026-01-15", None) == 2
    request = d.Request(pharmacist=RPPS)
    with pytest.raises(d.Refused) as caught:
        d.plan(pharmacy.state(), request, paris("2026-01-20"))
    assert caught.value.code is d.Code.RENEWAL_NOT_DUE
    assert "2026-02-11" in caught.value.message
    assert [c for c, _ in caught.value.details] == [d.Code.RENEWAL_NOT_DUE]


def test_state_counts_renewals_and_remaining() -> None:
    pharmacy = Pharmacy(prescription([MONTHLY, SECOND]))
    pharmacy.attempt("2026-01-15", None)
    pharmacy.attempt("2026-02-12", 1, 1)
    state = pharmacy.state()
    first = state.lines[0]
    assert (first.prescribed, first.dispensed, first.remaining, first.renewals_used) == (3, 2, 1, 1)
    summary = d.view(state, paris("2026-02-12"))
    assert (
        summary["lines"][0]["next_due"] == "2026-03-13"
    )  # an early renewal does not shift the schedule
    assert summary["lines"][1]["remaining"] == 0
    assert not state.fully_dispensed


@pytest.mark.parametrize(
    ("rpps", "ok"),
    [("10003456786", True), ("10003456787", False), ("1000345678", False), ("abc", False)],
)
def test_pharmacist_rpps_checked(rpps: str, ok: bool) -> None:
    from eprescrire.errors import UsageError

    if ok:
        assert d.check_rpps(rpps) == rpps
    else:
        with pytest.raises(UsageError):
            d.check_rpps(rpps)


@pytest.mark.parametrize(
    ("finess", "ok"), [("750001232", True), ("750001233", False), ("75000123", False)]
)
def test_pharmacy_finess_checked(finess: str, ok: bool) -> None:
    from eprescrire.errors import UsageError

    if ok:
        assert d.check_finess(finess) == finess
    else:
        with pytest.raises(UsageError):
            d.check_finess(finess)


def test_request_shape() -> None:
    from eprescrire.errors import UsageError

    with pytest.raises(UsageError):
        d.Request(pharmacist=RPPS, quantity=1)
    with pytest.raises(UsageError):
        d.Request(pharmacist=RPPS, line=1, quantity=0)
    with pytest.raises(UsageError):
        d.Request(pharmacist=RPPS, substitute="GÉNÉRIQUE")
