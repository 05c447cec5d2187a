"""Shared set-up for the ledger benchmarks: demo credentials and freshly signed prescriptions."""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eprescrire import dispensing as d  # noqa: E402
from eprescrire import keys, model, signing  # noqa: E402
from eprescrire.keys import kid_of  # noqa: E402

RPPS = "10003456786"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CREDENTIALS = keys.load_pkcs12(ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True)
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


def prescriptions(count: int) -> list[d.Presented]:
    out = []
    for _ in range(count):
        document = signing.sign(model.from_input(FIVE, now=NOW), CREDENTIALS)
        out.append(
            d.Presented(
                document.prescription,
                document.token,
                kid_of(CREDENTIALS.certificate),
                CREDENTIALS.certificate,
            )
        )
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)
