"""FHIR R4: export checked with fhirclient's R4 (4.0.1) models and against the guides' own
identifier and code systems; import back to the same prescription; errors at FHIR elements."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fhirclient.models import bundle as fhir_bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean, luhn
from stdnum.fr import nir
from test_qr import prescriptions

from conftest import ASSETS, EXAMPLE_FILES, KEYS, load_example
from eprescrire import dispensing as d
from eprescrire import model, rules, signing
from eprescrire.errors import ValidationError
from eprescrire.fhir import codes, export, import_
from eprescrire.keys import kid_of
from eprescrire.ledger import open_ledger
from eprescrire.trust import TrustStore

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
GUIDE_EXAMPLE = ASSETS / "fhir" / "HAS-32-2-Presc-ULTIBRO-BREEZ.json"

Issue = Callable[..., signing.SignedDocument]


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_url(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference)


def entry_index(bundle: dict[str, Any], kind: str, n: int = 0) -> int:
    return [i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == kind][n]


def parse_r4(bundle: dict[str, Any]) -> None:
    """fhirclient's R4 models (generated from FHIR 4.0.1) accept the Bundle, and keep all of
    it: an element they do not know, a wrong type or a missing required one raises."""
    parsed = fhir_bundle.Bundle(bundle, strict=True)
    assert parsed.as_json() == json.loads(json.dumps(bundle))


def without_id(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "id"}


# --------------------------------------------------------------------------------------------
# Export


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_exports_to_a_valid_r4_bundle(issue_document: Issue, example: Path) -> None:
    document = issue_document(example.name, now=NOW)
    bundle = export.document_bundle(document)
    parse_r4(bundle)
    requests = resources(bundle, "MedicationRequest")
    assert len(requests) == len(document.prescription.lines)
    assert {json.dumps(r["groupIdentifier"]) for r in requests} == {
        json.dumps({"system": codes.PRESCRIPTION_ID, "value": document.prescription.id})
    }
    assert export.document_bundle(document) == bundle  # deterministic


def test_identifier_systems_of_the_guide(issue_document: Issue) -> None:
    document = issue_document(now=NOW)
    p = document.prescription
    bundle = export.document_bundle(document)
    (practitioner,) = resources(bundle, "Practitioner")
    idnps = [i for i in practitioner["identifier"] if i["system"] == "urn:oid:1.2.250.1.71.4.2.1"]
    assert len(idnps) == 1 and idnps[0]["value"] == "8" + p.prescriber.rpps
    assert idnps[0]["type"]["coding"][0]["code"] == "IDNPS"
    luhn.validate(idnps[0]["value"][1:])
    (patient,) = resources(bundle, "Patient")
    (ins,) = patient["identifier"]
    assert (ins["system"], ins["value"], ins["use"]) == (
        "urn:oid:1.2.250.1.213.1.4.8",
        p.patient.ins,
        "official",
    )
    assert ins["type"]["coding"][0] == {"system": codes.IDENTIFIER_TYPE, "code": "INS-NIR"}
    nir.validate(ins["value"])
    (organization,) = resources(bundle, "Organization")
    systems = {i["system"]: i["value"] for i in organization["identifier"]}
    assert systems == {
        "urn:oid:1.2.250.1.71.4.2.2": "1" + str(p.prescriber.facility.finess),
        "http://finess.sante.gouv.fr": p.prescriber.facility.finess,
    }
    (role,) = resources(bundle, "PractitionerRole")
    assert by_url(bundle, role["practitioner"]["reference"]) is practitioner
    assert by_url(bundle, role["organization"]["reference"]) is organization
    for request in resources(bundle, "MedicationRequest"):
        assert by_url(bundle, request["requester"]["reference"]) is practitioner
        assert by_url(bundle, request["subject"]["reference"]) is patient


def test_drug_codes_use_the_ansm_code_systems_of_the_guide() -> None:
    # The guide's input/fsh/aliases.fsh: $CIP, $SpecialitePharmaceutique, $UCD.
    assert codes.CIP == "http://data.esante.gouv.fr/ansm/medicament/Presentation"
    assert codes.CIS == "http://data.esante.gouv.fr/ansm/medicament/SpecialitePharmaceutique"
    assert codes.UCD == "http://data.esante.gouv.fr/ansm/medicament/UCD"
    line = model.Line(
        label="METFORMINE 1000 mg",
        posology="1 matin et soir",
        duration_days=30,
        quantity=1,
        cip13="3400935215437",
        cis="60234100",
    )
    concept = export.medication_concept(line)
    assert concept == {
        "coding": [
            {"system": codes.CIP, "code": "3400935215437"},
            {"system": codes.CIS, "code": "60234100"},
        ],
        "text": "METFORMINE 1000 mg",
    }
    ean.validate(concept["coding"][0]["code"])
    bare = export.medication_concept(model.Line("X", "1/j", 1, 1))
    assert bare == {"text": "X"}


def test_line_details_dispense_request_substitution_and_ald(issue_document: Issue) -> None:
    document = issue_document(now=NOW)
    p = document.prescription
    bundle = export.document_bundle(document)
    requests = resources(bundle, "MedicationRequest")
    first, levothyrox, _, paracetamol = requests
    assert first["dosageInstruction"][0]["text"] == p.lines[0].posology
    assert first["dispenseRequest"] == {
        "validityPeriod": {"start": "2026-03-02", "end": "2026-06-02"},
        "numberOfRepeatsAllowed": 2,
        "quantity": {"value": 1, "unit": "boîte de 30"},
        "expectedSupplyDuration": {
            "value": 30,
            "unit": "jour(s)",
            "system": codes.UCUM,
            "code": "d",
        },
    }
    assert first["dispenseRequest"]["validityPeriod"]["end"] == str(
        rules.first_dispensing_deadline(p.issued_at)
    )
    assert first["substitution"] == {"allowedBoolean": True}
    assert levothyrox["substitution"]["allowedBoolean"] is False
    assert levothyrox["substitution"]["reason"]["coding"][0]["code"] == "MTE"
    # ALD lines point to a FR Core Observation ALD (CI-SIS MED-574) true, the others to false.
    ald = by_url(bundle, first["reasonReference"][0]["reference"])
    assert ald["code"]["coding"][0]["system"] == codes.CISIS
    assert ald["code"]["coding"][0]["code"] == "MED-574"
    assert ald["valueBoolean"] is True
    assert by_url(bundle, paracetamol["reasonReference"][0]["reference"])["valueBoolean"] is False
    (group,) = resources(bundle, "RequestGroup")
    assert [a["resource"]["reference"] for a in group["action"]] == [
        e["fullUrl"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]


def test_narcotic_and_fractioning(issue_document: Issue) -> None:
    bundle = export.document_bundle(issue_document("narcotic.toml", now=NOW))
    morphine, macrogol = resources(bundle, "MedicationRequest")
    assert {"url": codes.NARCOTIC, "valueBoolean": True} in morphine["extension"]
    assert all(e["url"] != codes.NARCOTIC for e in macrogol["extension"])
    assert morphine["dispenseRequest"]["dispenseInterval"]["value"] == 7
    assert "reasonReference" not in morphine  # no ALD on this prescription


def test_the_signed_jws_travels_and_verifies(issue_document: Issue, demo_trust: TrustStore) -> None:
    document = issue_document(now=NOW)
    bundle = export.document_bundle(document)
    (provenance,) = resources(bundle, "Provenance")
    assert provenance["signature"][0]["sigFormat"] == "application/jose"
    token, certificates = import_.signature_of(json.loads(json.dumps(bundle)))
    assert token == document.token
    presented = [x509.load_der_x509_certificate(der) for der in certificates]
    verdict = signing.verify_token("bundle", token, demo_trust, NOW, presented)
    assert verdict.status == "valid", verdict.reasons
    # What the signature covers is what the resources say.
    assert verdict.prescription == document.prescription
    imported = model.from_input(import_.read(bundle, now=NOW), now=NOW)
    assert without_id(model.to_payload(imported)) == without_id(
        model.to_payload(verdict.prescription)
    )


# --------------------------------------------------------------------------------------------
# Import


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_export_then_import_gives_the_same_prescription(
    issue_document: Issue, example: Path
) -> None:
    document = issue_document(example.name, now=NOW)
    data = import_.read(export.document_bundle(document), now=NOW)
    again = model.from_input(data, now=NOW)
    assert without_id(model.to_payload(again)) == without_id(
        model.to_payload(document.prescription)
    )
    assert model.signed_bytes(
        model.from_input(data, now=NOW, prescription_id=document.prescription.id)
    ) == model.signed_bytes(document.prescription)


def test_round_trip_through_the_commands(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    rx, fhir, rx2 = tmp_path / "rx.json", tmp_path / "rx.fhir.json", tmp_path / "rx2.json"
    assert (
        run_cli(
            "issue", Path("examples/reference.toml").resolve(), "--key", key_file, "--out", rx
        ).code
        == 0
    )
    exported = run_cli("fhir", "export", rx, "--out", fhir)
    assert exported.code == 0, exported
    assert fhir.stat().st_mode & 0o777 == 0o600
    parse_r4(json.loads(fhir.read_text("utf-8")))
    issued = run_cli("issue", fhir, "--key", key_file, "--out", rx2, "--json")
    assert issued.code == 0, issued
    first = json.loads(rx.read_text("utf-8"))["readable"]
    second = json.loads(rx2.read_text("utf-8"))["readable"]
    assert first["id"] != second["id"]  # a new prescription, with the same content
    assert without_id(first) == without_id(second)
    verified = run_cli("verify", rx2, "--trust", KEYS / "demo-trust", "--json")
    assert verified.json_lines()[0]["status"] == "valid"


def test_the_guides_own_example_names_what_it_lacks() -> None:
    """HAS-32-2-Presc-ULTIBRO-BREEZ (input/fsh/instances), as JSON: its Patient and
    Practitioner are not in it and it has no quantity to dispense."""
    data = json.loads(GUIDE_EXAMPLE.read_text("utf-8"))
    parse_r4(data)
    with pytest.raises(ValidationError) as caught:
        import_.read(data, now=NOW)
    assert [(f.field, f.message) for f in caught.value.errors] == [
        ("Bundle.entry[0].resource.subject.reference", "'Patient/14602' is not in the input"),
        (
            "Bundle.entry[0].resource.requester.reference",
            "'Practitioner/smart-Practitioner-71482713' is not in the input",
        ),
        ("Bundle.entry[0].resource.dispenseRequest.quantity", "is required"),
    ]


def completed_guide_example() -> dict[str, Any]:
    """The guide's example with what a DPI sends beside it: the Patient and Practitioner it
    references (by their ids), the prescriber's role and organisation, a quantity."""
    data = json.loads(GUIDE_EXAMPLE.read_text("utf-8"))
    request = data["entry"][0]["resource"]
    request["dispenseRequest"] = {"quantity": {"value": 1, "unit": "boîte de 30 gélules"}}
    data["entry"] += [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "14602",
                "identifier": [{"system": codes.INS_NIR, "value": "256037511234510"}],
                "name": [{"family": "Durand", "given": ["Louise"]}],
                "gender": "female",
                "birthDate": "1956-03-14",
            }
        },
        {
            "resource": {
                "resourceType": "Practitioner",
                "id": "smart-Practitioner-71482713",
                "identifier": [{"system": codes.IDNATPS, "value": "810003456786"}],
                "name": [{"family": "Martin", "given": ["Claire"], "prefix": ["Dr"]}],
            }
        },
        {
            "resource": {
                "resourceType": "PractitionerRole",
                "id": "role-1",
                "practitioner": {"reference": "Practitioner/smart-Practitioner-71482713"},
                "organization": {"reference": "Organization/cabinet"},
                "specialty": [{"text": "Pneumologie"}],
            }
        },
        {
            "resource": {
                "resourceType": "Organization",
                "id": "cabinet",
                "identifier": [{"system": codes.IDNATST, "value": "1750001232"}],
                "name": "Cabinet médical du Parc",
                "address": [
                    {"line": ["12 rue de la Roquette"], "postalCode": "75011", "city": "Paris"}
                ],
            }
        },
    ]
    return data


def test_the_guides_example_completed_is_issued(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    source, rx = tmp_path / "ultibro.fhir.json", tmp_path / "rx.json"
    data = completed_guide_example()
    parse_r4(data)
    source.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    result = run_cli("issue", source, "--key", key_file, "--out", rx, "--json")
    assert result.code == 0, result
    readable = json.loads(rx.read_text("utf-8"))["readable"]
    assert readable["issued_at"] == "2025-07-23T09:33:00Z"
    assert readable["prescriber"] == {
        "name": "Dr Claire Martin",
        "rpps": "10003456786",
        "specialty": "Pneumologie",
        "facility": {
            "name": "Cabinet médical du Parc",
            "address": "12 rue de la Roquette 75011 Paris",
            "finess": "750001232",
        },
    }
    (line,) = readable["lines"]
    assert line == {
        "label": "ULTIBRO BREEZ.85/43 GELU+INH",  # a UCD code is not a CIP13: label only
        "posology": "1 gélule à administrer par voie inhalée à la même heure chaque jour pendant 1 mois.",
        "duration_days": 30,  # boundsDuration 1 mo
        "quantity": 1,
        "unit": "boîte de 30 gélules",
        "renewals": 0,
        "substitutable": True,
        "ald": False,
        "narcotic": False,
    }


def test_a_list_of_medication_requests_with_contained_parties() -> None:
    bundle = completed_guide_example()
    request = copy.deepcopy(bundle["entry"][0]["resource"])
    patient, practitioner, role, organization = (
        copy.deepcopy(e["resource"]) for e in bundle["entry"][1:]
    )
    for item, name in (
        (patient, "pat"),
        (practitioner, "doc"),
        (role, "role"),
        (organization, "org"),
    ):
        item["id"] = name
    role["practitioner"] = {"reference": "#doc"}
    role["organization"] = {"reference": "#org"}
    request.update(
        contained=[patient, practitioner, role, organization],
        subject={"reference": "#pat"},
        requester={"reference": "#role"},
    )
    second = copy.deepcopy(request)
    second["medicationCodeableConcept"] = {
        "coding": [{"system": codes.CIP, "code": "3400935215437"}],
        "text": "METFORMINE 1000 mg",
    }
    second["dispenseRequest"]["expectedSupplyDuration"] = {
        "value": 4,
        "code": "wk",
        "system": codes.UCUM,
    }
    data = import_.read([request, second], now=NOW)
    assert [line["label"] for line in data["lines"]] == [
        "ULTIBRO BREEZ.85/43 GELU+INH",
        "METFORMINE 1000 mg",
    ]
    assert data["lines"][1]["cip13"] == "3400935215437" and data["lines"][1]["duration_days"] == 28
    assert data["prescriber"]["specialty"] == "Pneumologie"
    one = import_.read(request, now=NOW)
    assert one["patient"]["ins"] == "256037511234510"


def broken(
    document: signing.SignedDocument, change: Callable[[dict[str, Any]], None]
) -> list[tuple[str, str]]:
    bundle = export.document_bundle(document)
    change(bundle)
    with pytest.raises(ValidationError) as caught:
        import_.read(bundle, now=NOW)
    return [(f.field, f.message) for f in caught.value.errors]


def test_every_error_names_the_fhir_element(issue_document: Issue) -> None:
    document = issue_document(now=NOW)
    b = export.document_bundle(document)
    line2 = entry_index(b, "MedicationRequest", 1)
    patient = entry_index(b, "Patient")
    practitioner = entry_index(b, "Practitioner")

    def no_posology(bundle: dict[str, Any]) -> None:
        request = bundle["entry"][line2]["resource"]
        del request["dosageInstruction"][0]["text"]
        request["extension"] = []

    assert broken(document, no_posology) == [
        (
            f"Bundle.entry[{line2}].resource.dosageInstruction[0].text",
            "is required: the posology as text (or the renderedDosageInstruction extension)",
        )
    ]

    def bad_keys(bundle: dict[str, Any]) -> None:
        bundle["entry"][patient]["resource"]["identifier"][0]["value"] = "256037511234511"
        bundle["entry"][practitioner]["resource"]["identifier"] = [
            {"system": codes.IDNATPS, "value": "810003456787"}
        ]
        bundle["entry"][line2]["resource"]["dispenseRequest"]["quantity"]["value"] = 0

    assert broken(document, bad_keys) == [
        (
            f"Bundle.entry[{practitioner}].resource.identifier[0].value",
            "RPPS must be 11 digits with a valid Luhn key",
        ),
        (
            f"Bundle.entry[{patient}].resource.identifier[0].value",
            "INS/NIR must be 15 characters with a valid key (97 - n mod 97)",
        ),
        (
            f"Bundle.entry[{line2}].resource.dispenseRequest.quantity.value",
            "must be between 1 and 999",
        ),
    ]

    def not_rpps(bundle: dict[str, Any]) -> None:
        bundle["entry"][practitioner]["resource"]["identifier"] = [
            {"system": codes.IDNATPS, "value": "0751234567"}  # an ADELI-based IDNatPS
        ]

    assert broken(document, not_rpps) == [
        (
            f"Bundle.entry[{practitioner}].resource.identifier[0].value",
            "this IDNatPS is not an RPPS number (8 + 11 digits)",
        )
    ]


def test_the_narcotic_limits_apply_to_fhir_input(issue_document: Issue) -> None:
    document = issue_document("narcotic.toml", now=NOW)
    b = export.document_bundle(document)
    morphine = entry_index(b, "MedicationRequest", 0)

    def sixty_days(bundle: dict[str, Any]) -> None:
        bundle["entry"][morphine]["resource"]["dispenseRequest"]["expectedSupplyDuration"][
            "value"
        ] = 60

    assert broken(document, sixty_days) == [
        (
            f"Bundle.entry[{morphine}].resource.dispenseRequest.expectedSupplyDuration",
            "a narcotic line is limited to 28 days",
        )
    ]


def test_an_unreadable_organisation_is_reported_once(issue_document: Issue) -> None:
    document = issue_document(now=NOW)
    role = entry_index(export.document_bundle(document), "PractitionerRole")

    def dangling(bundle: dict[str, Any]) -> None:
        bundle["entry"][role]["resource"]["organization"] = {"reference": "Organization/x"}

    assert broken(document, dangling) == [
        (
            f"Bundle.entry[{role}].resource.organization.reference",
            "'Organization/x' is not in the input",
        )
    ]


def test_issue_reports_fhir_paths_and_exit_3(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    source = tmp_path / "guide.json"
    source.write_bytes(GUIDE_EXAMPLE.read_bytes())
    result = run_cli("issue", source, "--key", key_file, "--out", tmp_path / "rx.json", "--json")
    assert result.code == 3
    (summary,) = result.json_lines()
    assert summary["status"] == "invalid"
    assert [e["field"] for e in summary["errors"]] == [
        "Bundle.entry[0].resource.subject.reference",
        "Bundle.entry[0].resource.requester.reference",
        "Bundle.entry[0].resource.dispenseRequest.quantity",
    ]
    assert "Traceback" not in result.stderr
    other = tmp_path / "observation.json"
    other.write_text('{"resourceType": "Observation"}', "utf-8")
    result = run_cli("issue", other, "--key", key_file, "--out", tmp_path / "rx2.json", "--json")
    assert result.code == 3
    assert result.json_lines()[0]["errors"][0]["field"] == "resourceType"


# --------------------------------------------------------------------------------------------
# Dispensings


def test_dispensings_become_fr_core_medication_dispenses(
    issue_document: Issue, tmp_path: Path
) -> None:
    document = issue_document(now=NOW)
    certificate = document.certificates[0]
    presented = d.Presented(document.prescription, document.token, kid_of(certificate), certificate)
    with open_ledger(str(tmp_path / "ledger.db")) as ledger:
        d.dispense(
            ledger,
            presented,
            d.Request("10003456786", line=1, substitute="METFORMINE BIOGARAN 1000 mg"),
            NOW,
        )
        d.dispense(ledger, presented, d.Request("10003456786", line=4, quantity=1), NOW)
        d.dispense(
            ledger,
            presented,
            d.Request("10003456786", line=4, quantity=1, pharmacy="750001232"),
            NOW + dt.timedelta(hours=1),
        )
        d.dispense(ledger, presented, d.Request("10003456786", line=1), NOW + dt.timedelta(days=29))
        history = ledger.history(document.prescription.id).records
        every = list(ledger.records())
    combined = export.document_bundle(document, history)
    parse_r4(combined)
    dispenses = resources(combined, "MedicationDispense")
    assert [(m["type"]["coding"][0]["code"], m["quantity"]["value"]) for m in dispenses] == [
        ("FFC", 1),
        ("FFP", 1),
        ("FFP", 1),
        ("RFC", 1),
    ]
    paracetamol = by_url(combined, dispenses[1]["authorizingPrescription"][0]["reference"])
    assert paracetamol["medicationCodeableConcept"]["text"].startswith("PARACÉTAMOL")
    first = dispenses[1]
    assert first["authorizingPrescription"][0]["identifier"] == {
        "system": codes.PRESCRIPTION_LINE,
        "value": f"{document.prescription.id}/4",
    }
    assert first["whenHandedOver"] == "2026-03-02T09:00:00Z"
    assert first["daysSupply"]["value"] == 5.0 and first["daysSupply"]["code"] == "d"
    assert first["performer"][0]["actor"]["identifier"] == {
        "system": codes.IDNATPS,
        "value": "810003456786",
    }
    assert dispenses[2]["performer"][1]["actor"]["identifier"]["value"] == "750001232"
    assert dispenses[0]["substitution"]["wasSubstituted"] is True
    assert dispenses[0]["medicationCodeableConcept"] == {"text": "METFORMINE BIOGARAN 1000 mg"}
    assert dispenses[1]["substitution"]["wasSubstituted"] is False
    assert all(m["meta"]["profile"] == [codes.FR_CORE_MEDICATION_DISPENSE] for m in dispenses)
    # ``ledger export --format fhir``: the same dispensings, with logical references only.
    alone = export.ledger_bundle(every)
    parse_r4(alone)
    logical = resources(alone, "MedicationDispense")
    assert [m["identifier"] for m in logical] == [m["identifier"] for m in dispenses]
    assert all("reference" not in m["authorizingPrescription"][0] for m in logical)
    assert logical[1]["subject"] == {
        "type": "Patient",
        "identifier": {"system": codes.INS_NIR, "value": document.prescription.patient.ins},
    }


def test_fhir_export_with_a_ledger_and_bad_inputs(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    rx, ledger = tmp_path / "rx.json", tmp_path / "ledger.db"
    assert (
        run_cli(
            "issue", Path("examples/reference.toml").resolve(), "--key", key_file, "--out", rx
        ).code
        == 0
    )
    dispensed = run_cli(
        "dispense",
        rx,
        "--trust",
        KEYS / "demo-trust",
        "--ledger",
        ledger,
        "--line",
        "2",
        "--pharmacist",
        "10003456786",
    )
    assert dispensed.code == 0, dispensed
    result = run_cli("fhir", "export", rx, "--ledger", ledger)
    assert result.code == 0, result
    (bundle,) = result.json_lines()
    assert [m["type"]["coding"][0]["code"] for m in resources(bundle, "MedicationDispense")] == [
        "FFC"
    ]
    missing = run_cli("fhir", "export", tmp_path / "nope.json")
    assert missing.code == 3 and "no such file" in missing.stderr
    forged = json.loads(rx.read_text("utf-8"))
    header, payload, signature = forged["jws"].split(".")
    forged["jws"] = ".".join(
        [header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged), "utf-8")
    assert run_cli("fhir", "export", bad).code == 1
    assert run_cli("fhir", "export", rx, "--out", tmp_path / "a.json").code == 0
    again = run_cli("fhir", "export", rx, "--out", tmp_path / "a.json")
    assert again.code == 3 and "refusing to overwrite" in again.stderr
    assert run_cli("fhir", "export", rx, rx, "--out", tmp_path / "b.json").code == 2
    no_ledger = run_cli("fhir", "export", rx, "--ledger", tmp_path / "none.db")
    assert no_ledger.code == 4


def test_the_cli_loads_no_fhir_code_until_a_fhir_command() -> None:
    code = (
        "import sys, eprescrire.cli, eprescrire.cli._app\n"
        "print([m for m in ('fhirclient', 'fhir', 'eprescrire.fhir') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_signature_of_rejects_a_bundle_without_one() -> None:
    with pytest.raises(ValidationError):
        import_.signature_of({"resourceType": "Bundle", "entry": []})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prescription=prescriptions())
def test_any_prescription_survives_export_and_import(prescription: model.Prescription) -> None:
    bundle = export.prescription_bundle(prescription, "header.payload.signature", [])
    parse_r4(bundle)
    data = import_.read(json.loads(json.dumps(bundle)), now=prescription.issued_at)
    again = model.from_input(data, now=prescription.issued_at, prescription_id=prescription.id)
    assert model.signed_bytes(again) == model.signed_bytes(prescription)


def test_a_cancelled_line_or_another_prescription_is_refused(issue_document: Issue) -> None:
    document = issue_document(now=NOW)
    b = export.document_bundle(document)
    first, second = entry_index(b, "MedicationRequest", 0), entry_index(b, "MedicationRequest", 1)

    def mixed(bundle: dict[str, Any]) -> None:
        bundle["entry"][first]["resource"]["status"] = "cancelled"
        bundle["entry"][second]["resource"]["groupIdentifier"]["value"] = "OTHER"

    assert broken(document, mixed) == [
        (
            f"Bundle.entry[{second}].resource.groupIdentifier",
            "the MedicationRequests belong to different prescriptions (groupIdentifier)",
        ),
        (
            f"Bundle.entry[{first}].resource.status",
            "only an active or draft request is a line to sign",
        ),
    ]


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += _paths(item, (*here, n))
    return found


_REFERENCE_BUNDLE: dict[str, Any] = {}


def reference_bundle(credentials: Any) -> dict[str, Any]:
    if not _REFERENCE_BUNDLE:
        p = model.from_input(load_example("reference.toml"), now=NOW)
        _REFERENCE_BUNDLE.update(export.document_bundle(signing.sign(p, credentials)))
    return copy.deepcopy(_REFERENCE_BUNDLE)


@settings(max_examples=150, deadline=None)
@given(
    where=st.integers(min_value=0),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    ),
)
def test_any_element_of_the_wrong_type_is_an_input_error(
    demo_credentials: Any, where: int, value: Any
) -> None:
    bundle = reference_bundle(demo_credentials)
    paths = [p for p in _paths(bundle) if p]
    path = paths[where % len(paths)]
    target = bundle
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    try:
        import_.read(bundle, now=NOW)
    except ValidationError as e:
        assert e.errors and all(f.field for f in e.errors)


def test_the_ledger_sets_the_requests_status(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    rx, ledger = tmp_path / "rx.json", tmp_path / "ledger.db"
    assert (
        run_cli(
            "issue", Path("examples/reference.toml").resolve(), "--key", key_file, "--out", rx
        ).code
        == 0
    )
    # Line 4 (no renewal) dispensed in full: completed; the others still active.
    assert (
        run_cli(
            "dispense",
            rx,
            "--trust",
            KEYS / "demo-trust",
            "--ledger",
            ledger,
            "--line",
            "4",
            "--pharmacist",
            "10003456786",
        ).code
        == 0
    )
    (bundle,) = run_cli("fhir", "export", rx, "--ledger", ledger).json_lines()
    assert [r["status"] for r in resources(bundle, "MedicationRequest")] == ["active"] * 3 + [
        "completed"
    ]
    assert resources(bundle, "RequestGroup")[0]["status"] == "active"
    cancelled = run_cli(
        "cancel", rx, "--key", key_file, "--ledger", ledger, "--reason", "erreur de posologie"
    )
    assert cancelled.code == 0, cancelled
    (bundle,) = run_cli("fhir", "export", rx, "--ledger", ledger).json_lines()
    requests = resources(bundle, "MedicationRequest")
    assert {r["status"] for r in requests} == {"cancelled"}
    assert "erreur de posologie" in requests[0]["statusReason"]["text"]
    assert resources(bundle, "RequestGroup")[0]["status"] == "revoked"
    parse_r4(bundle)
    with pytest.raises(ValidationError) as caught:  # a cancelled prescription is not re-issued
        import_.read(bundle, now=dt.datetime.now(dt.UTC))
    assert {f.message for f in caught.value.errors} == {
        "only an active or draft request is a line to sign"
    }


def test_issue_accepts_an_array_of_medication_requests(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    bundle = completed_guide_example()
    request = copy.deepcopy(bundle["entry"][0]["resource"])
    request["contained"] = [copy.deepcopy(e["resource"]) for e in bundle["entry"][1:]]
    ids = {
        "Patient": "pat",
        "Practitioner": "doc",
        "PractitionerRole": "role",
        "Organization": "org",
    }
    for item in request["contained"]:
        item["id"] = ids[item["resourceType"]]
    request["contained"][2].update(
        practitioner={"reference": "#doc"}, organization={"reference": "#org"}
    )
    request.update(subject={"reference": "#pat"}, requester={"reference": "#doc"})
    source = tmp_path / "dpi.json"
    source.write_text(json.dumps([request]), "utf-8")
    result = run_cli("issue", source, "--key", key_file, "--out", tmp_path / "rx.json", "--json")
    assert result.code == 0, result
    assert result.json_lines()[0]["status"] == "issued"


def test_issue_reads_fhir_bundles_as_ndjson_on_stdin(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path
) -> None:
    good = json.dumps(completed_guide_example(), ensure_ascii=False)
    bad = GUIDE_EXAMPLE.read_text("utf-8").replace("\n", "")
    result = run_cli(
        "issue",
        "-",
        "--key",
        key_file,
        "--out-dir",
        tmp_path / "out",
        "--json",
        stdin=f"{good}\n{bad}\n".encode(),
    )
    assert result.code == 3
    first, second = result.json_lines()
    assert (first["input"], first["status"]) == ("-:1", "issued")
    assert (second["input"], second["status"]) == ("-:2", "invalid")
    assert second["errors"][0]["field"] == "Bundle.entry[0].resource.subject.reference"
