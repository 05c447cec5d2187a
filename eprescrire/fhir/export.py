"""Signed prescriptions and their dispensings -> FHIR R4 (4.0.1) Bundles.

One prescription becomes one ``collection`` Bundle following the ANS *ePrescription* guide:

* one FRMedicationRequest per line, all sharing ``groupIdentifier`` = the prescription
  identifier, tied together by an FRRequestGroupForPrescription (which also carries the notes);
* the requester a FR Core Practitioner identified by RPPS (IDNatPS ``8`` + RPPS), working in a
  FR Core Organization (FINESS) through a PractitionerRole (which carries the specialty);
* the subject a FR Core Patient with its INS-NIR when the prescription has one;
* ALD lines point (``reasonReference``) to a FR Core Observation ALD (CI-SIS ``MED-574``);
* the signed JWS in a Provenance (``signature.data``, ``sigFormat`` ``application/jose``)
  targeting every resource made from it, with the signer's certificate chain as Binary
  resources: a receiver checks the JWS with the certificate, and compares its payload with the
  resources (``eprescrire.fhir.import_`` does both).

Dispensings from the ledger become FR Core MedicationDispense resources.

Resources get deterministic ``urn:uuid:`` names (UUID 5 of the prescription identifier and
their role), so that the same prescription always exports to the same bytes and a dispensing
exported on its own points at the same MedicationRequest name.

This module is plain dictionaries: it needs no FHIR library at run time. The tests check what
it writes with fhirclient's R4 models (generated from FHIR 4.0.1 itself, the version the guide
is written for; fhir.resources ships R4B and R5 models only).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eprescrire import model, rules
from eprescrire.fhir import codes

_NAMESPACE = uuid.UUID("9a3c2f64-5b1e-4c8e-9a51-0e6f1b2d7c40")


def urn(prescription_id: str, role: str) -> str:
    """The Bundle name (fullUrl) of one resource made from a prescription."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{prescription_id}/{role}')}"


def line_identifier(prescription_id: str, number: int) -> dict[str, str]:
    return {"system": codes.PRESCRIPTION_LINE, "value": f"{prescription_id}/{number}"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    item = {"system": system, "code": code}
    if display is not None:
        item["display"] = display
    return item


def _days(value: float | int) -> dict[str, Any]:
    return {"value": value, "unit": "jour(s)", "system": codes.UCUM, "code": "d"}


def _identifier(type_code: str, system: str, value: str, use: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if use is not None:
        item["use"] = use
    item.update(
        type={"coding": [_coding(codes.IDENTIFIER_TYPE, type_code)]}, system=system, value=value
    )
    return item


def medication_concept(line: model.Line) -> dict[str, Any]:
    """The drug as the guide codes it: ANSM CIP13 / CIS codes when known, the label as text."""
    coding = []
    if line.cip13:
        coding.append(_coding(codes.CIP, line.cip13))
    if line.cis:
        coding.append(_coding(codes.CIS, line.cis))
    concept: dict[str, Any] = {"text": line.label}
    if coding:
        concept = {"coding": coding, **concept}
    return concept


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource}


# --------------------------------------------------------------------------------------------
# Parties


def _patient(p: model.Prescription) -> dict[str, Any]:
    patient = p.patient
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": [codes.FR_CORE_PATIENT]},
    }
    if patient.ins:
        resource["identifier"] = [
            _identifier("INS-NIR", codes.INS_NIR, patient.ins, use="official")
        ]
    resource["name"] = [
        {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
    ]
    if patient.sex is not None:
        resource["gender"] = "female" if patient.sex == "F" else "male"
    resource["birthDate"] = patient.birth_date.isoformat()
    return resource


def _practitioner(p: model.Prescription) -> dict[str, Any]:
    rpps = p.prescriber.rpps
    return {
        "resourceType": "Practitioner",
        "meta": {"profile": [codes.FR_CORE_PRACTITIONER]},
        "identifier": [
            _identifier("IDNPS", codes.IDNATPS, codes.IDNATPS_RPPS_PREFIX + rpps),
            _identifier("RPPS", codes.RPPS, rpps),
        ],
        "name": [{"text": p.prescriber.name}],
    }


def _organization(p: model.Prescription) -> dict[str, Any]:
    facility = p.prescriber.facility
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "meta": {"profile": [codes.FR_CORE_ORGANIZATION]},
    }
    if facility.finess:
        resource["identifier"] = [
            _identifier("IDNST", codes.IDNATST, codes.IDNATST_FINESS_PREFIX + facility.finess),
            _identifier("FINEG", codes.FINESS, facility.finess),
        ]
    resource["name"] = facility.name
    if facility.phone:
        resource["telecom"] = [{"system": "phone", "value": facility.phone, "use": "work"}]
    resource["address"] = [{"use": "work", "text": facility.address}]
    return resource


def _role(p: model.Prescription) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "meta": {"profile": [codes.FR_CORE_PRACTITIONER_ROLE]},
        "practitioner": {"reference": urn(p.id, "practitioner")},
        "organization": {"reference": urn(p.id, "organization")},
        "specialty": [{"text": p.prescriber.specialty}],
    }


def _ald_observation(p: model.Prescription, value: bool) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"profile": [codes.FR_CORE_OBSERVATION_ALD]},
        "status": "final",
        "code": {"coding": [_coding(codes.CISIS, codes.ALD_CODE, codes.ALD_DISPLAY)]},
        "subject": {"reference": urn(p.id, "patient")},
        "effectiveDateTime": model.format_timestamp(p.issued_at),
        "valueBoolean": value,
    }


def _weight_observation(p: model.Prescription) -> dict[str, Any]:
    assert p.patient.weight_kg is not None
    return {
        "resourceType": "Observation",
        "meta": {"profile": [codes.BODY_WEIGHT_PROFILE]},
        "status": "final",
        "category": [
            {"coding": [_coding(codes.OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")]}
        ],
        "code": {"coding": [_coding(codes.LOINC, codes.BODY_WEIGHT, "Body weight")]},
        "subject": {"reference": urn(p.id, "patient")},
        "effectiveDateTime": model.format_timestamp(p.issued_at),
        "valueQuantity": {
            "value": p.patient.weight_kg,
            "unit": "kg",
            "system": codes.UCUM,
            "code": "kg",
        },
    }


# --------------------------------------------------------------------------------------------
# Lines


def _substitution(line: model.Line) -> dict[str, Any]:
    if line.substitutable:
        return {"allowedBoolean": True}
    assert line.ns_reason is not None
    display = codes.NS_REASON_DISPLAY[line.ns_reason]
    return {
        "allowedBoolean": False,
        "reason": {
            "coding": [_coding(codes.NS_REASON, line.ns_reason, display)],
            "text": f"Non substituable ({line.ns_reason}) : {display}",
        },
    }


def _statuses(
    p: model.Prescription, certificates: Sequence[x509.Certificate], records: Sequence[Any]
) -> tuple[dict[str, Any] | None, frozenset[int]]:
    """What the ledger says of the prescription: its cancellation (by its own signer) and the
    lines dispensed in full. Nothing without records."""
    mine = tuple(r for r in records if r.prescription_id == p.id)
    if not mine or not certificates:
        return None, frozenset()
    from eprescrire.dispensing import state_of
    from eprescrire.keys import kid_of
    from eprescrire.ledger import History

    state = state_of(p, kid_of(certificates[0]), History(p.id, mine))
    return state.cancellation, frozenset(ls.number for ls in state.lines if ls.remaining == 0)


def _medication_request(
    p: model.Prescription,
    number: int,
    line: model.Line,
    cancellation: dict[str, Any] | None = None,
    completed: bool = False,
) -> dict[str, Any]:
    issued_day = rules.local_date(p.issued_at)
    extensions: list[dict[str, Any]] = [
        {"url": codes.RENDERED_DOSAGE, "valueMarkdown": line.posology},
    ]
    if line.narcotic:
        extensions.append({"url": codes.NARCOTIC, "valueBoolean": True})
    if line.pack_months is not None:
        extensions.append({"url": codes.PACK_MONTHS, "valueInteger": line.pack_months})
    if line.contraceptive:
        extensions.append({"url": codes.CONTRACEPTIVE, "valueBoolean": True})
    if line.units_per_box is not None:
        extensions.append({"url": codes.UNITS_PER_BOX, "valueInteger": line.units_per_box})
    quantity: dict[str, Any] = {"value": line.quantity}
    if line.unit:
        quantity["unit"] = line.unit
    dispense: dict[str, Any] = {
        "validityPeriod": {
            "start": issued_day.isoformat(),
            "end": rules.first_dispensing_deadline(p.issued_at).isoformat(),
        },
        "numberOfRepeatsAllowed": line.renewals,
        "quantity": quantity,
        "expectedSupplyDuration": _days(line.duration_days),
    }
    if line.days_per_dispensing is not None:
        dispense["dispenseInterval"] = _days(line.days_per_dispensing)
        dispense["initialFill"] = {"duration": _days(line.days_per_dispensing)}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "meta": {"profile": [codes.FR_MEDICATION_REQUEST]},
        "extension": extensions,
        "identifier": [line_identifier(p.id, number)],
        "status": "cancelled" if cancellation else "completed" if completed else "active",
    }
    if cancellation:
        resource["statusReason"] = {
            "text": f"Annulée par le prescripteur : {cancellation['reason']}"
        }
    resource |= {
        "intent": "order",
        "medicationCodeableConcept": medication_concept(line),
        "subject": {"reference": urn(p.id, "patient")},
        "authoredOn": model.format_timestamp(p.issued_at),
        "requester": {"reference": urn(p.id, "practitioner")},
    }
    if p.has_ald:
        # A bizone ordonnance: every line says on which side of the ALD line it stands.
        resource["reasonReference"] = [{"reference": urn(p.id, f"ald-{str(line.ald).lower()}")}]
    resource["groupIdentifier"] = {"system": codes.PRESCRIPTION_ID, "value": p.id}
    if p.patient.weight_kg is not None:
        resource["supportingInformation"] = [{"reference": urn(p.id, "weight")}]
    resource["note"] = [{"text": f"Prescription textuelle: {line.label} : {line.posology}"}]
    resource["dosageInstruction"] = [
        {
            "sequence": 1,
            "text": line.posology,
            "timing": {"repeat": {"boundsDuration": _days(line.duration_days)}},
        }
    ]
    resource["dispenseRequest"] = dispense
    resource["substitution"] = _substitution(line)
    return resource


def _request_group(p: model.Prescription, status: str = "active") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "meta": {"profile": [codes.FR_REQUEST_GROUP]},
        "extension": [{"url": codes.SHARE_OPPOSITION, "valueBoolean": p.share_opposition}],
        "identifier": [{"system": codes.PRESCRIPTION_ID, "value": p.id}],
        "groupIdentifier": {"system": codes.PRESCRIPTION_ID, "value": p.id},
        "status": status,
        "intent": "order",
        "subject": {"reference": urn(p.id, "patient")},
        "authoredOn": model.format_timestamp(p.issued_at),
        "author": {"reference": urn(p.id, "practitioner")},
    }
    if p.notes:
        resource["note"] = [{"text": p.notes}]
    resource["action"] = [
        {"resource": {"reference": urn(p.id, f"line-{n}")}} for n in range(1, len(p.lines) + 1)
    ]
    return resource


def _provenance(
    p: model.Prescription, token: str, certificates: Sequence[x509.Certificate]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The signature as a Provenance, and the certificate chain as Binary resources."""
    binaries = []
    for n, certificate in enumerate(certificates):
        der = certificate.public_bytes(serialization.Encoding.DER)
        binaries.append(
            _entry(
                urn(p.id, f"certificate-{n}"),
                {
                    "resourceType": "Binary",
                    "contentType": "application/pkix-cert",
                    "data": base64.b64encode(der).decode("ascii"),
                },
            )
        )
    targets = [urn(p.id, "request-group")] + [
        urn(p.id, f"line-{n}") for n in range(1, len(p.lines) + 1)
    ]
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": target} for target in targets],
        "recorded": model.format_timestamp(p.issued_at),
        "agent": [
            {
                "type": {
                    "coding": [
                        _coding(
                            "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "author",
                            "Author",
                        )
                    ]
                },
                "who": {"reference": urn(p.id, "practitioner")},
            }
        ],
        "signature": [
            {
                "type": [
                    _coding(codes.SIGNATURE_TYPE, codes.AUTHOR_SIGNATURE, "Author's Signature")
                ],
                "when": model.format_timestamp(p.issued_at),
                "who": {"reference": urn(p.id, "practitioner")},
                "targetFormat": "application/json",
                "sigFormat": "application/jose",
                # The compact JWS itself (RFC 7515): its payload is the signed prescription.
                "data": base64.b64encode(token.encode("ascii")).decode("ascii"),
            }
        ],
    }
    if binaries:  # FHIR has no empty arrays
        provenance["entity"] = [
            {"role": "source", "what": {"reference": entry["fullUrl"]}} for entry in binaries
        ]
    return binaries, provenance


# --------------------------------------------------------------------------------------------
# Dispensings


def _dispense_type(line: model.Line, body: Mapping[str, Any]) -> dict[str, Any]:
    fill = "first" if int(body["round"]) == 0 else "refill"
    extent = "complete" if int(body["quantity"]) >= line.units_per_dispensing else "partial"
    code, display = codes.DISPENSE_TYPES[(fill, extent)]
    return {"coding": [_coding(codes.ACT_CODE, code, display)]}


def medication_dispense(
    p: model.Prescription, body: Mapping[str, Any], record_hash: str, *, in_bundle: bool
) -> dict[str, Any]:
    """One ledger dispensing record as a FR Core MedicationDispense.

    ``in_bundle``: the prescription's own resources are in the same Bundle, so references point
    at them; otherwise references are logical (by identifier) only.
    """
    number = int(body["line"])
    line = p.lines[number - 1]
    medication = medication_concept(line)
    if body.get("substituted"):
        generic = str(body.get("generic") or "")
        medication = {"text": generic or "générique"}
        if len(generic) == 13 and generic.isdigit():
            medication = {"coding": [_coding(codes.CIP, generic)], "text": generic}
    prescription_ref: dict[str, Any] = {
        "type": "MedicationRequest",
        "identifier": line_identifier(p.id, number),
    }
    if in_bundle:
        prescription_ref = {"reference": urn(p.id, f"line-{number}"), **prescription_ref}
    performers = [
        {
            "actor": {
                "type": "Practitioner",
                "identifier": {
                    "system": codes.IDNATPS,
                    "value": codes.IDNATPS_RPPS_PREFIX + str(body["pharmacist"]),
                },
            }
        }
    ]
    if body.get("pharmacy"):
        performers.append(
            {
                "actor": {
                    "type": "Organization",
                    "identifier": {"system": codes.FINESS, "value": str(body["pharmacy"])},
                }
            }
        )
    quantity: dict[str, Any] = {"value": int(body["quantity"])}
    if line.units_per_box is not None:
        quantity["unit"] = "unités"  # the ledger counts this line in units, not boxes
    elif line.unit:
        quantity["unit"] = line.unit
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "meta": {"profile": [codes.FR_CORE_MEDICATION_DISPENSE]},
        "identifier": [{"system": codes.LEDGER_RECORD, "value": record_hash}],
        "status": "completed",
        "medicationCodeableConcept": medication,
    }
    if in_bundle:
        resource["subject"] = {"reference": urn(p.id, "patient")}
    elif p.patient.ins:
        resource["subject"] = {
            "type": "Patient",
            "identifier": {"system": codes.INS_NIR, "value": p.patient.ins},
        }
    days = body.get("days")
    resource.update(
        performer=performers,
        authorizingPrescription=[prescription_ref],
        type=_dispense_type(line, body),
        quantity=quantity,
    )
    if isinstance(days, (int, float)) and not isinstance(days, bool):
        resource["daysSupply"] = _days(days)
    # A hand-over recorded later keeps its stated time (the ledger keeps the recording time).
    resource["whenHandedOver"] = str(body.get("handed_over") or body["at"])
    resource["substitution"] = {
        "wasSubstituted": bool(body.get("substituted")),
        "type": {
            "coding": [
                _coding(codes.SUBSTITUTION, "G", "Substitution autorisée par un produit générique")
            ]
        },
    }
    return resource


def _dispense_entries(
    p: model.Prescription, records: Iterable[Any], *, in_bundle: bool
) -> list[dict[str, Any]]:
    entries = []
    for record in records:
        if record.kind != "dispensing" or record.prescription_id != p.id:
            continue
        if not 1 <= int(record.body["line"]) <= len(p.lines):
            continue
        entries.append(
            _entry(
                urn(p.id, f"dispense-{record.hash}"),
                medication_dispense(p, record.body, record.hash, in_bundle=in_bundle),
            )
        )
    return entries


# --------------------------------------------------------------------------------------------
# Bundles


def prescription_bundle(
    prescription: model.Prescription,
    token: str,
    certificates: Sequence[x509.Certificate],
    dispensings: Iterable[Any] = (),
) -> dict[str, Any]:
    """A signed prescription (and, optionally, its ledger dispensing records) as one Bundle.

    ``token`` is the compact JWS the prescription was decoded from; ``certificates`` the signer
    certificate first, then its chain; ``dispensings`` ledger :class:`~eprescrire.ledger.Record`
    objects of this prescription: its dispensings become MedicationDispense resources, and a
    cancellation (by the signer) or lines dispensed in full set the requests' ``status``.
    """
    p = prescription
    records = list(dispensings)
    cancellation, completed = _statuses(p, certificates, records)
    group_status = (
        "revoked" if cancellation else "completed" if len(completed) == len(p.lines) else "active"
    )
    entries = [_entry(urn(p.id, "request-group"), _request_group(p, group_status))]
    entries += [
        _entry(
            urn(p.id, f"line-{n}"), _medication_request(p, n, line, cancellation, n in completed)
        )
        for n, line in enumerate(p.lines, start=1)
    ]
    entries += [
        _entry(urn(p.id, "patient"), _patient(p)),
        _entry(urn(p.id, "practitioner"), _practitioner(p)),
        _entry(urn(p.id, "practitioner-role"), _role(p)),
        _entry(urn(p.id, "organization"), _organization(p)),
    ]
    if p.has_ald:
        entries.append(_entry(urn(p.id, "ald-true"), _ald_observation(p, True)))
        if not all(line.ald for line in p.lines):
            entries.append(_entry(urn(p.id, "ald-false"), _ald_observation(p, False)))
    if p.patient.weight_kg is not None:
        entries.append(_entry(urn(p.id, "weight"), _weight_observation(p)))
    binaries, provenance = _provenance(p, token, certificates)
    entries.append(_entry(urn(p.id, "provenance"), provenance))
    entries += binaries
    entries += _dispense_entries(p, records, in_bundle=True)
    return {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": model.format_timestamp(p.issued_at)},
        "identifier": {"system": codes.PRESCRIPTION_ID, "value": p.id},
        "type": "collection",
        "timestamp": model.format_timestamp(p.issued_at),
        "entry": entries,
    }


def document_bundle(document: Any, dispensings: Iterable[Any] = ()) -> dict[str, Any]:
    """A :class:`~eprescrire.signing.SignedDocument` as one Bundle (see prescription_bundle)."""
    return prescription_bundle(
        document.prescription, document.token, document.certificates, dispensings
    )


def dispensings_bundle(
    records: Iterable[Any], prescriptions: Mapping[str, model.Prescription]
) -> dict[str, Any]:
    """Ledger dispensing records as a Bundle of FR Core MedicationDispense resources.

    ``prescriptions`` maps a prescription identifier to its (verified) prescription; a record
    of a prescription not in it is skipped. References to the MedicationRequest and the Patient
    are logical (by identifier): the prescription's own resources are not in this Bundle.
    """
    entries: list[dict[str, Any]] = []
    for record in records:
        p = prescriptions.get(record.prescription_id)
        if p is None:
            continue
        entries += _dispense_entries(p, [record], in_bundle=False)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def prescriptions_from_records(records: Iterable[Any]) -> dict[str, model.Prescription]:
    """The prescriptions the ledger recorded (kind ``prescription``), decoded from their JWS
    and re-checked against the certificate stored with them; those that do not check are left
    out (their dispensings are then not exported)."""
    from eprescrire.dispensing import recorded_prescription
    from eprescrire.ledger import History

    found: dict[str, model.Prescription] = {}
    for record in records:
        if record.kind != "prescription" or record.prescription_id in found:
            continue
        presented, _why = recorded_prescription(History(record.prescription_id, (record,)))
        if presented is not None:
            found[record.prescription_id] = presented.prescription
    return found


def ledger_bundle(records: Iterable[Any]) -> dict[str, Any]:
    """Every dispensing of a ledger export as one Bundle (``ledger export --format fhir``)."""
    items = list(records)
    return dispensings_bundle(items, prescriptions_from_records(items))
