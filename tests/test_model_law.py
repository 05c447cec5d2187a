"""Input rules from the Code de la santé publique: NS EFG (child under 6) and the one-month
cap that fractioning may only lower (R.5123-2)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from conftest import load_example
from eprescrire import model, qr, rules
from eprescrire.errors import ValidationError

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def _with_line(birth: str | None = None, **line: Any) -> dict[str, Any]:
    data = load_example()
    data.pop("issued", None)
    data["patient"].pop("ins", None)
    if birth is not None:
        data["patient"]["birth_date"] = birth
    base = {"label": "X 1 mg, comprimé", "posology": "1 par jour", "quantity": 1}
    data["lines"] = [{**base, **line}]
    return data


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        model.from_input(data, now=NOW)
    return [(e.field, e.message) for e in raised.value.errors]


# ------------------------------------------------------------------------------ NS EFG


def test_efg_is_refused_for_a_70_year_old() -> None:
    data = _with_line(birth="1956-03-14", duration_days=10, substitutable=False, ns_reason="EFG")
    ((field, message),) = _errors(data)
    assert field == "lines[1].ns_reason" and "under 6" in message


@pytest.mark.parametrize(
    ("birth", "allowed"),
    [
        ("2020-11-26", True),  # turns 6 tomorrow
        ("2020-11-25", False),  # turns 6 on the issue date
        ("2024-02-29", True),
        ("2012-01-01", False),
    ],
)
def test_efg_only_for_a_child_under_six_on_the_issue_date(birth: str, allowed: bool) -> None:
    data = _with_line(birth=birth, duration_days=10, substitutable=False, ns_reason="EFG")
    if allowed:
        assert model.from_input(data, now=NOW).lines[0].ns_reason == "EFG"
    else:
        assert [f for f, _ in _errors(data)] == ["lines[1].ns_reason"]


def test_mte_and_cif_have_no_age_limit() -> None:
    for reason in ("MTE", "CIF"):
        data = _with_line(
            birth="1956-03-14", duration_days=10, substitutable=False, ns_reason=reason
        )
        assert model.from_input(data, now=NOW).lines[0].ns_reason == reason


# ------------------------------------------------------------------------------ R.5123-2


def test_fractioning_cannot_raise_the_one_month_cap() -> None:
    """180 days, 6 boxes, days_per_dispensing = 180 would hand over the 6 boxes at once."""
    data = _with_line(duration_days=180, quantity=6, days_per_dispensing=180)
    ((field, message),) = _errors(data)
    assert field == "lines[1].days_per_dispensing" and "at most 30 days" in message


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ({"days_per_dispensing": 30}, True),
        ({"days_per_dispensing": 31}, False),
        ({"days_per_dispensing": 7}, True),
        ({"days_per_dispensing": 90, "pack_months": 3}, True),
        ({"days_per_dispensing": 91, "pack_months": 3}, False),
        ({"days_per_dispensing": 60, "pack_months": 2}, True),
        ({"days_per_dispensing": 61, "pack_months": 2}, False),
        ({"days_per_dispensing": 84, "contraceptive": True}, True),
        ({"days_per_dispensing": 85, "contraceptive": True}, False),
        ({"days_per_dispensing": 90, "contraceptive": True, "pack_months": 3}, True),
    ],
)
def test_only_long_packs_and_contraceptives_go_beyond_a_month(
    line: dict[str, Any], ok: bool
) -> None:
    data = _with_line(duration_days=180, quantity=2, **line)
    if ok:
        built = model.from_input(data, now=NOW).lines[0]
        assert built.days_per_dispensing == line["days_per_dispensing"]
        assert built.pack_months == line.get("pack_months")
        assert built.contraceptive is line.get("contraceptive", False)
    else:
        assert [f for f, _ in _errors(data)] == ["lines[1].days_per_dispensing"]


@pytest.mark.parametrize("value", [1, 4, 12, "3", True, 2.5])
def test_pack_months_is_two_or_three(value: Any) -> None:
    data = _with_line(duration_days=90, quantity=1, pack_months=value)
    assert [f for f, _ in _errors(data)] == ["lines[1].pack_months"]


def test_contraceptive_is_a_flag() -> None:
    data = _with_line(duration_days=90, quantity=1, contraceptive="yes")
    assert [f for f, _ in _errors(data)] == ["lines[1].contraceptive"]


def test_the_new_fields_are_signed_and_carried_by_the_qr_code(demo_credentials) -> None:
    from eprescrire import jws, signing

    data = _with_line(duration_days=84, quantity=1, contraceptive=True, pack_months=3)
    data["lines"].append({"label": "Y", "posology": "1/j", "duration_days": 10, "quantity": 1})
    prescription = model.from_input(data, now=NOW)
    payload = model.to_payload(prescription)
    assert payload["lines"][0]["pack_months"] == 3 and payload["lines"][0]["contraceptive"]
    assert "pack_months" not in payload["lines"][1] and "contraceptive" not in payload["lines"][1]
    document = signing.sign(prescription, demo_credentials)
    token = qr.decode(qr.encode(document))
    assert token == document.token
    assert model.from_payload(json.loads(jws.parse(token).payload)) == prescription


def test_documents_without_the_new_fields_keep_their_signed_bytes() -> None:
    prescription = model.from_input(_with_line(duration_days=10), now=NOW)
    assert b"pack_months" not in model.signed_bytes(prescription)
    assert b"contraceptive" not in model.signed_bytes(prescription)


def test_signed_documents_keep_verifying_whatever_their_fractioning() -> None:
    """The cap is an input rule: a document signed before it is read, and the dispensing
    rules cap what goes at once (rules.max_days_at_once)."""
    data = model.to_payload(model.from_input(_with_line(duration_days=180, quantity=6), now=NOW))
    data["lines"][0]["days_per_dispensing"] = 180
    assert model.from_payload(data).lines[0].days_per_dispensing == 180
    assert rules.max_days_at_once(180) == 30


@pytest.mark.parametrize(
    ("per", "pack", "contraceptive", "cap"),
    [
        (None, None, False, 30),
        (180, None, False, 30),
        (7, None, False, 7),
        (None, 3, False, 90),
        (180, 3, False, 90),
        (60, 3, False, 60),
        (None, 2, False, 60),
        (None, None, True, 84),
        (None, 3, True, 90),
    ],
)
def test_the_days_at_once_rule(
    per: int | None, pack: int | None, contraceptive: bool, cap: int
) -> None:
    assert rules.max_days_at_once(per, pack_months=pack, contraceptive=contraceptive) == cap


def test_a_signed_fractioning_above_a_month_hands_over_one_month(demo_credentials) -> None:
    """180 days, 6 boxes, days_per_dispensing = 180, signed before the input rule (or by a
    signer that skipped it): the dispensing rules give one month (1 box), not the 6 boxes."""
    from eprescrire import dispensing
    from eprescrire.ledger import History

    data = model.to_payload(model.from_input(_with_line(duration_days=180, quantity=6), now=NOW))
    data["lines"][0]["days_per_dispensing"] = 180
    prescription = model.from_payload(data)
    state = dispensing.state_of(prescription, "AAAAAAAAAAA", History(prescription.id, ()))
    request = dispensing.Request(pharmacist="10003456786", line=1, quantity=None)
    planned = dispensing.plan(state, request, NOW + dt.timedelta(hours=1))
    assert sum(item.body["quantity"] for item in planned) == 1
