"""FHIR R4 input -> the prescription input of ``issue``, checked by the same rules.

Accepted: a Bundle (any type: a DPI's ``collection``, ``document`` or ``searchset``, or what
``fhir export`` writes), one MedicationRequest, or a JSON array of MedicationRequests, all of
one prescription. References are resolved by ``fullUrl``, by ``Type/id`` against the Bundle's
entries, and by ``#id`` against the referring resource's ``contained`` resources.

Every problem names the FHIR element, e.g. ``Bundle.entry[2].resource.dosageInstruction[0].text``:
structural ones found while reading, and every rule of :mod:`eprescrire.model` (Luhn keys, INS
key, narcotic limits...) translated back from the model's field to the element it came from.

Plain dictionaries again: no FHIR library at run time.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eprescrire import model, rules
from eprescrire.errors import FieldError, ValidationError
from eprescrire.fhir import codes

_ISSUABLE = ("active", "draft")
_INTENTS = ("order", "original-order", "plan", "proposal")
_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "mo": 30, "month": 30}


@dataclass
class _Reader:
    """Walks the FHIR input, collecting errors by FHIR path and where each input field came from."""

    errors: list[FieldError] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    by_url: dict[str, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    containers: dict[int, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def came_from(self, key: str, path: str) -> None:
        self.origins[key] = path

    def resolve(
        self,
        ref: Any,
        path: str,
        holder: tuple[str, Mapping[str, Any]],
        kinds: tuple[str, ...],
        *,
        optional: bool = False,
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The resource a Reference at ``path`` points to, with its own path; None (and an
        error) when it cannot be found or is of another type. An ``optional`` reference (to
        supporting information the input need not carry) that is not there is no error."""
        if optional and not (isinstance(ref, Mapping) and isinstance(ref.get("reference"), str)):
            return None
        if not isinstance(ref, Mapping) or not isinstance(ref.get("reference"), str):
            self.fail(path, f"must be a reference to a {' or '.join(kinds)}")
            return None
        target = ref["reference"]
        found: tuple[str, Mapping[str, Any]] | None = None
        if target.startswith("#"):
            # Contained resources refer to each other through their container.
            holder_path, resource = self.containers.get(id(holder[1]), holder)
            for n, item in enumerate(resource.get("contained") or []):
                if isinstance(item, Mapping) and item.get("id") == target[1:]:
                    found = (f"{holder_path}.contained[{n}]", item)
                    self.containers[id(item)] = (holder_path, resource)
        else:
            found = self.by_url.get(target)
        if found is None:
            if optional:
                return None
            self.fail(f"{path}.reference", f"{target!r} is not in the input")
            return None
        if found[1].get("resourceType") not in kinds:
            if optional:
                return None
            self.fail(f"{path}.reference", f"must point to a {' or '.join(kinds)}")
            return None
        return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _index(r: _Reader, resources: list[tuple[str, Mapping[str, Any], str | None]]) -> None:
    for path, resource, full_url in resources:
        kind, rid = resource.get("resourceType"), resource.get("id")
        if full_url:
            r.by_url[full_url] = (path, resource)
        if isinstance(kind, str) and isinstance(rid, str):
            r.by_url.setdefault(f"{kind}/{rid}", (path, resource))


def _duration_days(r: _Reader, value: Any, path: str) -> int | None:
    if not isinstance(value, Mapping):
        return None
    unit = value.get("code") or value.get("unit")
    amount = value.get("value")
    if not isinstance(unit, str) or unit not in _UNIT_DAYS:
        r.fail(f"{path}.code", "must be a duration in d, wk or mo (UCUM)")
        return None
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount != int(amount):
        r.fail(f"{path}.value", "must be a whole number")
        return None
    return int(amount) * _UNIT_DAYS[str(unit)]


def _coded(concept: Any, system: str) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and coding.get("system") == system:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _extension(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for item in resource.get("extension") or []:
        if isinstance(item, Mapping) and item.get("url") == url:
            return item
    return None


# --------------------------------------------------------------------------------------------
# Parties


def _patient(r: _Reader, found: tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    path, patient = found
    data: dict[str, Any] = {}
    names = patient.get("name") or []
    chosen = next(
        (n for n in names if isinstance(n, Mapping) and n.get("use") == "official"),
        names[0] if names else None,
    )
    n = names.index(chosen) if chosen is not None else 0
    if not isinstance(chosen, Mapping):
        r.fail(f"{path}.name", "is required: the patient's family and given names")
    else:
        data["family_name"] = chosen.get("family")
        r.came_from("patient.family_name", f"{path}.name[{n}].family")
        given = chosen.get("given") or []
        data["given_name"] = given[0] if isinstance(given, list) and given else None
        r.came_from("patient.given_name", f"{path}.name[{n}].given[0]")
    data["birth_date"] = patient.get("birthDate")
    r.came_from("patient.birth_date", f"{path}.birthDate")
    gender = patient.get("gender")
    if gender in ("female", "male"):
        data["sex"] = "F" if gender == "female" else "M"
        r.came_from("patient.sex", f"{path}.gender")
    for k, identifier in enumerate(patient.get("identifier") or []):
        if isinstance(identifier, Mapping) and identifier.get("system") == codes.INS_NIR:
            data["ins"] = identifier.get("value")
            r.came_from("patient.ins", f"{path}.identifier[{k}].value")
            break
    return {k: v for k, v in data.items() if v is not None}


def _rpps(r: _Reader, path: str, practitioner: Mapping[str, Any]) -> str | None:
    for k, identifier in enumerate(practitioner.get("identifier") or []):
        if not isinstance(identifier, Mapping):
            continue
        value, system = identifier.get("value"), identifier.get("system")
        where = f"{path}.identifier[{k}].value"
        if system == codes.IDNATPS and isinstance(value, str):
            if not value.startswith(codes.IDNATPS_RPPS_PREFIX):
                r.came_from("prescriber.rpps", where)
                r.fail(where, "this IDNatPS is not an RPPS number (8 + 11 digits)")
                return None
            r.came_from("prescriber.rpps", where)
            return value[1:]
        if system in (codes.RPPS, "http://rpps.fr") and isinstance(value, str):
            r.came_from("prescriber.rpps", where)
            return value
    r.came_from("prescriber.rpps", f"{path}.identifier")
    r.fail(
        f"{path}.identifier",
        f"the prescriber needs an RPPS: an IDNatPS ({codes.IDNATPS}) of 8 + RPPS",
    )
    return None


def _name(practitioner: Mapping[str, Any]) -> str | None:
    for name in practitioner.get("name") or []:
        if not isinstance(name, Mapping):
            continue
        if _text(name.get("text")):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family")]
        joined = " ".join(p for p in parts if isinstance(p, str) and p.strip())
        if joined:
            return joined
    return None


def _organization(r: _Reader, found: tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    path, org = found
    data: dict[str, Any] = {"name": org.get("name")}
    r.came_from("prescriber.facility.name", f"{path}.name")
    r.came_from("prescriber.facility", path)
    for k, identifier in enumerate(org.get("identifier") or []):
        if not isinstance(identifier, Mapping) or not isinstance(identifier.get("value"), str):
            continue
        value, where = identifier["value"], f"{path}.identifier[{k}].value"
        if identifier.get("system") == codes.FINESS:
            data["finess"] = value
            r.came_from("prescriber.facility.finess", where)
            break
        if identifier.get("system") == codes.IDNATST and value.startswith(
            codes.IDNATST_FINESS_PREFIX
        ):
            data["finess"] = value[1:]
            r.came_from("prescriber.facility.finess", where)
    for k, address in enumerate(org.get("address") or []):
        if not isinstance(address, Mapping):
            continue
        text = _text(address.get("text"))
        if text is None:
            parts = [*(address.get("line") or []), address.get("postalCode"), address.get("city")]
            text = " ".join(p for p in parts if isinstance(p, str) and p.strip()) or None
        data["address"] = text
        r.came_from("prescriber.facility.address", f"{path}.address[{k}]")
        break
    else:
        r.came_from("prescriber.facility.address", f"{path}.address")
    for k, telecom in enumerate(org.get("telecom") or []):
        if isinstance(telecom, Mapping) and telecom.get("system") == "phone":
            data["phone"] = telecom.get("value")
            r.came_from("prescriber.facility.phone", f"{path}.telecom[{k}].value")
            break
    return {k: v for k, v in data.items() if v is not None}


def _prescriber(
    r: _Reader, request: tuple[str, Mapping[str, Any]], roles: list[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any] | None:
    path, resource = request
    found = r.resolve(
        resource.get("requester"),
        f"{path}.requester",
        request,
        ("Practitioner", "PractitionerRole"),
    )
    if found is None:
        return None
    role: tuple[str, Mapping[str, Any]] | None = None
    if found[1].get("resourceType") == "PractitionerRole":
        role = found
        found = r.resolve(
            role[1].get("practitioner"), f"{role[0]}.practitioner", role, ("Practitioner",)
        )
        if found is None:
            return None
    else:
        target = resource["requester"]["reference"]
        full = [url for url, item in r.by_url.items() if item[1] is found[1]]
        contained = [
            (f"{path}.contained[{n}]", item)
            for n, item in enumerate(resource.get("contained") or [])
            if isinstance(item, Mapping) and item.get("resourceType") == "PractitionerRole"
        ]
        for candidate in contained:
            r.containers[id(candidate[1])] = request
        for candidate in [*roles, *contained]:
            ref = (candidate[1].get("practitioner") or {}).get("reference")
            if ref == target or ref in full:
                role = candidate
                break
    practitioner_path, practitioner = found
    data: dict[str, Any] = {"name": _name(practitioner)}
    r.came_from("prescriber.name", f"{practitioner_path}.name")
    r.came_from("prescriber", practitioner_path)
    data["rpps"] = _rpps(r, practitioner_path, practitioner)
    specialty = None
    if role is not None:
        for k, concept in enumerate(role[1].get("specialty") or []):
            if isinstance(concept, Mapping):
                specialty = _text(concept.get("text")) or next(
                    (
                        c.get("display")
                        for c in concept.get("coding") or []
                        if isinstance(c, Mapping) and _text(c.get("display"))
                    ),
                    None,
                )
                r.came_from("prescriber.specialty", f"{role[0]}.specialty[{k}]")
                break
    if specialty is None:
        for k, item in enumerate(practitioner.get("qualification") or []):
            code = item.get("code") if isinstance(item, Mapping) else None
            if isinstance(code, Mapping) and _text(code.get("text")):
                specialty = code["text"]
                r.came_from("prescriber.specialty", f"{practitioner_path}.qualification[{k}].code")
                break
    if specialty is None:
        r.came_from(
            "prescriber.specialty",
            f"{role[0]}.specialty" if role else f"{practitioner_path}.qualification",
        )
    data["specialty"] = specialty
    if role is None:
        r.came_from("prescriber.facility", practitioner_path)
        r.fail(
            f"{practitioner_path}",
            "no PractitionerRole ties the prescriber to an Organization (the facility)",
        )
    else:
        r.came_from("prescriber.facility", f"{role[0]}.organization")
        org = r.resolve(
            role[1].get("organization"), f"{role[0]}.organization", role, ("Organization",)
        )
        if org is not None:
            data["facility"] = _organization(r, org)
    return {k: v for k, v in data.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Lines


def _posology(r: _Reader, path: str, resource: Mapping[str, Any], key: str) -> str | None:
    dosages = resource.get("dosageInstruction")
    if not isinstance(dosages, list) or not dosages:
        r.came_from(f"{key}.posology", f"{path}.dosageInstruction")
        r.fail(f"{path}.dosageInstruction", "is required (FRMedicationRequest: 1..*)")
        return None
    texts = [d.get("text") if isinstance(d, Mapping) else None for d in dosages]
    if len(dosages) == 1 and _text(texts[0]):
        r.came_from(f"{key}.posology", f"{path}.dosageInstruction[0].text")
        return str(texts[0])
    rendered = _extension(resource, codes.RENDERED_DOSAGE)
    if rendered is not None and _text(rendered.get("valueMarkdown")):
        index = (resource.get("extension") or []).index(rendered)
        r.came_from(f"{key}.posology", f"{path}.extension[{index}].valueMarkdown")
        return str(rendered["valueMarkdown"])
    if all(_text(t) for t in texts):
        r.came_from(f"{key}.posology", f"{path}.dosageInstruction")
        return " ; puis ".join(str(t) for t in texts)
    missing = next(n for n, t in enumerate(texts) if not _text(t))
    r.came_from(f"{key}.posology", f"{path}.dosageInstruction[{missing}].text")
    r.fail(
        f"{path}.dosageInstruction[{missing}].text",
        "is required: the posology as text (or the renderedDosageInstruction extension)",
    )
    return None


def _ns_reason(substitution: Mapping[str, Any]) -> str | None:
    reason = substitution.get("reason")
    code = _coded(reason, codes.NS_REASON)
    if code is not None:
        return code
    text = reason.get("text") if isinstance(reason, Mapping) else None
    match = re.search(r"\b(MTE|EFG|CIF)\b", text) if isinstance(text, str) else None
    return match.group(1) if match else None


def _line(r: _Reader, found: tuple[str, Mapping[str, Any]], key: str) -> dict[str, Any]:
    path, resource = found
    r.came_from(key, path)
    data: dict[str, Any] = {}
    if resource.get("status", "active") not in _ISSUABLE:
        r.fail(f"{path}.status", "only an active or draft request is a line to sign")
    if resource.get("intent", "order") not in _INTENTS:
        r.fail(f"{path}.intent", "only an order is a line to sign")
    concept = resource.get("medicationCodeableConcept")
    if concept is None and "medicationReference" in resource:
        medication = r.resolve(
            resource["medicationReference"], f"{path}.medicationReference", found, ("Medication",)
        )
        concept = medication[1].get("code") if medication else None
        concept_path = f"{medication[0]}.code" if medication else f"{path}.medicationReference"
    else:
        concept_path = f"{path}.medicationCodeableConcept"
    if not isinstance(concept, Mapping):
        r.fail(f"{path}.medicationCodeableConcept", "is required: the drug")
    else:
        label = _text(concept.get("text"))
        r.came_from(f"{key}.label", f"{concept_path}.text")
        if label is None:
            for n, coding in enumerate(concept.get("coding") or []):
                if isinstance(coding, Mapping) and _text(coding.get("display")):
                    label = coding["display"]
                    r.came_from(f"{key}.label", f"{concept_path}.coding[{n}].display")
                    break
        data["label"] = label
        for n, coding in enumerate(concept.get("coding") or []):
            if not isinstance(coding, Mapping):
                continue
            for system, name in ((codes.CIP, "cip13"), (codes.CIS, "cis")):
                if coding.get("system") == system:
                    data[name] = coding.get("code")
                    r.came_from(f"{key}.{name}", f"{concept_path}.coding[{n}].code")
    data["posology"] = _posology(r, path, resource, key)
    dispense = resource.get("dispenseRequest")
    dispense = dispense if isinstance(dispense, Mapping) else {}
    where = f"{path}.dispenseRequest"
    duration = _duration_days(
        r, dispense.get("expectedSupplyDuration"), f"{where}.expectedSupplyDuration"
    )
    r.came_from(f"{key}.duration_days", f"{where}.expectedSupplyDuration")
    if duration is None and "expectedSupplyDuration" not in dispense:
        for n, dosage in enumerate(resource.get("dosageInstruction") or []):
            bounds = (((dosage or {}).get("timing") or {}).get("repeat") or {}).get(
                "boundsDuration"
            )
            if bounds is not None:
                bounds_path = f"{path}.dosageInstruction[{n}].timing.repeat.boundsDuration"
                duration = _duration_days(r, bounds, bounds_path)
                r.came_from(f"{key}.duration_days", bounds_path)
                break
    data["duration_days"] = duration
    quantity = dispense.get("quantity")
    if isinstance(quantity, Mapping):
        data["quantity"] = quantity.get("value")
        r.came_from(f"{key}.quantity", f"{where}.quantity.value")
        if _text(quantity.get("unit")):
            data["unit"] = quantity["unit"]
            r.came_from(f"{key}.unit", f"{where}.quantity.unit")
    else:
        r.came_from(f"{key}.quantity", f"{where}.quantity")
    if "numberOfRepeatsAllowed" in dispense:
        data["renewals"] = dispense["numberOfRepeatsAllowed"]
    r.came_from(f"{key}.renewals", f"{where}.numberOfRepeatsAllowed")
    if "dispenseInterval" in dispense:
        data["days_per_dispensing"] = _duration_days(
            r, dispense["dispenseInterval"], f"{where}.dispenseInterval"
        )
    r.came_from(f"{key}.days_per_dispensing", f"{where}.dispenseInterval")
    substitution = resource.get("substitution")
    if isinstance(substitution, Mapping):
        allowed = substitution.get("allowedBoolean")
        if "allowedCodeableConcept" in substitution:
            code = _coded(
                substitution["allowedCodeableConcept"],
                "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution",
            )
            allowed = code != "N"
        if allowed is not None:
            data["substitutable"] = allowed
            r.came_from(f"{key}.substitutable", f"{path}.substitution.allowedBoolean")
        if allowed is False:
            data["ns_reason"] = _ns_reason(substitution)
        r.came_from(f"{key}.ns_reason", f"{path}.substitution.reason")
    for url, name, value_key in (
        (codes.NARCOTIC, "narcotic", "valueBoolean"),
        (codes.PACK_MONTHS, "pack_months", "valueInteger"),
        (codes.CONTRACEPTIVE, "contraceptive", "valueBoolean"),
        (codes.UNITS_PER_BOX, "units_per_box", "valueInteger"),
    ):
        extension = _extension(resource, url)
        if extension is not None:
            data[name] = extension.get(value_key)
            index = (resource.get("extension") or []).index(extension)
            r.came_from(f"{key}.{name}", f"{path}.extension[{index}].{value_key}")
    for n, ref in enumerate(resource.get("reasonReference") or []):
        target = r.resolve(
            ref, f"{path}.reasonReference[{n}]", found, ("Observation",), optional=True
        )
        if target is not None and _coded(target[1].get("code"), codes.CISIS) == codes.ALD_CODE:
            data["ald"] = target[1].get("valueBoolean")
            r.came_from(f"{key}.ald", f"{target[0]}.valueBoolean")
    return {k: v for k, v in data.items() if v is not None}


def _weight(r: _Reader, requests: list[tuple[str, Mapping[str, Any]]]) -> Any:
    for found in requests:
        for n, ref in enumerate(found[1].get("supportingInformation") or []):
            target = r.resolve(
                ref,
                f"{found[0]}.supportingInformation[{n}]",
                found,
                ("Observation",),
                optional=True,
            )
            if target is None:
                continue
            coding = (target[1].get("code") or {}).get("coding") or []
            if any(
                isinstance(c, Mapping)
                and c.get("system") == codes.LOINC
                and c.get("code") == codes.BODY_WEIGHT
                for c in coding
            ):
                quantity = target[1].get("valueQuantity") or {}
                if quantity.get("code", quantity.get("unit")) not in ("kg", None):
                    r.fail(f"{target[0]}.valueQuantity.code", "the weight must be in kg")
                    return None
                r.came_from("patient.weight_kg", f"{target[0]}.valueQuantity.value")
                return quantity.get("value")
    return None


# --------------------------------------------------------------------------------------------
# Entry point


def _resources(data: Any, r: _Reader) -> list[tuple[str, Mapping[str, Any], str | None]]:
    """(path, resource, fullUrl) of every resource of the input, in order."""
    items: list[tuple[str, Mapping[str, Any], str | None]] = []
    if isinstance(data, list):
        for n, item in enumerate(data):
            if not isinstance(item, Mapping) or "resourceType" not in item:
                r.fail(f"[{n}]", "must be a FHIR resource (an object with resourceType)")
            else:
                items.append((f"[{n}]", item, None))
        return items
    kind = data.get("resourceType")
    if kind == "Bundle":
        entries = data.get("entry")
        if not isinstance(entries, list):
            r.fail("Bundle.entry", "is required: the Bundle's resources")
            return []
        for n, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if not isinstance(resource, Mapping) or "resourceType" not in resource:
                r.fail(f"Bundle.entry[{n}].resource", "must be a FHIR resource")
                continue
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            items.append((f"Bundle.entry[{n}].resource", resource, full_url))
        return items
    if kind == "MedicationRequest":
        return [("MedicationRequest", data, None)]
    r.fail("resourceType", f"{kind!r}: expected a Bundle or MedicationRequest(s)")
    return []


# JSON types of the elements the reading relies on, checked before reading so that a wrong one
# is reported at its element. Names whose type depends on where they stand (``code`` is a
# CodeableConcept in an Observation and a string in a Coding) are not listed.
_ARRAYS_OF_OBJECTS = frozenset(
    [
        "entry",
        "contained",
        "extension",
        "identifier",
        "name",
        "address",
        "telecom",
        "coding",
        "dosageInstruction",
        "reasonReference",
        "supportingInformation",
        "note",
        "action",
        "specialty",
        "qualification",
        "signature",
        "entity",
        "target",
        "agent",
    ]
)
_STRINGS = frozenset({"resourceType", "reference", "fullUrl", "system"})
_IN_RESOURCES = frozenset({"identifier", "name"})  # arrays only as elements of a resource
_SINGLE = frozenset({("Bundle", "identifier"), ("Organization", "name")})
_ARRAYS_OF_STRINGS = frozenset(["given", "prefix", "line", "profile"])
_OBJECTS = frozenset(
    [
        "resource",
        "subject",
        "requester",
        "groupIdentifier",
        "dispenseRequest",
        "medicationCodeableConcept",
        "medicationReference",
        "quantity",
        "expectedSupplyDuration",
        "dispenseInterval",
        "substitution",
        "valueQuantity",
        "timing",
        "repeat",
        "boundsDuration",
        "practitioner",
        "organization",
        "meta",
        "allowedCodeableConcept",
    ]
)


def _shapes(r: _Reader, value: Any, path: str) -> None:
    if isinstance(value, list):
        for n, item in enumerate(value):
            _shapes(r, item, f"{path}[{n}]")
        return
    if not isinstance(value, Mapping):
        return
    owner = value.get("resourceType")
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if (owner, key) in _SINGLE or (key in _IN_RESOURCES and owner is None):
            pass  # e.g. Reference.identifier is one Identifier, Organization.name text
        elif key in _ARRAYS_OF_OBJECTS or key in _ARRAYS_OF_STRINGS:
            kind = dict if key in _ARRAYS_OF_OBJECTS else str
            if not isinstance(item, list):
                r.fail(where, "must be an array")
                continue
            for n, element in enumerate(item):
                if not isinstance(element, kind):
                    r.fail(f"{where}[{n}]", "must be an object" if kind is dict else "must be text")
        elif key in _STRINGS and not isinstance(item, str):
            r.fail(where, "must be text")
            continue
        elif key in _OBJECTS and not isinstance(item, Mapping):
            r.fail(where, "must be an object")
            continue
        _shapes(r, item, where)


def to_input(data: Any) -> tuple[dict[str, Any], dict[str, str], list[FieldError]]:
    """Map FHIR ``data`` to a prescription input; returns (input, origins, errors) where
    ``origins`` maps each input field (``lines[1].posology``) to the FHIR element it came from
    and ``errors`` lists the problems found reading (with FHIR paths)."""
    r = _Reader()
    _shapes(r, data, _root(data) if isinstance(data, Mapping) else "")
    if r.errors:
        return {}, r.origins, r.errors
    resources = _resources(data, r)
    _index(r, resources)
    requests = [
        (p, res) for p, res, _ in resources if res.get("resourceType") == "MedicationRequest"
    ]
    roles = [(p, res) for p, res, _ in resources if res.get("resourceType") == "PractitionerRole"]
    groups = [(p, res) for p, res, _ in resources if res.get("resourceType") == "RequestGroup"]
    result: dict[str, Any] = {}
    if not requests:
        r.fail(
            "Bundle.entry"
            if isinstance(data, Mapping) and data.get("resourceType") == "Bundle"
            else "resourceType",
            "no MedicationRequest: nothing to prescribe",
        )
        return result, r.origins, r.errors
    group_ids = {(res.get("groupIdentifier") or {}).get("value") for _, res in requests}
    if len(group_ids) > 1:
        r.fail(
            f"{requests[1][0]}.groupIdentifier",
            "the MedicationRequests belong to different prescriptions (groupIdentifier)",
        )
    group = groups[0] if groups else None
    if group is not None:
        order = [
            ((a.get("resource") or {}).get("reference"))
            for a in group[1].get("action") or []
            if isinstance(a, Mapping)
        ]
        position = {url: n for n, url in enumerate(order)}
        urls = {id(res): url for url, (_, res) in r.by_url.items()}
        requests.sort(key=lambda item: position.get(urls.get(id(item[1])), len(order)))
    first_path, first = requests[0]
    authored = first.get("authoredOn")
    r.came_from("issued", f"{first_path}.authoredOn")
    if not isinstance(authored, str):
        r.fail(f"{first_path}.authoredOn", "is required (FRMedicationRequest: 1..1)")
    else:
        result["issued"] = authored
    for path, res in requests[1:]:
        if res.get("authoredOn") != authored:
            r.fail(f"{path}.authoredOn", "differs from the other lines of the prescription")
    patient = r.resolve(first.get("subject"), f"{first_path}.subject", requests[0], ("Patient",))
    if patient is not None:
        r.came_from("patient", patient[0])
        result["patient"] = _patient(r, patient)
        weight = _weight(r, requests)
        if weight is not None:
            result["patient"]["weight_kg"] = weight
    for path, res in requests[1:]:
        if (res.get("subject") or {}).get("reference") != (first.get("subject") or {}).get(
            "reference"
        ):
            r.fail(f"{path}.subject", "differs from the other lines of the prescription")
    prescriber = _prescriber(r, requests[0], roles)
    if prescriber is not None:
        result["prescriber"] = prescriber
    result["lines"] = [_line(r, found, f"lines[{n}]") for n, found in enumerate(requests, start=1)]
    r.came_from("lines", requests[0][0])
    if group is not None:
        notes = [n.get("text") for n in group[1].get("note") or [] if isinstance(n, Mapping)]
        if notes:
            result["notes"] = "\n".join(str(n) for n in notes)
            r.came_from("notes", f"{group[0]}.note")
        opposition = _extension(group[1], codes.SHARE_OPPOSITION)
        if opposition is not None:
            result["share_opposition"] = opposition.get("valueBoolean")
            index = (group[1].get("extension") or []).index(opposition)
            r.came_from("share_opposition", f"{group[0]}.extension[{index}].valueBoolean")
    return result, r.origins, r.errors


def _fhir_path(origins: Mapping[str, str], field_path: str) -> str:
    """The FHIR element a model field came from: the longest known prefix of the field."""
    probe = field_path
    while probe:
        if probe in origins:
            return origins[probe]
        shorter = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
        if shorter == probe:
            break
        probe = shorter
    return "Bundle" if "lines" not in origins else origins["lines"].split(".entry[")[0]


def _root(data: Any) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("resourceType"), str):
        return str(data["resourceType"])
    return "resourceType"


def read(data: Any, *, now: dt.datetime | None = None, source: str | None = None) -> dict[str, Any]:
    """FHIR ``data`` -> a prescription input that :func:`eprescrire.model.from_input` accepts.

    The result is checked here by :func:`~eprescrire.model.from_input` itself (at ``now``,
    default the real clock), so that each broken rule is reported at its FHIR element. On
    failure, raises :class:`~eprescrire.errors.ValidationError` listing every problem.
    """
    try:
        result, origins, errors = to_input(data)
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        # An element of an unexpected JSON type deep in the input, which the reading above
        # does not check one by one: still one line and exit 3, never a traceback.
        raise ValidationError(
            [FieldError(_root(data), f"is not FHIR R4 JSON ({e.__class__.__name__})")], source
        ) from e
    problems = list(errors)
    try:
        model.from_input(result, now=now or rules.now())
    except ValidationError as e:
        for f in e.errors:
            top = re.split(r"[.\[]", f.field, maxsplit=1)[0]
            if errors and top in ("patient", "prescriber", "lines") and top not in result:
                continue  # the part could not be read at all: already reported above
            problem = FieldError(_fhir_path(origins, f.field), f.message)
            if any(p.field.startswith(problem.field) for p in errors):
                continue  # that element's problem is already reported, in FHIR terms
            if problem not in problems:
                problems.append(problem)
    if problems:
        raise ValidationError(problems, source)
    return result


def is_fhir(data: Any) -> bool:
    """A FHIR resource, or a JSON array of them (what ``issue`` hands to :func:`read`)."""
    if isinstance(data, Mapping):
        return "resourceType" in data
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(item, Mapping) and "resourceType" in item for item in data)
    )


# --------------------------------------------------------------------------------------------
# The signature that travels with an export


def signature_of(bundle: Mapping[str, Any]) -> tuple[str, list[bytes]]:
    """The compact JWS and the certificates (DER, signer first) a Bundle from ``fhir export``
    carries, for a receiver to verify (``eprescrire.signing.verify_token``) and to compare
    with the resources. On failure, raises :class:`ValidationError`."""
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    for n, entry in enumerate(entries or []):
        resource = (entry or {}).get("resource") or {}
        if resource.get("resourceType") != "Provenance":
            continue
        for k, signature in enumerate(resource.get("signature") or []):
            if signature.get("sigFormat") != "application/jose":
                continue
            where = f"Bundle.entry[{n}].resource.signature[{k}].data"
            try:
                token = base64.b64decode(signature["data"], validate=True).decode("ascii")
            except (KeyError, ValueError, TypeError) as e:
                raise ValidationError([FieldError(where, "is not a base64 JWS")]) from e
            urls = {
                (e or {}).get("fullUrl"): (e or {}).get("resource") or {} for e in entries or []
            }
            certificates = []
            for entity in resource.get("entity") or []:
                binary = urls.get(((entity or {}).get("what") or {}).get("reference"), {})
                if binary.get("contentType") == "application/pkix-cert":
                    certificates.append(base64.b64decode(binary.get("data", "")))
            return token, certificates
    raise ValidationError([FieldError("Bundle.entry", "no Provenance carries a JWS signature")])
