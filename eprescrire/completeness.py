"""What a prescription may lack without being refused, but that a pharmacist will miss.

``issue`` signs such a prescription and warns: a child's weight (doses are checked against
it), the patient's sex (the ordonnance says « le patient » or « la patiente », « né » or
« née »), and the prescriber's phone number (the Code de la santé publique, R.5132-3, wants a
pharmacist able to call the prescriber; the patient's phone is not part of a prescription).
"""

from __future__ import annotations

from eprescrire import model, rules

#: Below this age a patient is a child whose weight the pharmacist expects.
CHILD_AGE = 18


def warnings(p: model.Prescription) -> list[dict[str, str]]:
    """Reason-shaped warnings (``code``, ``message``, ``field``), empty when nothing lacks."""
    out: list[dict[str, str]] = []
    who = p.patient
    issued = rules.local_date(p.issued_at)
    born = who.birth_date
    years = issued.year - born.year - ((issued.month, issued.day) < (born.month, born.day))
    if years < CHILD_AGE and who.weight_kg is None:
        out.append(
            _warning(
                "missing_weight",
                f"the patient is a child ({years} years old) and no weight is given",
                "patient.weight_kg",
            )
        )
    if who.sex is None:
        out.append(
            _warning(
                "missing_sex",
                "the patient's sex is not given: the ordonnance uses neutral wording",
                "patient.sex",
            )
        )
    if not p.prescriber.facility.phone:
        out.append(
            _warning(
                "missing_phone",
                "no phone number for the prescriber: a pharmacist cannot call back",
                "prescriber.facility.phone",
            )
        )
    return out


def _warning(code: str, message: str, field: str) -> dict[str, str]:
    return {"code": code, "message": message, "field": field}
