"""The counter session, driven through a pipe as a USB scanner in keyboard mode drives it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS
from eprescrire import ids, qr, signing
from eprescrire.services import counter

PHARMACIST = "10012345673"
SCRIPT = Path(sys.executable).parent / "eprescrire"


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(SCRIPT), "counter", "--trust", str(KEYS / "demo-trust"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )


def _next_json(process: subprocess.Popen[bytes], timeout: float = 60) -> Any:
    """The next NDJSON line, read while stdin stays open: the verdict comes at once."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no verdict before the next line was typed"
    return json.loads(process.stdout.readline())


@pytest.fixture()
def document(issue_document: Callable[..., signing.SignedDocument]) -> signing.SignedDocument:
    return issue_document()


def test_scanner_lines_get_their_verdicts_at_once(
    document: signing.SignedDocument, cli_env: dict[str, str], tmp_path: Path
) -> None:
    code = qr.encode(document)
    garbled = code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
    typed = ids.grouped(document.prescription.id).lower().replace("0", "o")
    process = _start("--json", env=cli_env)
    assert process.stdin is not None
    expected = [
        (code.encode() + b"\r", "valid", None),  # a scanner ending codes with CR
        (code.encode() + b"\n", "valid", None),  # ... with LF
        (code.encode() + b"\r\n", "valid", None),  # ... with CR LF (no empty line between)
        (b"https://example.org/rdv?id=42\r\n", "unreadable", "not_a_prescription"),
        (b"HC1:6BFOXN%TS3DH0YOJ58S\n", "unreadable", "not_a_prescription"),
        (garbled.encode() + b"\r", "rejected", None),
        (typed.encode() + b"\n", "unreadable", "unreadable_input"),  # no ledger: say what to do
    ]
    verdicts = []
    for raw, status, reason in expected:
        process.stdin.write(raw)
        process.stdin.flush()
        verdict = _next_json(process)
        verdicts.append(verdict)
        assert verdict["status"] == status, verdict
        if reason:
            assert verdict["reasons"][0]["code"] == reason
    assert verdicts[0]["id"] == document.prescription.id
    assert verdicts[5]["reasons"][0]["code"] in ("signature_invalid", "malformed")
    assert "--ledger" in verdicts[6]["reasons"][0]["message"]
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1  # one rejected among them
    summary = err.decode().strip().splitlines()[-1]
    assert summary == "7 ordonnances vérifiées : 3 valides, 1 refusée, 3 illisibles"


def test_human_verdicts_in_french_with_ledger_and_typed_identifier(
    document: signing.SignedDocument, cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "rx.json").write_bytes(document.to_json_bytes())
    ledger = tmp_path / "ledger.sqlite3"
    code = qr.encode(document)
    typed = " " + ids.grouped(document.prescription.id).lower() + " "
    session = "\r\n".join([code, "+1:1", str(tmp_path / "rx.json"), typed, "", "n'importe quoi"])
    result = subprocess.run(
        [
            str(SCRIPT),
            "counter",
            "--trust",
            str(KEYS / "demo-trust"),
            "--ledger",
            str(ledger),
            "--pharmacist",
            PHARMACIST,
        ],
        input=(session + "\r").encode(),
        capture_output=True,
        timeout=120,
        env={**os.environ, **cli_env},
    )
    out = result.stdout.decode()
    assert result.returncode == 3, result.stderr  # the last line is unreadable
    grouped = ids.grouped(document.prescription.id)
    assert out.count(f"VALIDE {grouped}") == 3  # the code, the signed file, the typed number
    assert f"DÉLIVRÉE {grouped}" in out and "✓ ligne 1 : 1 boîte de 30" in out
    assert "Délivrance   : jamais délivrée" in out
    assert "ligne 1 : délivré 1 sur 3" in out
    assert "ILLISIBLE  stdin:4" in out
    assert "ce n'est pas une ordonnance" in out
    err = result.stderr.decode()
    assert "3 ordonnances" not in err and "4 ordonnances vérifiées" in err
    assert "1 délivrance, 0 refusée" in err


def test_read_lines_cuts_at_cr_lf_and_crlf_across_reads() -> None:
    read, write = os.pipe()
    os.write(write, b"a\rb\nc\r")
    os.write(write, b"\nd\r\n\ne")
    os.close(write)
    assert list(counter.read_lines(read, chunk=2)) == [b"a", b"b", b"c", b"d", b"", b"e"]
    os.close(read)


def test_dispensing_needs_a_valid_prescription_shown(
    demo_trust: Any, tmp_path: Path, document: signing.SignedDocument
) -> None:
    from eprescrire.errors import UsageError
    from eprescrire.ledger import open_ledger

    with open_ledger(str(tmp_path / "l.sqlite3")) as book:
        session = counter.Session(demo_trust, ledger=book, pharmacist=PHARMACIST)
        with pytest.raises(UsageError, match="scanner"):
            session.dispense("+")
        assert session.check(b"") == []
        [verdict] = session.check(qr.encode(document).encode())
        assert verdict.status == "valid"
        done = session.dispense("+")
        assert done.exit_code == 0 and done.result["status"] == "dispensed"
        again = session.dispense("+")
        assert again.exit_code == 1 and again.result["reasons"][0]["code"] == "renewal_not_due"
        # The number typed from the paper: the ledger's copy, verified again, and its state.
        [typed] = session.check(ids.grouped(document.prescription.id).lower().replace("-", " "))
        assert typed.status == "valid" and typed.id == document.prescription.id
        assert typed.dispensing and typed.dispensing["lines"][0]["dispensed"] == 1
        assert session.dispense("+1").result["reasons"][0]["code"] == "renewal_not_due"
        assert session.counts == {"valid": 2, "rejected": 0, "unreadable": 0}
