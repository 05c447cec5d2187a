"""French wording for people: statuses, reasons, plurals; reason codes stay for machines."""

from __future__ import annotations

import pytest

from eprescrire import wording
from eprescrire.errors import Reason


def test_every_reason_code_has_a_french_headline() -> None:
    for reason in Reason:
        assert reason.value in wording.REASONS
    assert wording.status("valid") == "VALIDE"
    assert wording.status("rejected") == "REFUSÉE"
    assert wording.status("unreadable") == "ILLISIBLE"
    assert wording.status("dispensed") == "DÉLIVRÉE"


@pytest.mark.parametrize(
    ("count", "unit", "expected"),
    [
        (0, "boîte", "0 boîte"),
        (1, "boîte", "1 boîte"),
        (2, "boîte", "2 boîtes"),
        (2, "boîte de 30", "2 boîtes de 30"),
        (3, "flacon de 125 ml", "3 flacons de 125 ml"),
        (2, "comprimés", "2 comprimés"),
        (2, "tube", "2 tubes"),
        (1, None, "1 unité"),
        (4, None, "4 unités"),
    ],
)
def test_quantities_agree_in_number(count: int, unit: str | None, expected: str) -> None:
    assert wording.quantity(count, unit) == expected


def test_plural_rules() -> None:
    assert wording.plural(1, "jour") == "1 jour"
    assert wording.plural(30, "jour") == "30 jours"
    assert wording.plural(2, "gélule") == "2 gélules"
    assert wording.plural(2, "cheval", "chevaux") == "2 chevaux"
    assert wording.plural(2, "anneau") == "2 anneaux"


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            "quantity_exceeded",
            "line 1: 2 asked, at most 1 may be dispensed now (only 1 remain on the prescription)",
            "quantité supérieure à ce qui peut être délivré — ligne 1 : demandé 2, délivrable "
            "maintenant au plus 1 (il n'en reste que 1 sur l'ordonnance)",
        ),
        (
            "expired",
            "first dispensing was due by 2026-02-25 (3 months after issue)",
            "ordonnance périmée — la première délivrance devait avoir lieu avant le 25/02/2026 "
            "(3 mois après la prescription)",
        ),
        (
            "renewal_not_due",
            "nothing may be dispensed now: line 2: renewal 1 of 2 is due from 2026-12-20 "
            "(the previous dispensing lasts until 2026-12-25)",
            "renouvellement pas encore dû — rien à délivrer maintenant : ligne 2 : le "
            "renouvellement 1 sur 2 est dû à partir du 20/12/2026 (la délivrance précédente "
            "couvre jusqu'au 25/12/2026)",
        ),
        ("signature_invalid", "signature does not match the content", None),
        ("malformed", "number block has extra data", wording.REASONS["malformed"]),
        (
            "unreadable_input",
            "scan.png: no such file",
            "entrée illisible — scan.png : fichier introuvable",
        ),
    ],
)
def test_reasons_read_in_french(code: str, message: str, expected: str | None) -> None:
    text = wording.reason(code, message)
    if expected is None:
        assert text.startswith(wording.REASONS[code]) and "content" not in text
    else:
        assert text == expected


def test_summary_and_dates() -> None:
    assert wording.summary({"valid": 1, "rejected": 2, "unreadable": 0}) == (
        "3 ordonnances vérifiées : 1 valide, 2 refusées, 0 illisible"
    )
    assert wording.date("2026-11-25T10:00:00+01:00") == "25/11/2026"
    assert wording.date("not a date") == "not a date"
