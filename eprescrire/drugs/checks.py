"""Prescription aid from the drug catalogue: pure functions over lines and a catalogue.

Nothing here prints, reads a clock or writes: the caller decides what to do with the result.

Issuing (``eprescrire issue`` with a catalogue)::

    from eprescrire import drugs
    from eprescrire.drugs import checks
    catalogue = drugs.open_if_present(option)      # None: no catalogue, nothing to check
    if catalogue is not None:
        with catalogue:
            prescription, report = checks.check_prescription(prescription, catalogue, source=name)
        for notice in report.warnings + report.filled:    # Notice(field, code, message)
            print(notice)

:func:`check_prescription` raises :class:`~eprescrire.errors.ValidationError` (exit 3, every
field named) when :func:`check_lines` finds errors, else returns the prescription with the codes
filled (same identifier and issue time: it is not signed yet).

- errors (:class:`~eprescrire.errors.FieldError`, fields ``lines[N].cis|cip13|narcotic|
  duration_days|renewals``, N from 1): CIS or CIP13 unknown to the catalogue; a CIP13 that is
  not a presentation of the line's CIS; a narcotic drug (« stupéfiants » in its conditions)
  on a line not marked ``narcotic``; a condition's limit (« prescription limitée à 4
  semaines ») exceeded by ``duration_days`` (or by the whole treatment with renewals).
- warnings (:class:`Notice`, codes ``withdrawn``, ``not_marketed``, ``list_i``, ``list_ii``,
  ``hospital_reserve``, ``hospital_prescription``, ``initial_hospital_prescription``,
  ``secure_form``, ``fractioned_dispensing``, ``limit``, ``ambiguous_label``,
  ``unknown_label``, ``label_mismatch``): worth telling the prescriber, not a reason to refuse.
- filled (:class:`Notice`, code ``filled``): a missing CIS filled from the CIP13 or from a label
  that designates exactly one drug; a missing CIP13 filled when that drug has exactly one
  presentation on the market. ``report.lines`` holds the lines with those codes.

Dispensing (``eprescrire dispense --substitute CIP13``)::

    verdict = checks.substitution_check(
        catalogue, prescribed_cis=line.cis, prescribed_cip13=line.cip13,
        substitute_cip13=cip13, substitutable=line.substitutable, prescribed_label=line.label)
    verdict.raise_if_forbidden()   # VerificationError(Reason.SUBSTITUTION_FORBIDDEN, message)

A substitute is allowed when it is a presentation of the prescribed drug itself, or of a drug in
one of the prescribed drug's generic groups (``CIS_GENER_bdpm.txt``); never on a line marked
non substituable, and never when either drug is unknown to the catalogue (the group cannot be
checked). Its messages are in French: the pharmacist reads them at the counter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from eprescrire.drugs.interface import Catalogue, Drug, Presentation
from eprescrire.drugs.text import words
from eprescrire.errors import FieldError, Reason, ValidationError, VerificationError
from eprescrire.model import Line, Prescription


@dataclass(frozen=True)
class Notice:
    """Something the prescriber should see about one field; not an error."""

    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class LinesReport:
    errors: tuple[FieldError, ...]
    warnings: tuple[Notice, ...]
    filled: tuple[Notice, ...]
    lines: tuple[Line, ...]  # the lines, with the codes filled
    drugs: tuple[Drug | None, ...]  # the drug each line designates, when known


def _marketed(presentations: Sequence[Presentation]) -> list[Presentation]:
    return [p for p in presentations if not p.withdrawn]


def _resolve(
    line: Line, where: str, catalogue: Catalogue
) -> tuple[Line, Drug | None, list[FieldError], list[Notice], list[Notice]]:
    errors: list[FieldError] = []
    warnings: list[Notice] = []
    filled: list[Notice] = []
    drug: Drug | None = None
    presentation: Presentation | None = None
    if line.cis is not None:
        drug = catalogue.drug(line.cis)
        if drug is None:
            errors.append(FieldError(f"{where}.cis", "unknown CIS in the drug reference (BDPM)"))
    if line.cip13 is not None:
        presentation = catalogue.presentation(line.cip13)
        if presentation is None:
            errors.append(
                FieldError(f"{where}.cip13", "unknown CIP13 in the drug reference (BDPM)")
            )
        elif line.cis is not None and presentation.cis != line.cis:
            errors.append(
                FieldError(
                    f"{where}.cip13",
                    f"is a presentation of CIS {presentation.cis}, not of {where}.cis {line.cis}",
                )
            )
        elif drug is None:
            drug = catalogue.drug(presentation.cis)
            if drug is None:
                errors.append(
                    FieldError(
                        f"{where}.cip13",
                        f"its drug (CIS {presentation.cis}) is missing from the drug reference",
                    )
                )
            else:
                line = dataclasses.replace(line, cis=drug.cis)
                filled.append(Notice(f"{where}.cis", "filled", f"{drug.cis} (from the CIP13)"))
    if errors:
        return line, None, errors, warnings, filled
    if drug is None:  # neither code: the label may designate exactly one drug
        candidates = catalogue.match_label(line.label)
        if len(candidates) == 1:
            drug = catalogue.drug(candidates[0])
            if drug is not None:
                line = dataclasses.replace(line, cis=drug.cis)
                filled.append(
                    Notice(f"{where}.cis", "filled", f"{drug.cis} ({drug.name}) from the label")
                )
        elif not candidates:
            warnings.append(
                Notice(
                    f"{where}.label",
                    "unknown_label",
                    "names no drug of the drug reference: nothing checked (narcotic, limits); "
                    "give a CIS or CIP13",
                )
            )
        elif len(candidates) > 1:
            warnings.append(
                Notice(
                    f"{where}.label",
                    "ambiguous_label",
                    f"designates {len(candidates)} drugs: give a CIS or CIP13 to have it checked",
                )
            )
    if drug is not None and line.cip13 is None:
        on_market = _marketed(drug.presentations)
        if len(on_market) == 1:
            presentation = on_market[0]
            line = dataclasses.replace(line, cip13=presentation.cip13)
            filled.append(
                Notice(f"{where}.cip13", "filled", f"{presentation.cip13} ({presentation.label})")
            )
    if presentation is not None and presentation.withdrawn:
        warnings.append(
            Notice(
                f"{where}.cip13",
                "withdrawn",
                f"presentation withdrawn: {presentation.status}, {presentation.marketing}",
            )
        )
    elif drug is not None and not drug.marketed:
        warnings.append(
            Notice(
                f"{where}.cis",
                "not_marketed",
                f"drug not on the market: {drug.authorisation}, {drug.marketing}",
            )
        )
    return line, drug, errors, warnings, filled


def _regulation(line: Line, where: str, drug: Drug) -> tuple[list[FieldError], list[Notice]]:
    errors: list[FieldError] = []
    warnings: list[Notice] = []
    rule = drug.regulation
    if rule.narcotic and not line.narcotic:
        errors.append(
            FieldError(
                f"{where}.narcotic",
                f"{drug.name} is a narcotic (« stupéfiants »): the line must be marked narcotic",
            )
        )
    if rule.max_days is not None:
        limit = f"« {rule.limit_text} »"
        if line.duration_days > rule.max_days:
            errors.append(
                FieldError(
                    f"{where}.duration_days",
                    f"{line.duration_days} days exceeds {limit} ({rule.max_days} days)",
                )
            )
        elif line.total_days > rule.max_days:
            errors.append(
                FieldError(
                    f"{where}.renewals",
                    f"{line.total_days} days with renewals exceeds {limit} ({rule.max_days} days)",
                )
            )
        elif rule.min_limit_days is not None and line.total_days > rule.min_limit_days:
            warnings.append(
                Notice(
                    f"{where}.duration_days",
                    "limit",
                    f"{line.total_days} days: {limit} allows {rule.min_limit_days} days "
                    "for some forms or indications",
                )
            )
    field = f"{where}.cis"
    if rule.list == "I":
        warnings.append(Notice(field, "list_i", "liste I"))
    elif rule.list == "II":
        warnings.append(Notice(field, "list_ii", "liste II"))
    if rule.hospital == "reserve":
        warnings.append(
            Notice(field, "hospital_reserve", "réservé à l'usage hospitalier (hospital only)")
        )
    elif rule.hospital == "prescription":
        warnings.append(
            Notice(
                field, "hospital_prescription", "prescription hospitalière (hospital prescriber)"
            )
        )
    elif rule.hospital == "initial":
        warnings.append(
            Notice(
                field,
                "initial_hospital_prescription",
                "prescription initiale hospitalière (first prescribed in hospital)",
            )
        )
    if rule.secure_form:
        warnings.append(
            Notice(
                field,
                "secure_form",
                "prescription en toutes lettres sur ordonnance sécurisée",
            )
        )
    if rule.fraction_days is not None and (
        line.days_per_dispensing is None or line.days_per_dispensing > rule.fraction_days
    ):
        warnings.append(
            Notice(
                f"{where}.days_per_dispensing",
                "fractioned_dispensing",
                f"délivrance fractionnée de {rule.fraction_days} jours",
            )
        )
    return errors, warnings


# Words of pharmaceutical forms and packs: they say nothing about which drug a label names.
_FORM_WORDS = frozenset(
    [
        "ampoule",
        "ampoules",
        "boite",
        "boites",
        "buvable",
        "capsule",
        "capsules",
        "collyre",
        "comprime",
        "comprimes",
        "creme",
        "dispersible",
        "effervescent",
        "enfant",
        "enfants",
        "adulte",
        "adultes",
        "flacon",
        "flacons",
        "gelule",
        "gelules",
        "granules",
        "injectable",
        "liberation",
        "pellicule",
        "pommade",
        "poudre",
        "prolongee",
        "sachet",
        "sachets",
        "secable",
        "sirop",
        "solution",
        "suppositoire",
        "suspension",
    ]
)


def _label_fits(label: str, drug: Drug) -> bool:
    """Does the label name this drug (a word of its name, substances or generic groups)?
    Labels of nothing but forms and doses fit anything."""
    mine = [w for w in words(label) if len(w) >= 4 and not w.isdigit() and w not in _FORM_WORDS]
    if not mine:
        return True
    texts = [drug.name, *drug.substances, *(g.group_label for g in drug.groups)]
    theirs = {w for text in texts for w in words(text) if len(w) >= 4}
    return any(v.startswith(w) or w.startswith(v) for w in mine for v in theirs)


def check_lines(lines: Sequence[Line], catalogue: Catalogue, *, path: str = "lines") -> LinesReport:
    """Check prescription lines against the catalogue (see the module docstring).

    Fields are named ``{path}[N].field`` with N counted from 1, as the model names them. Never
    raises for a line's content; a catalogue that cannot be read raises its own error.
    """
    errors: list[FieldError] = []
    warnings: list[Notice] = []
    filled: list[Notice] = []
    out_lines: list[Line] = []
    drugs: list[Drug | None] = []
    for number, original in enumerate(lines, start=1):
        where = f"{path}[{number}]"
        line, drug, line_errors, line_warnings, line_filled = _resolve(original, where, catalogue)
        if drug is not None:
            if (original.cis or original.cip13) and not _label_fits(line.label, drug):
                line_warnings.append(
                    Notice(
                        f"{where}.label",
                        "label_mismatch",
                        f"does not look like {drug.name} (CIS {drug.cis}): check the code",
                    )
                )
            rule_errors, rule_warnings = _regulation(line, where, drug)
            line_errors += rule_errors
            line_warnings += rule_warnings
        errors += line_errors
        warnings += line_warnings
        filled += line_filled
        out_lines.append(line)
        drugs.append(drug)
    return LinesReport(
        errors=tuple(errors),
        warnings=tuple(warnings),
        filled=tuple(filled),
        lines=tuple(out_lines),
        drugs=tuple(drugs),
    )


def check_prescription(
    prescription: Prescription, catalogue: Catalogue, *, source: str | None = None
) -> tuple[Prescription, LinesReport]:
    """:func:`check_lines` on a prescription before it is signed: the prescription with its
    codes filled, and the report (warnings, filled codes). On errors, raises
    :class:`~eprescrire.errors.ValidationError` naming every field (exit 3)."""
    report = check_lines(prescription.lines, catalogue)
    if report.errors:
        raise ValidationError(list(report.errors), source)
    return dataclasses.replace(prescription, lines=report.lines), report


# --------------------------------------------------------------------------------------------
# Substitution


@dataclass(frozen=True)
class Substitution:
    """Whether a substitute may be handed over instead of the prescribed drug.

    ``detail``: ``same_drug``, ``same_group`` (allowed); ``not_substitutable``,
    ``not_in_group``, ``unknown_prescribed``, ``unknown_substitute`` (refused).
    """

    allowed: bool
    detail: str
    message: str  # in French, for the counter
    prescribed_cis: str | None = None
    substitute_cis: str | None = None
    groups: tuple[int, ...] = ()  # the generic groups the two share
    withdrawn: bool = False  # the substitute presentation is withdrawn (still allowed)

    @property
    def reason(self) -> Reason | None:
        return None if self.allowed else Reason.SUBSTITUTION_FORBIDDEN

    def raise_if_forbidden(self) -> None:
        """Raise VerificationError(substitution_forbidden) when the substitute is refused."""
        if not self.allowed:
            raise VerificationError(Reason.SUBSTITUTION_FORBIDDEN, self.message)


def _prescribed_cis(
    catalogue: Catalogue, cis: str | None, cip13: str | None, label: str | None
) -> str | None:
    if cis is not None:
        return cis if catalogue.drug(cis) is not None else None
    if cip13 is not None:
        presentation = catalogue.presentation(cip13)
        return presentation.cis if presentation is not None else None
    if label is not None:
        candidates = catalogue.match_label(label)
        return candidates[0] if len(candidates) == 1 else None
    return None


def substitution_check(
    catalogue: Catalogue,
    *,
    substitute_cip13: str,
    prescribed_cis: str | None = None,
    prescribed_cip13: str | None = None,
    substitutable: bool = True,
    prescribed_label: str | None = None,
) -> Substitution:
    """May ``substitute_cip13`` be dispensed for the prescribed drug (its CIS, else its CIP13,
    else a label designating exactly one drug)? Pure: reads the catalogue only."""
    if not substitutable:
        return Substitution(
            False,
            "not_substitutable",
            "substitution refusée : la ligne est marquée « non substituable »",
        )
    substitute = catalogue.presentation(substitute_cip13)
    if substitute is None:
        return Substitution(
            False,
            "unknown_substitute",
            f"substitution refusée : le CIP13 {substitute_cip13} est inconnu de la base des "
            "médicaments",
        )
    withdrawn = substitute.withdrawn
    prescribed = _prescribed_cis(catalogue, prescribed_cis, prescribed_cip13, prescribed_label)
    if prescribed is None:
        return Substitution(
            False,
            "unknown_prescribed",
            "substitution refusée : le médicament prescrit est inconnu de la base des "
            "médicaments, son groupe générique ne peut pas être vérifié",
            substitute_cis=substitute.cis,
            withdrawn=withdrawn,
        )
    if substitute.cis == prescribed:
        return Substitution(
            True,
            "same_drug",
            "même médicament (autre présentation)",
            prescribed,
            substitute.cis,
            withdrawn=withdrawn,
        )
    prescribed_drug = catalogue.drug(prescribed)
    substitute_drug = catalogue.drug(substitute.cis)
    mine = {g.group_id: g for g in (prescribed_drug.groups if prescribed_drug else ())}
    theirs = {g.group_id for g in (substitute_drug.groups if substitute_drug else ())}
    if substitute_drug is None:
        # A presentation whose drug left CIS_bdpm.txt may still be listed in a group.
        theirs = {
            g.group_id
            for group_id in mine
            for g in catalogue.group_members(group_id)
            if g.cis == substitute.cis
        }
    shared = tuple(sorted(set(mine) & theirs))
    if shared:
        label = mine[shared[0]].group_label
        return Substitution(
            True,
            "same_group",
            f"même groupe générique : {label}",
            prescribed,
            substitute.cis,
            shared,
            withdrawn,
        )
    name = substitute_drug.name if substitute_drug else f"CIS {substitute.cis}"
    return Substitution(
        False,
        "not_in_group",
        f"substitution refusée : {name} n'appartient pas au groupe générique du médicament "
        "prescrit",
        prescribed,
        substitute.cis,
        withdrawn=withdrawn,
    )
