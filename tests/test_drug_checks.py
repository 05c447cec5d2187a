"""The prescription aid: lines checked against the catalogue, codes filled, substitution."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import load_example
from eprescrire import model, signing
from eprescrire.drugs.catalogue import SqliteCatalogue, import_directory, open_catalogue
from eprescrire.drugs.checks import check_lines, check_prescription, substitution_check
from eprescrire.errors import ExitCode, FieldError, Reason, ValidationError, VerificationError

FIXTURE = Path(__file__).resolve().parent / "assets" / "bdpm"

DOLIPRANE, DOLIPRANE_8 = "60234100", "3400935955838"
PARACETAMOL_BIOGARAN_CIP = "3400935997531"
SKENAN, SKENAN_14 = "61227030", "3400933323523"
GLUCOPHAGE_1000, GLUCOPHAGE_1000_30 = "61052830", "3400935601711"
METFORMINE_BIOGARAN_30 = "3400939718330"
GLUCOPHAGE_850_WITHDRAWN = "3400955923305"
AUGMENTIN_ENFANTS, AMOX_CLAV_ARROW_ENFANTS = "66853013", "3400935948335"
STILNOX, THIOPENTAL, ALEPSAL, LYNPARZA = "63179285", "60010084", "60622868", "60058620"


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteCatalogue]:
    path = tmp_path_factory.mktemp("drugs") / "drugs.sqlite3"
    import_directory(FIXTURE, path, source_date=dt.date(2021, 1, 15))
    with open_catalogue(path) as opened:
        yield opened


def line(**fields: Any) -> model.Line:
    values: dict[str, Any] = {
        "label": "comprimé",  # names no drug: fits any code
        "posology": "1 par jour",
        "duration_days": 7,
        "quantity": 1,
    }
    values.update(fields)
    return model.Line(**values)


def fields(errors: tuple[FieldError, ...]) -> list[str]:
    return [e.field for e in errors]


def codes(report: Any) -> list[tuple[str, str]]:
    return [(n.field, n.code) for n in report.warnings]


def test_known_codes_that_belong_together_pass(cat: SqliteCatalogue) -> None:
    report = check_lines([line(cis=DOLIPRANE, cip13=DOLIPRANE_8)], cat)
    assert report.errors == () and report.warnings == () and report.filled == ()
    assert report.lines[0].cis == DOLIPRANE and report.drugs[0] is not None


def test_unknown_codes(cat: SqliteCatalogue) -> None:
    report = check_lines(
        [
            line(cis="12345678"),
            line(cip13="3400935955845"),
            line(cis="12345678", cip13=DOLIPRANE_8),
        ],
        cat,
    )
    assert [(e.field, e.message) for e in report.errors] == [
        ("lines[1].cis", "unknown CIS in the drug reference (BDPM)"),
        ("lines[2].cip13", "unknown CIP13 in the drug reference (BDPM)"),
        ("lines[3].cis", "unknown CIS in the drug reference (BDPM)"),
        ("lines[3].cip13", f"is a presentation of CIS {DOLIPRANE}, not of lines[3].cis 12345678"),
    ]


def test_a_cip13_of_another_cis_is_an_error(cat: SqliteCatalogue) -> None:
    report = check_lines([line(cis=SKENAN, cip13=DOLIPRANE_8, narcotic=True)], cat)
    assert fields(report.errors) == ["lines[1].cip13"]
    assert f"presentation of CIS {DOLIPRANE}" in report.errors[0].message
    # what issue will raise: exit 3, naming the field
    error = ValidationError(list(report.errors), "rx.toml")
    assert error.exit_code == ExitCode.UNREADABLE and "lines[1].cip13" in str(error)


def test_a_narcotic_not_marked_narcotic_is_refused(cat: SqliteCatalogue) -> None:
    for given in ({"cis": SKENAN}, {"cip13": SKENAN_14}, {"label": "Skenan 10 mg"}):
        report = check_lines([line(**given)], cat)
        assert fields(report.errors) == ["lines[1].narcotic"], given
        assert "stupéfiants" in report.errors[0].message
    marked = check_lines([line(cis=SKENAN, narcotic=True, duration_days=28)], cat)
    assert marked.errors == ()
    assert ("lines[1].cis", "secure_form") in codes(marked)


def test_condition_limits(cat: SqliteCatalogue) -> None:
    """STILNOX: « prescription limitée à 4 semaines » (not a narcotic: the model allows more)."""
    ok = check_lines([line(cis=STILNOX, duration_days=28)], cat)
    assert ok.errors == ()
    too_long = check_lines([line(cis=STILNOX, duration_days=30)], cat)
    assert [(e.field, e.message) for e in too_long.errors] == [
        (
            "lines[1].duration_days",
            "30 days exceeds « prescription limitée à 4 semaines » (28 days)",
        )
    ]
    renewed = check_lines([line(cis=STILNOX, duration_days=14, renewals=1)], cat)
    assert renewed.errors == ()
    renewed = check_lines([line(cis=STILNOX, duration_days=14, renewals=2)], cat)
    assert fields(renewed.errors) == ["lines[1].renewals"]
    assert "42 days with renewals exceeds" in renewed.errors[0].message


def test_warnings_list_hospital_withdrawn(cat: SqliteCatalogue) -> None:
    report = check_lines(
        [
            line(cis=THIOPENTAL),
            line(cis=ALEPSAL),
            line(cis=LYNPARZA),
            line(cip13=GLUCOPHAGE_850_WITHDRAWN),
            line(cis=STILNOX),
        ],
        cat,
    )
    assert report.errors == ()
    assert codes(report) == [
        ("lines[1].cis", "list_ii"),
        ("lines[1].cis", "hospital_reserve"),
        ("lines[2].cis", "list_ii"),
        ("lines[3].cis", "list_i"),
        ("lines[3].cis", "hospital_prescription"),
        ("lines[4].cip13", "withdrawn"),
        ("lines[4].cis", "list_i"),
        ("lines[5].cis", "list_i"),
        ("lines[5].cis", "secure_form"),
    ]
    withdrawn = next(n for n in report.warnings if n.code == "withdrawn")
    assert "Déclaration d'arrêt de commercialisation" in withdrawn.message
    assert str(withdrawn).startswith("lines[4].cip13: presentation withdrawn")


def test_codes_filled(cat: SqliteCatalogue) -> None:
    report = check_lines(
        [
            line(cip13=DOLIPRANE_8),  # CIS from the CIP13
            line(
                label="SKENAN L.P. 10 mg, microgranules à libération prolongée en gélule",
                narcotic=True,
            ),
            line(label="Doliprane 1000 mg, comprimé"),  # two presentations on the market
            line(label="Glucophage"),  # 850 and 1000 mg: ambiguous
            line(label="Préparation magistrale"),  # nothing
        ],
        cat,
    )
    assert report.errors == ()
    assert [(n.field, n.message.split()[0]) for n in report.filled] == [
        ("lines[1].cis", DOLIPRANE),
        ("lines[2].cis", SKENAN),
        ("lines[2].cip13", SKENAN_14),  # its only presentation
        ("lines[3].cis", DOLIPRANE),
    ]
    assert [(lin.cis, lin.cip13) for lin in report.lines] == [
        (DOLIPRANE, DOLIPRANE_8),
        (SKENAN, SKENAN_14),
        (DOLIPRANE, None),
        (None, None),
        (None, None),
    ]
    assert ("lines[4].label", "ambiguous_label") in codes(report)
    assert report.drugs[4] is None
    # the lines are otherwise untouched
    assert report.lines[1].label.startswith("SKENAN") and report.lines[1].narcotic


def test_filled_lines_survive_the_model(cat: SqliteCatalogue) -> None:
    """What issue signs after filling: the model accepts the filled codes."""
    report = check_lines([line(label="Skenan 10 mg", narcotic=True)], cat)
    filled = report.lines[0]
    payload = {
        "label": filled.label,
        "posology": filled.posology,
        "duration_days": filled.duration_days,
        "quantity": filled.quantity,
        "narcotic": True,
        "cis": filled.cis,
        "cip13": filled.cip13,
    }
    checker = model._Checker()
    assert model._line(checker, payload, "lines[1]") == filled
    assert checker.errors == []


# --------------------------------------------------------------------------------------------
# Substitution


def test_substitute_in_the_generic_group(cat: SqliteCatalogue) -> None:
    verdict = substitution_check(
        cat, prescribed_cip13=GLUCOPHAGE_1000_30, substitute_cip13=METFORMINE_BIOGARAN_30
    )
    assert verdict.allowed and verdict.detail == "same_group" and verdict.groups == (33,)
    assert verdict.reason is None
    verdict.raise_if_forbidden()
    amox = substitution_check(
        cat, prescribed_cis=AUGMENTIN_ENFANTS, substitute_cip13=AMOX_CLAV_ARROW_ENFANTS
    )
    assert amox.allowed and amox.groups == (157,)


def test_same_drug_other_pack(cat: SqliteCatalogue) -> None:
    verdict = substitution_check(cat, prescribed_cis=DOLIPRANE, substitute_cip13="3400956369553")
    assert verdict.allowed and verdict.detail == "same_drug"


def test_substitute_outside_the_group_is_refused(cat: SqliteCatalogue) -> None:
    verdict = substitution_check(
        cat, prescribed_cip13=DOLIPRANE_8, substitute_cip13=PARACETAMOL_BIOGARAN_CIP
    )
    assert not verdict.allowed and verdict.detail == "not_in_group"
    assert verdict.reason == Reason.SUBSTITUTION_FORBIDDEN
    assert "PARACETAMOL BIOGARAN" in verdict.message
    with pytest.raises(VerificationError) as raised:
        verdict.raise_if_forbidden()
    assert raised.value.reason == Reason.SUBSTITUTION_FORBIDDEN
    assert raised.value.exit_code == ExitCode.REJECTED
    # metformin 1000 for the 850 mg princeps: another group
    other = substitution_check(
        cat, prescribed_cis="67547090", substitute_cip13=METFORMINE_BIOGARAN_30
    )
    assert other.detail == "not_in_group"


def test_substitution_refused_when_it_cannot_be_checked(cat: SqliteCatalogue) -> None:
    assert (
        substitution_check(
            cat,
            prescribed_cis=GLUCOPHAGE_1000,
            substitute_cip13=METFORMINE_BIOGARAN_30,
            substitutable=False,
        ).detail
        == "not_substitutable"
    )
    unknown_substitute = substitution_check(
        cat, prescribed_cis=GLUCOPHAGE_1000, substitute_cip13="3400935955845"
    )
    assert unknown_substitute.detail == "unknown_substitute" and not unknown_substitute.allowed
    unknown_prescribed = substitution_check(
        cat, prescribed_cis="12345678", substitute_cip13=METFORMINE_BIOGARAN_30
    )
    assert unknown_prescribed.detail == "unknown_prescribed"
    nothing = substitution_check(cat, substitute_cip13=METFORMINE_BIOGARAN_30)
    assert nothing.detail == "unknown_prescribed"
    by_label = substitution_check(
        cat,
        prescribed_label="Glucophage 1000 mg, comprimé pelliculé sécable",
        substitute_cip13=METFORMINE_BIOGARAN_30,
    )
    assert by_label.allowed and by_label.prescribed_cis == GLUCOPHAGE_1000


def test_withdrawn_substitute_is_flagged(cat: SqliteCatalogue) -> None:
    verdict = substitution_check(
        cat, prescribed_cis="67547090", substitute_cip13=GLUCOPHAGE_850_WITHDRAWN
    )
    assert verdict.allowed and verdict.withdrawn


def test_a_label_naming_another_drug_is_flagged(cat: SqliteCatalogue) -> None:
    report = check_lines(
        [
            line(label="Doliprane 1000 mg, comprimé", cip13=SKENAN_14, narcotic=True),
            line(label="Paracétamol 1 g, comprimé", cip13=DOLIPRANE_8),  # the substance
            line(label="Metformine 1000 mg", cis=GLUCOPHAGE_1000),  # the substance
            line(label="1 g, comprimé", cis=DOLIPRANE),  # says nothing: fits
        ],
        cat,
    )
    assert [(n.field, n.code) for n in report.warnings if n.code == "label_mismatch"] == [
        ("lines[1].label", "label_mismatch")
    ]


def test_check_prescription_before_signing(cat: SqliteCatalogue, demo_credentials) -> None:
    """What issue does with a catalogue: refuse (exit 3, field named) or sign filled codes."""
    now = dt.datetime.now(dt.UTC)
    data = load_example()
    data["lines"] = [
        {
            "label": "Skenan 10 mg",
            "posology": "1 gélule matin et soir",
            "duration_days": 14,
            "quantity": 28,
            "unit": "gélules",
        },
    ]
    prescription = model.from_input(data, now=now)
    with pytest.raises(ValidationError) as refused:
        check_prescription(prescription, cat, source="rx.toml")
    assert refused.value.exit_code == ExitCode.UNREADABLE
    assert [e.field for e in refused.value.errors] == ["lines[1].narcotic"]
    assert str(refused.value).startswith("rx.toml: 1 invalid field(s): lines[1].narcotic: ")

    data["lines"][0]["narcotic"] = True
    data["lines"].append(
        {
            "label": "Doliprane 1000 mg",
            "posology": "1 comprimé",
            "duration_days": 5,
            "quantity": 1,
            "cis": DOLIPRANE,
            "cip13": SKENAN_14,
        }
    )
    with pytest.raises(ValidationError) as mismatched:
        check_prescription(model.from_input(data, now=now), cat)
    assert [e.field for e in mismatched.value.errors] == ["lines[2].cip13"]

    data["lines"].pop()
    prescription = model.from_input(data, now=now)
    checked, report = check_prescription(prescription, cat)
    assert [n.field for n in report.filled] == ["lines[1].cis", "lines[1].cip13"]
    assert checked.id == prescription.id and checked.issued_at == prescription.issued_at
    assert (checked.lines[0].cis, checked.lines[0].cip13) == (SKENAN, SKENAN_14)
    signed = signing.sign(checked, demo_credentials)
    assert model.from_payload(model.to_payload(checked)) == checked
    assert signed.prescription.lines[0].cis == SKENAN


def test_open_if_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eprescrire.drugs import open_if_present
    from eprescrire.drugs.interface import CatalogueMissing

    monkeypatch.setenv("EPRESCRIRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EPRESCRIRE_DRUGS", raising=False)
    assert open_if_present() is None
    with pytest.raises(CatalogueMissing):
        open_if_present(tmp_path / "named.sqlite3")
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(tmp_path / "env.sqlite3"))
    with pytest.raises(CatalogueMissing):
        open_if_present()
    monkeypatch.delenv("EPRESCRIRE_DRUGS")
    import_directory(FIXTURE, tmp_path / "home" / "drugs.sqlite3")
    opened = open_if_present()
    assert opened is not None and opened.drug(SKENAN) is not None
    opened.close()
