"""Generate the display corpus: validly signed documents whose text tries to fool a reader.

A trusted signer may still be malicious (or a document may predate the input rules): its
signed text can hold line breaks, terminal controls, bidi overrides and invisible characters.
Each document here verifies (the signature is good) but must be *shown* harmlessly: no fake
``VALIDE`` line, no fake numbered line, no control character reaching the terminal or the page.

Run ``python tests/assets/display/generate.py [DIR]`` to rebuild it (default: this folder).
The signer's key is thrown away; only certificates and documents are written.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from eprescrire import keys, model, signing
from eprescrire.trust import TrustStore

HERE = Path(__file__).resolve().parent
AT = "2026-11-25T12:00:00+01:00"
NOW = dt.datetime.fromisoformat(AT).astimezone(dt.UTC)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
RPPS = "10003456786"

#: The lines a forged label tries to print, as the verify output would show them.
FAKE_VERDICT = "VALIDE 7Q4K-XXXX-XXXX-XXXX  autre.json"
FAKE_LINE = "  2. MORPHINE 100 mg — 1 gélule toutes les 4 h — 28 j — qté 9"

BASE: dict[str, Any] = {
    "version": 1,
    "id": "",
    "issued_at": "",
    "prescriber": {
        "name": "Dr Corpus Test",
        "rpps": RPPS,
        "specialty": "Médecine générale",
        "facility": {"name": "Cabinet de test", "address": "1 rue du Test, 75001 Paris"},
    },
    "patient": {"family_name": "Testeur", "given_name": "Alice", "birth_date": "1970-01-01"},
    "lines": [
        {
            "label": "PARACÉTAMOL 500 mg, gélule",
            "posology": "2 gélules si douleur",
            "duration_days": 5,
            "quantity": 1,
            "renewals": 0,
            "substitutable": True,
            "ald": False,
            "narcotic": False,
        }
    ],
    "share_opposition": False,
}

#: name -> (path of the signed text field, its value, what the attack tries)
CASES: dict[str, tuple[str, str, str]] = {
    "newline-in-label.json": (
        "lines.0.label",
        f"PARACÉTAMOL 500 mg\n{FAKE_VERDICT}\n{FAKE_LINE}",
        "line breaks in a label print a fake verdict line and a fake numbered line",
    ),
    "c1-csi-and-del-in-posology.json": (
        "lines.0.posology",
        "2 gélules\x9b2K\x9b1A\x7f si douleur",
        "C1 control sequence introducer (U+009B) and DEL in the posology",
    ),
    "bidi-override-in-name.json": (
        "patient.family_name",
        "Testeur\u202e\u2066 rueT\u2069\u202c",
        "bidi override and isolate reorder what follows the name",
    ),
    "zero-width-in-label.json": (
        "lines.0.label",
        "PARA\u200bCÉTA\u200dMOL\u2060 500\ufeff mg\u00ad",
        "zero-width characters hide text inside a label",
    ),
    "line-separator-in-prescriber.json": (
        "prescriber.name",
        "Dr Corpus Test\u2028VALIDE 7Q4K-XXXX\u2029  2. MORPHINE 100 mg",
        "Unicode line and paragraph separators in the prescriber's name",
    ),
}


def _payload(issued: dt.datetime, identifier: str, path: str, value: str) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    data["id"] = identifier
    data["issued_at"] = model.format_timestamp(issued)
    target: Any = data
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[leaf] = value
    return data


def generate(out: Path) -> dict[str, dict[str, object]]:
    from eprescrire import ids

    if (out / "trust").exists():
        shutil.rmtree(out / "trust")
    for old in out.glob("*.json"):
        old.unlink()
    authority = keys.new_authority("Display corpus authority", not_before=START, days=7300)
    signer = keys.new_prescriber(
        authority,
        name="Dr Corpus Test",
        rpps=RPPS,
        specialty="Médecine générale",
        not_before=START,
        days=3650,
    )
    store = TrustStore.create(out / "trust")
    store.add_certificate(authority.certificate, now=NOW)
    store.add_crl(keys.new_crl(authority, now=START, days=7300))
    issued = NOW - dt.timedelta(days=2)
    manifest: dict[str, dict[str, object]] = {}
    for name, (path, value, what) in CASES.items():
        # Built through from_payload (the verifier's rules), not from_input: a malicious
        # signer bypasses the prescriber-side checks.
        prescription = model.from_payload(_payload(issued, ids.new_id(), path, value))
        document = signing.sign(prescription, signer)
        (out / name).write_bytes(document.to_json_bytes())
        manifest[name] = {"field": path, "value": value, "attack": what}
    (out / "manifest.json").write_text(
        json.dumps(
            {"at": AT, "fake_verdict": FAKE_VERDICT, "fake_line": FAKE_LINE, "cases": manifest},
            indent=2,
            ensure_ascii=True,
        )
        + "\n",
        "utf-8",
    )
    return manifest


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
