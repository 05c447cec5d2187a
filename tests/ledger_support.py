"""What the SQLite and PostgreSQL ledger tests share: a five-box prescription and how a signed
document is presented to the dispensing engine."""

from __future__ import annotations

from eprescrire import dispensing as d
from eprescrire import signing
from eprescrire.keys import kid_of

RPPS = "10003456786"

FIVE = {
    "prescriber": {
        "name": "Dr Claire Martin",
        "rpps": RPPS,
        "specialty": "Médecine générale",
        "facility": {"name": "Cabinet", "address": "12 rue de la Roquette, 75011 Paris"},
    },
    "patient": {"family_name": "Durand", "given_name": "Louise", "birth_date": "1956-03-14"},
    "lines": [
        {
            "label": "PARACÉTAMOL 1 g",
            "posology": "1 à 3 par jour",
            "duration_days": 10,
            "quantity": 5,
        },
        {"label": "AMLODIPINE 5 mg", "posology": "1 le matin", "duration_days": 30, "quantity": 1},
    ],
}


def presented(document: signing.SignedDocument) -> d.Presented:
    certificate = document.certificates[0]
    return d.Presented(document.prescription, document.token, kid_of(certificate), certificate)
