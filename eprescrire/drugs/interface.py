"""What a drug catalogue holds and answers, independent of how it is stored.

The records mirror the five files of the BDPM (*base de données publique des médicaments*,
ANSM): a :class:`Drug` per CIS (``CIS_bdpm.txt``) with its :class:`Presentation` packs
(``CIS_CIP_bdpm.txt``), its :class:`Component` substances (``CIS_COMPO_bdpm.txt``), its
prescribing and dispensing conditions (``CIS_CPD_bdpm.txt``) and its places in the generic
groups (:class:`GroupMember`, ``CIS_GENER_bdpm.txt``). Text is kept as the ANSM wrote it;
:class:`Regulation` is what eprescrire reads into the conditions.

Every error a catalogue raises is an :class:`eprescrire.errors.Error` carrying its exit code:
:class:`CatalogueMissing` and :class:`CatalogueUnavailable` (4), :class:`ImportFailed` (3),
:class:`DownloadFailed` (4).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal, Protocol

from eprescrire.drugs.text import fold
from eprescrire.errors import EnvironmentProblem, InputError

# --------------------------------------------------------------------------------------------
# Errors


class CatalogueMissing(EnvironmentProblem):
    """No catalogue at the expected place (exit 4); the message says how to make one."""

    def __init__(self, location: str) -> None:
        super().__init__(
            f"no drug catalogue at {location}; run `eprescrire drugs import DIR` "
            "(or `eprescrire drugs update`) first"
        )


class CatalogueUnavailable(EnvironmentProblem):
    """The catalogue exists but cannot be read (corrupt, another format, permissions): exit 4."""


class ImportFailed(InputError):
    """The BDPM files cannot be imported (missing, unreadable, not BDPM): exit 3. The previous
    catalogue, if any, is left as it was."""


class DownloadFailed(EnvironmentProblem):
    """The BDPM files could not be downloaded: exit 4. The previous catalogue is left as it was."""


class UnknownDrug(InputError):
    """No drug or presentation with this code in the catalogue: exit 3."""


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Presentation:
    """One pack (``CIS_CIP_bdpm.txt``), identified by its CIP13."""

    cip13: str
    cip7: str
    cis: str
    label: str
    status: str  # « Présentation active » / « Présentation abrogée »
    marketing: str  # « Déclaration de commercialisation », « Déclaration d'arrêt de ... », ...
    declared_on: dt.date | None
    hospital_approval: bool | None  # agrément aux collectivités
    reimbursement_rate: int | None  # percent
    price_cents: int | None
    price_with_fees_cents: int | None
    fees_cents: int | None
    reimbursement_notes: str

    @property
    def withdrawn(self) -> bool:
        """Abrogated, or no longer (or not yet again) on the market."""
        status, marketing = fold(self.status), fold(self.marketing)
        return "abrogee" in status or "arret" in marketing or "suspension" in marketing


@dataclass(frozen=True)
class Component:
    """One substance of one element of a drug (``CIS_COMPO_bdpm.txt``)."""

    element: str
    substance_code: str
    substance: str
    dosage: str
    reference: str
    nature: str  # SA: active substance; FT: therapeutic fraction
    link: str


GROUP_TYPES = {0: "princeps", 1: "générique", 2: "complément de gamme", 4: "substituable"}


@dataclass(frozen=True)
class GroupMember:
    """A drug's place in a generic group (``CIS_GENER_bdpm.txt``)."""

    group_id: int
    group_label: str
    cis: str
    type: int  # 0 princeps, 1 generic, 2 posology complement, 4 substitutable
    order: int

    @property
    def role(self) -> str:
        return GROUP_TYPES.get(self.type, f"type {self.type}")


_LIMIT = re.compile(r"prescription limitee a (\d+) (jours?|semaines?|mois)")
_FRACTION = re.compile(r"delivrance fractionnee de (\d+) jours?")
_UNIT_DAYS = {"jour": 1, "jours": 1, "semaine": 7, "semaines": 7, "mois": 30}

HospitalStatus = Literal["reserve", "prescription", "initial"]


@dataclass(frozen=True)
class Regulation:
    """What the prescribing and dispensing conditions mean for a prescription line."""

    narcotic: bool = False  # « stupéfiants »
    secure_form: bool = False  # « prescription en toutes lettres sur ordonnance sécurisée »
    list: Literal["I", "II"] | None = None  # « liste I », « liste II »
    hospital: HospitalStatus | None = None  # réserve hospitalière, PH, PIH
    max_days: int | None = None  # « prescription limitée à 4 semaines » -> 28
    min_limit_days: int | None = None  # « 7 jours ou 28 jours »: the shorter of the two
    limit_text: str | None = None
    fraction_days: int | None = None  # « délivrance fractionnée de 7 jours »


def regulation_of(conditions: tuple[str, ...] | list[str]) -> Regulation:
    """Read the conditions of ``CIS_CPD_bdpm.txt`` (accents and case do not matter).

    A limit written « prescription limitée à 7 jours ou 28 jours » depends on the form or the
    indication: ``max_days`` is the longer one (beyond it is always wrong) and
    ``min_limit_days`` the shorter one (beyond it deserves a second look). Months count 30 days.
    """
    narcotic = secure = False
    listed: Literal["I", "II"] | None = None
    hospital: HospitalStatus | None = None
    limits: list[int] = []
    limit_text: str | None = None
    fraction: int | None = None
    for condition in conditions:
        text = " ".join(fold(condition).replace("’", "'").split())
        if "stupefiant" in text:
            narcotic = True
        if "ordonnance securisee" in text:
            secure = True
        if text == "liste i":
            listed = listed or "I"
        elif text == "liste ii":
            listed = "II" if listed is None else listed
        if "usage hospitalier" in text or "reserve a l'usage hospitalier" in text:
            hospital = "reserve"
        elif text.startswith("prescription hospitaliere") and hospital != "reserve":
            hospital = "prescription"
        elif text.startswith("prescription initiale hospitaliere") and hospital is None:
            hospital = "initial"
        if text.startswith("prescription limitee a"):
            found = [
                int(n) * _UNIT_DAYS[unit]
                for n, unit in re.findall(r"(\d+) (jours?|semaines?|mois)", text)
            ]
            if found and _LIMIT.match(text):
                limits.extend(found)
                limit_text = condition.strip()
        match = _FRACTION.search(text)
        if match:
            days = int(match.group(1))
            fraction = days if fraction is None else min(fraction, days)
    return Regulation(
        narcotic=narcotic,
        secure_form=secure,
        list=listed,
        hospital=hospital,
        max_days=max(limits) if limits else None,
        min_limit_days=min(limits) if limits else None,
        limit_text=limit_text,
        fraction_days=fraction,
    )


@dataclass(frozen=True)
class Drug:
    """One medicinal product (CIS) with everything the catalogue knows about it."""

    cis: str
    name: str
    form: str
    routes: tuple[str, ...]
    authorisation: str  # « Autorisation active », « Autorisation abrogée », ...
    procedure: str
    marketing: str  # « Commercialisée » / « Non commercialisée »
    authorised_on: dt.date | None
    bdm_status: str  # « Alerte », « Warning disponibilité » or empty
    eu_number: str
    holders: tuple[str, ...]
    reinforced_monitoring: bool
    conditions: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    presentations: tuple[Presentation, ...] = ()
    groups: tuple[GroupMember, ...] = ()

    @property
    def regulation(self) -> Regulation:
        return regulation_of(self.conditions)

    @property
    def marketed(self) -> bool:
        return fold(self.marketing) == "commercialisee" and "active" in fold(self.authorisation)

    @property
    def substances(self) -> tuple[str, ...]:
        """Active substances (SA), in file order, without repeats."""
        seen: dict[str, None] = {}
        for component in self.components:
            if component.nature.upper() != "FT":
                seen.setdefault(component.substance, None)
        return tuple(seen)


@dataclass(frozen=True)
class SearchHit:
    cis: str
    name: str
    marketed: bool
    substances: tuple[str, ...]
    matched: Literal["cis", "cip13", "cip7", "text"]
    cip13: str | None = None  # the presentation a CIP code designated


@dataclass(frozen=True)
class SourceFile:
    name: str
    encoding: str
    line_ending: str
    rows: int
    skipped: int
    sha256: str
    modified: str  # ISO 8601 UTC


@dataclass(frozen=True)
class CatalogueInfo:
    """Where the data came from: the files' date and what the import read."""

    location: str
    source_date: str  # the files' date (ISO 8601)
    imported_at: str  # ISO 8601 UTC
    files: tuple[SourceFile, ...]
    drugs: int
    presentations: int


class Catalogue(Protocol):
    """A read-only drug catalogue. Codes are strings of digits (CIS: 8, CIP13: 13, CIP7: 7)."""

    def info(self) -> CatalogueInfo: ...

    def drug(self, cis: str) -> Drug | None:
        """The drug with this CIS, with its presentations, components, conditions and groups."""

    def presentation(self, cip: str) -> Presentation | None:
        """The presentation with this CIP13 (or CIP7)."""

    def lookup(self, code: str) -> tuple[Drug, Presentation | None] | None:
        """A CIS, CIP13 or CIP7 (spaces and dashes ignored) -> the drug and, for a CIP, the
        presentation; None when unknown (a presentation of a CIS absent from the catalogue
        is unknown too)."""

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Drugs matching every word of ``text`` (name or substance, accents and case
        ignored, words as prefixes) or a code, best match first."""

    def match_label(self, label: str) -> list[str]:
        """The CIS of drugs a prescription label designates: those whose name is the label
        (accents, case and punctuation ignored), else those whose name holds every word of it."""

    def group_members(self, group_id: int) -> tuple[GroupMember, ...]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# JSON forms (``drugs show --json``, ``drugs search --json``)


def _euros(cents: int | None) -> str | None:
    return None if cents is None else f"{cents // 100}.{cents % 100:02d}"


def presentation_to_json(p: Presentation) -> dict[str, object]:
    """Prices are strings of euros with two decimals (``"1466.29"``), exact."""
    return {
        "cip13": p.cip13,
        "cip7": p.cip7,
        "cis": p.cis,
        "label": p.label,
        "status": p.status,
        "marketing": p.marketing,
        "declared_on": p.declared_on.isoformat() if p.declared_on else None,
        "withdrawn": p.withdrawn,
        "hospital_approval": p.hospital_approval,
        "reimbursement_rate": p.reimbursement_rate,
        "price": _euros(p.price_cents),
        "price_with_fees": _euros(p.price_with_fees_cents),
        "fees": _euros(p.fees_cents),
        "reimbursement_notes": p.reimbursement_notes or None,
    }


def regulation_to_json(r: Regulation) -> dict[str, object]:
    return {
        "narcotic": r.narcotic,
        "list": r.list,
        "hospital": r.hospital,
        "secure_form": r.secure_form,
        "max_days": r.max_days,
        "fraction_days": r.fraction_days,
    }


def drug_to_json(drug: Drug) -> dict[str, object]:
    return {
        "cis": drug.cis,
        "name": drug.name,
        "form": drug.form,
        "routes": list(drug.routes),
        "authorisation": drug.authorisation,
        "procedure": drug.procedure,
        "marketing": drug.marketing,
        "marketed": drug.marketed,
        "authorised_on": drug.authorised_on.isoformat() if drug.authorised_on else None,
        "bdm_status": drug.bdm_status or None,
        "eu_number": drug.eu_number or None,
        "holders": list(drug.holders),
        "reinforced_monitoring": drug.reinforced_monitoring,
        "conditions": list(drug.conditions),
        "regulation": regulation_to_json(drug.regulation),
        "substances": [
            {
                "element": c.element,
                "code": c.substance_code,
                "name": c.substance,
                "dosage": c.dosage,
                "reference": c.reference,
                "nature": c.nature,
            }
            for c in drug.components
        ],
        "presentations": [presentation_to_json(p) for p in drug.presentations],
        "generic_groups": [
            {"id": g.group_id, "label": g.group_label, "type": g.type, "role": g.role}
            for g in drug.groups
        ],
    }


def hit_to_json(hit: SearchHit) -> dict[str, object]:
    return {
        "cis": hit.cis,
        "name": hit.name,
        "marketed": hit.marketed,
        "substances": list(hit.substances),
        "matched": hit.matched,
        "cip13": hit.cip13,
    }


def info_to_json(info: CatalogueInfo) -> dict[str, object]:
    return {
        "catalogue": info.location,
        "source_date": info.source_date,
        "imported_at": info.imported_at,
        "drugs": info.drugs,
        "presentations": info.presentations,
        "files": [f.__dict__ for f in info.files],
    }
