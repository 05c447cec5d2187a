"""The drug catalogue (BDPM) as a prescription aid for ``issue`` and ``dispense``.

Which catalogue: ``--drugs PATH``, else ``EPRESCRIRE_DRUGS``, else ``drugs.sqlite3`` under
``EPRESCRIRE_HOME`` when one was imported there (:func:`eprescrire.drugs.open_if_present`).
Without any, both commands behave as without this aid (no check, no warning). A catalogue that
was named (option or environment) but is missing or unreadable is an environment error (exit
4), found once before any input is read.

- ``issue``: :func:`check_before_signing` checks each line (:mod:`eprescrire.drugs.checks`):
  unknown CIS/CIP13, a CIP13 of another CIS, a narcotic drug on a line not marked narcotic, a
  condition's duration limit: exit 3 naming ``lines[N].field``. It fills missing codes and
  returns the warnings (list I/II, hospital-only, withdrawn presentation, ...).
- ``dispense --substitute``: :func:`substitute_check`. A 13-digit substitute is a CIP13: with
  a catalogue it must be the prescribed drug or in one of its generic groups (else refused,
  ``substitution_forbidden``); without one it is accepted with a warning saying it was not
  checked (a pharmacy without the catalogue could otherwise only type the label, which was
  never checked). With a catalogue, a label is checked when it names exactly one drug, and
  accepted with a warning otherwise; without one, a label is recorded as it always was.

``verify`` never opens a catalogue: the paper is proof on its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire.model import Line, Prescription

#: Forked workers (``--jobs``) open their own connection: one per process and catalogue file.
_OPEN: dict[tuple[int, str], Any] = {}

_CIP13 = re.compile(r"\d{13}")


def catalogue_for(option: Path | None) -> Path | None:
    """The catalogue file a command will check against, or None when there is none (see the
    module docstring). Opened once here so that a bad catalogue fails before any work: raises
    CatalogueMissing / CatalogueUnavailable (exit 4)."""
    from eprescrire import drugs

    opened = drugs.open_if_present(option)
    if opened is None:
        return None
    opened.close()
    return drugs.catalogue_path(option).resolve()


def _catalogue(path: Path) -> Any:
    key = (os.getpid(), str(path))
    if key not in _OPEN:
        from eprescrire.drugs.catalogue import open_catalogue

        _OPEN[key] = open_catalogue(path)
    return _OPEN[key]


@dataclass(frozen=True)
class Checked:
    """A prescription checked against the catalogue: with its codes filled, and what the
    prescriber should see (``{"field", "code", "message"}`` objects)."""

    prescription: Prescription
    warnings: tuple[dict[str, str], ...] = ()
    filled: tuple[dict[str, str], ...] = ()


def check_before_signing(
    prescription: Prescription, catalogue: Path | None, source: str | None = None
) -> Checked:
    """Check ``prescription`` against the catalogue file (None: nothing to check). Raises
    ValidationError (exit 3, every field named) on errors."""
    if catalogue is None:
        return Checked(prescription)
    from eprescrire.drugs import checks

    checked, report = checks.check_prescription(prescription, _catalogue(catalogue), source=source)
    return Checked(
        checked,
        tuple(_notice(n) for n in report.warnings),
        tuple(_notice(n) for n in report.filled),
    )


def _notice(notice: Any) -> dict[str, str]:
    return {"field": notice.field, "code": notice.code, "message": notice.message}


# --------------------------------------------------------------------------------------------
# Substitution at the counter


NOT_CHECKED = (
    "substitut {} non vérifié : sans base des médicaments (--drugs, EPRESCRIRE_DRUGS), son "
    "appartenance au groupe générique n'est pas contrôlée"
)
LABEL_NOT_CHECKED = (
    "substitut {} non vérifié : ce libellé ne désigne pas un seul médicament de la base, "
    "donnez son CIP13 pour contrôler le groupe générique"
)


def substitute_check(
    catalogue: Path | None, lines: Sequence[Line], line: int | None, substitute: str | None
) -> tuple[str | None, tuple[str, ...]]:
    """Whether ``substitute`` may replace line ``line`` (from 1) of a prescription.

    Returns (refusal message or None, warnings), both in French for the counter. A line
    marked non substituable and a line number out of range are the dispensing rules' to
    refuse: they are let through here."""
    if substitute is None or line is None or not 1 <= line <= len(lines):
        return None, ()
    prescribed = lines[line - 1]
    if not prescribed.substitutable:
        return None, ()
    text = substitute.strip()
    is_cip13 = _CIP13.fullmatch(text) is not None
    if catalogue is None:  # a label goes unchecked without a catalogue, as it always did
        return None, (NOT_CHECKED.format(text),) if is_cip13 else ()
    from eprescrire.drugs import checks

    opened = _catalogue(catalogue)
    cip13 = text if is_cip13 else _only_presentation(opened, text)
    if cip13 is None:
        return None, (LABEL_NOT_CHECKED.format(text),)
    verdict = checks.substitution_check(
        opened,
        substitute_cip13=cip13,
        prescribed_cis=prescribed.cis,
        prescribed_cip13=prescribed.cip13,
        substitutable=prescribed.substitutable,
        prescribed_label=prescribed.label,
    )
    if not verdict.allowed:
        return verdict.message, ()
    if verdict.withdrawn:
        return None, (f"substitut {text} : présentation retirée du marché",)
    return None, ()


def _only_presentation(catalogue: Any, label: str) -> str | None:
    """A presentation of the one drug ``label`` names, for the group check (any presentation
    of a drug stands for it: the group is the drug's)."""
    candidates = catalogue.match_label(label)
    if len(candidates) != 1:
        return None
    drug = catalogue.drug(candidates[0])
    if drug is None or not drug.presentations:
        return None
    return str(drug.presentations[0].cip13)
