"""Prescription input validation: every rule names its field, all errors at once."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from conftest import EXAMPLE_FILES, load_example
from eprescrire import canonical, inputs, model
from eprescrire.errors import ValidationError

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.from_input(data, now=NOW)
    return {e.field: e.message for e in caught.value.errors}


def patched(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(load_example())
    target = data
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[leaf]
    else:
        target[leaf] = value
    return data


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_are_valid(path) -> None:
    prescription = model.from_input(inputs.read_input(path), now=NOW)
    assert prescription.lines
    assert model.from_payload(model.to_payload(prescription)) == prescription


CASES = [
    # (path, bad value, field reported, words in the message)
    ("prescriber.rpps", "10003456787", "prescriber.rpps", "Luhn"),
    ("prescriber.rpps", "1000345678", "prescriber.rpps", "11 digits"),
    ("prescriber.facility.finess", "750001233", "prescriber.facility.finess", "Luhn"),
    ("patient.ins", "256037511234511", "patient.ins", "key"),
    ("patient.ins", "156037511234540", "patient.ins", "key"),
    ("patient.birth_date", "2027-01-01", "patient.birth_date", "future"),
    ("patient.birth_date", "14/03/1956", "patient.birth_date", "YYYY-MM-DD"),
    ("patient.sex", "X", "patient.sex", "F or M"),
    ("patient.weight_kg", -3, "patient.weight_kg", "between"),
    ("patient.weight_kg", 12.345, "patient.weight_kg", "decimals"),
    ("lines.0.cip13", "3400935215438", "lines[1].cip13", "EAN-13"),
    ("lines.0.cip13", "5000935215437", "lines[1].cip13", "3400"),
    ("lines.0.quantity", 0, "lines[1].quantity", "between 1"),
    ("lines.0.quantity", 2.5, "lines[1].quantity", "whole number"),
    ("lines.0.duration_days", -1, "lines[1].duration_days", "between 1"),
    ("lines.0.renewals", 12, "lines[1].renewals", "between 0 and 11"),
    ("lines.0.duration_days", 200, "lines[1].renewals", "12 months"),
    ("lines.0.substitutable", "non", "lines[1].substitutable", "true or false"),
    ("lines.1.ns_reason", "XYZ", "lines[2].ns_reason", "MTE, EFG or CIF"),
    ("lines.1.ns_reason", ..., "lines[2].ns_reason", "MTE, EFG or CIF"),
    ("lines.0.ns_reason", "MTE", "lines[1].ns_reason", "non-substitutable"),
    ("lines.0.label", "", "lines[1].label", "empty"),
    ("lines.0.posology", ..., "lines[1].posology", "required"),
    ("lines.0.colour", "blue", "lines[1].colour", "unknown field"),
    ("patient.nickname", "Lou", "patient.nickname", "unknown field"),
    ("prescriber.facility", ..., "prescriber.facility", "required"),
    ("issued", "2026-12-24", "issued", "future"),
    ("issued", "demain", "issued", "ISO 8601"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"), CASES, ids=[c[0] + "=" + str(c[1]) for c in CASES]
)
def test_each_rule_names_field_and_rule(path: str, value: Any, field: str, words: str) -> None:
    errors = errors_of(patched(path, value))
    assert field in errors, errors
    assert words in errors[field]


def test_narcotic_rules() -> None:
    data = patched("lines.0.narcotic", True)
    data["lines"][0]["duration_days"] = 29
    errors = errors_of(data)
    assert "28 days" in errors["lines[1].duration_days"]
    assert "cannot be renewed" in errors["lines[1].renewals"]
    data["lines"][0].update(duration_days=28, renewals=0)
    model.from_input(data, now=NOW)  # 28 days exactly is allowed


def test_all_errors_are_reported_at_once() -> None:
    data = load_example()
    data["prescriber"]["rpps"] = "123"
    data["patient"]["ins"] = "256037511234599"
    data["lines"][0]["quantity"] = -1
    data["lines"][2]["renewals"] = 40
    data["lines"][3]["surprise"] = True
    errors = errors_of(data)
    assert {
        "prescriber.rpps",
        "patient.ins",
        "lines[1].quantity",
        "lines[3].renewals",
        "lines[4].surprise",
    } <= errors.keys()


def test_missing_sections_and_wrong_types() -> None:
    errors = errors_of({"lines": "none"})
    assert {"prescriber", "patient", "lines"} <= errors.keys()
    assert errors_of([1, 2]) == {"": "must be a table/object"}
    assert "unknown field" in errors_of({**load_example(), "id": "X"})["id"]


def test_ins_must_agree_with_sex_and_birth_date() -> None:
    from stdnum.fr import nir

    number = "1560375112345"  # a man born in March 1956, for a woman born 14/03/1956
    errors = errors_of(patched("patient.ins", number + nir.calc_check_digits(number)))
    assert "sex" in errors["patient.ins"]
    number = "2570375112345"
    errors = errors_of(patched("patient.ins", number + nir.calc_check_digits(number)))
    assert "year of birth" in errors["patient.ins"]


def test_corsican_ins_is_accepted() -> None:
    from stdnum.fr import nir

    number = "169032A123456"
    ins = number + nir.calc_check_digits(number)
    data = patched("patient.ins", ins)
    data["patient"].update(birth_date="1969-03-02", sex="M")
    assert model.from_input(data, now=NOW).patient.ins == ins


def test_json_and_toml_inputs_are_one_schema() -> None:
    toml_data = load_example()
    as_json = json.dumps(toml_data, default=str).encode()
    from_json = inputs.parse_input(as_json, "reference.json")
    assert model.from_input(
        from_json, now=NOW, prescription_id=model.ids.PrescriptionId("A" * 15 + "0")
    ).lines == (model.from_input(toml_data, now=NOW).lines)


def test_issue_date_defaults_to_now_and_accepts_the_past() -> None:
    assert model.from_input(load_example(), now=NOW).issued_at == NOW
    past = model.from_input(patched("issued", "2026-11-01"), now=NOW)
    assert past.issued_at == dt.datetime(2026, 11, 1, 11, 0, tzinfo=dt.UTC)  # noon in Paris


def test_signed_bytes_are_canonical_and_stable() -> None:
    prescription = model.from_input(load_example(), now=NOW)
    raw = model.signed_bytes(prescription)
    assert raw == canonical.dumps(canonical.loads(raw))
    assert b"\\u" not in raw and b" " not in raw.split(b'"')[0]
    assert model.signed_bytes(model.from_payload(canonical.loads(raw))) == raw


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":' + "1" * 40 + "}",
        "[" * 40 + "]" * 40,
        '{"a":1e999}',
    ],
)
def test_strict_json_refuses_ambiguous_documents(text: str) -> None:
    with pytest.raises(canonical.StrictJSONError):
        canonical.loads(text)
