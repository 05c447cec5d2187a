"""dispense, status, cancel, consent, verify --ledger and ledger verify/export/checkpoint/import,
through the command line: exit codes, JSON on stdout, one line on stderr."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS

PHARMACIST = "10003456786"


def _issued(
    run_cli: Any, key_file: Path, pharmacy_key_file: Path, tmp_path: Path, ledger: Any
) -> dict[str, Any]:
    out = tmp_path / "rx.json"
    result = run_cli(
        "issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file, "--out", out, "-q"
    )
    assert result.code == 0, result
    ident = json.loads(out.read_text())["id"]
    return {
        "rx": out,
        "id": ident,
        "ledger": ledger,
        "key": key_file,
        "pharmacy_key": pharmacy_key_file,
        "tmp": tmp_path,
    }


@pytest.fixture()
def rx(
    tmp_path: Path,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    pharmacy_key_file: Path,
    ledger_backend: Any,
) -> dict[str, Any]:
    """An issued reference prescription and a private ledger of each backend (``--ledger``: a
    file path, or the administrator's URL of a shared ledger)."""
    return _issued(run_cli, key_file, pharmacy_key_file, tmp_path, ledger_backend.location())


@pytest.fixture()
def rx_sqlite(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path, pharmacy_key_file: Path
) -> dict[str, Any]:
    """As ``rx`` with an SQLite file, for the tests that open, copy or damage the file itself
    (their PostgreSQL counterparts are in tests/test_ledger_postgres.py)."""
    return _issued(run_cli, key_file, pharmacy_key_file, tmp_path, tmp_path / "ledger.sqlite3")


def dispense(run_cli: Any, rx: dict[str, Any], *args: Any) -> Any:
    return run_cli(
        "dispense",
        rx["rx"],
        "--trust",
        KEYS / "demo-trust",
        "--ledger",
        rx["ledger"],
        "--pharmacist",
        PHARMACIST,
        "--json",
        "-q",
        *args,
    )


def test_dispense_line_then_all_then_nothing_due(
    run_cli: Any, rx: dict[str, Any], set_clock: Any
) -> None:
    first = dispense(run_cli, rx, "--line", "4", "--quantity", "1", "--pharmacy", "750001232")
    assert first.code == 0, first
    body = json.loads(first.stdout)
    assert body["status"] == "dispensed"
    assert body["dispensed"] == [
        {"seq": 2, "line": 4, "quantity": 1, "substituted": False, "generic": None, "dispensing": 1}
    ]
    everything = json.loads(dispense(run_cli, rx, "--all").stdout)
    assert [(item["line"], item["quantity"]) for item in everything["dispensed"]] == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
    ]
    again = dispense(run_cli, rx, "--all")
    assert again.code == 1
    refused = json.loads(again.stdout)
    assert refused["status"] == "refused" and refused["reasons"][0]["code"] == "renewal_not_due"
    set_clock(dt.datetime.now(dt.UTC) + dt.timedelta(days=28))
    later = dispense(run_cli, rx, "--all")
    assert later.code == 0, later
    assert [item["dispensing"] for item in json.loads(later.stdout)["dispensed"]] == [2, 2, 2]


def test_refusals_have_reason_codes(run_cli: Any, rx: dict[str, Any], set_clock: Any) -> None:
    cases = [
        (["--line", "2", "--substitute", "LÉVOTHYROXINE BIOGARAN"], 1, "substitution_forbidden"),
        (["--line", "4", "--quantity", "3"], 1, "quantity_exceeded"),
    ]
    for args, code, reason in cases:
        result = dispense(run_cli, rx, *args)
        assert result.code == code, (args, result)
        assert json.loads(result.stdout)["reasons"][0]["code"] == reason
    set_clock(dt.datetime.now(dt.UTC) + dt.timedelta(days=100))
    late = dispense(run_cli, rx, "--line", "1")
    assert late.code == 1 and json.loads(late.stdout)["reasons"][0]["code"] == "expired"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--line", "1", "--all"], 2, "--line N"),
        ([], 2, "--line N"),
        (["--line", "9"], 2, "4 line(s)"),
        (["--line", "1", "--pharmacist", "10003456787"], 2, "Luhn"),
        (["--all", "--pharmacy", "123"], 2, "FINESS"),
    ],
)
def test_usage_errors(
    run_cli: Any, rx: dict[str, Any], args: list[str], code: int, message: str
) -> None:
    result = dispense(run_cli, rx, *args)
    assert result.code == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_and_forged_inputs(run_cli: Any, rx_sqlite: dict[str, Any]) -> None:
    rx = rx_sqlite
    missing = dict(rx, rx=rx["tmp"] / "absent.json")
    assert dispense(run_cli, missing, "--all").code == 3
    forged = rx["tmp"] / "forged.json"
    document = json.loads(rx["rx"].read_text())
    head, payload, signature = document["jws"].split(".")
    document["jws"] = ".".join(
        (head, payload, ("A" if signature[0] != "A" else "B") + signature[1:])
    )
    forged.write_text(json.dumps(document))
    result = dispense(run_cli, dict(rx, rx=forged), "--all")
    assert result.code == 1
    assert json.loads(result.stdout)["reasons"][0]["code"] == "signature_invalid"
    assert not rx["ledger"].exists() or rx["id"] not in rx["ledger"].read_bytes().decode("latin-1")


def test_status_and_verify_with_ledger(run_cli: Any, rx: dict[str, Any]) -> None:
    assert dispense(run_cli, rx, "--all").code == 0
    status = run_cli("status", rx["id"], "--ledger", rx["ledger"], "--json")
    assert status.code == 0
    state = json.loads(status.stdout)
    assert [(i["dispensed"], i["remaining"], i["renewals_used"]) for i in state["lines"]] == [
        (1, 2, 0),
        (1, 2, 0),
        (1, 2, 0),
        (2, 0, 0),
    ]
    assert state["lines"][0]["events"][0]["pharmacist"] == PHARMACIST
    grouped = "-".join(rx["id"][i : i + 4] for i in range(0, 16, 4))
    assert run_cli("status", grouped.lower(), "--ledger", rx["ledger"]).code == 0
    assert run_cli("status", "AAAA-BBBB-CCCC-DDDD", "--ledger", rx["ledger"]).code == 2
    verified = run_cli(
        "verify", rx["rx"], "--trust", KEYS / "demo-trust", "--ledger", rx["ledger"], "--json"
    )
    assert verified.code == 0
    assert json.loads(verified.stdout)["dispensing"]["lines"][3]["remaining"] == 0


def test_cancel_export_import(run_cli: Any, rx: dict[str, Any]) -> None:
    assert dispense(run_cli, rx, "--line", "1").code == 0
    exported = rx["tmp"] / "cancel.json"
    result = run_cli(
        "cancel",
        rx["rx"],
        "--key",
        rx["key"],
        "--ledger",
        rx["ledger"],
        "--reason",
        "Erreur de posologie",
        "--out",
        exported,
        "--json",
    )
    assert result.code == 0, result
    assert json.loads(result.stdout)["status"] == "cancelled"
    refused = dispense(run_cli, rx, "--line", "2")
    assert refused.code == 1 and json.loads(refused.stdout)["reasons"][0]["code"] == "cancelled"
    verified = run_cli(
        "verify", rx["rx"], "--trust", KEYS / "demo-trust", "--ledger", rx["ledger"], "--json"
    )
    assert verified.code == 1
    assert [r["code"] for r in json.loads(verified.stdout)["reasons"]] == ["cancelled"]
    # Another pharmacy imports the cancellation before ever seeing the prescription.
    other = rx["tmp"] / "other.sqlite3"
    imported = run_cli("ledger", "import", exported, "--ledger", other, "--json")
    assert imported.code == 0, imported
    elsewhere = dispense(run_cli, dict(rx, ledger=other), "--all")
    assert elsewhere.code == 1 and json.loads(elsewhere.stdout)["reasons"][0]["code"] == "cancelled"
    # By identifier, once the ledger knows the prescription: recording it again changes nothing.
    again = run_cli(
        "cancel",
        rx["id"],
        "--key",
        rx["key"],
        "--ledger",
        rx["ledger"],
        "--reason",
        "doublon",
        "--json",
    )
    assert again.code == 0 and json.loads(again.stdout)["recorded"] == []


def _other_prescriber(tmp: Path, demo_authority: Any) -> Path:
    from eprescrire import keys

    now = dt.datetime.now(dt.UTC)
    other = keys.new_prescriber(
        demo_authority,
        name="Dr Autre",
        rpps="10003456786",
        specialty="Médecine générale",
        not_before=now,
        days=30,
    )
    path = tmp / "other.p12"
    keys.save_pkcs12(path, other, b"demo-only", "other")
    return path


def test_cancel_and_status_need_the_signing_key(
    run_cli: Any, rx: dict[str, Any], demo_authority: Any
) -> None:
    other = _other_prescriber(rx["tmp"], demo_authority)
    assert dispense(run_cli, rx, "--all").code == 0
    forged = rx["tmp"] / "forged-cancel.json"
    result = run_cli(
        "cancel",
        rx["id"],
        "--key",
        other,
        "--ledger",
        rx["ledger"],
        "--reason",
        "x",
        "--out",
        forged,
    )
    assert result.code == 1
    assert (
        run_cli(
            "status", rx["id"], "--ledger", rx["ledger"], "--as-prescriber", "--key", other
        ).code
        == 1
    )
    mine = run_cli(
        "status",
        rx["id"],
        "--ledger",
        rx["ledger"],
        "--as-prescriber",
        "--key",
        rx["key"],
        "--json",
    )
    assert mine.code == 0 and json.loads(mine.stdout)["lines"][0]["dispensed"] == 1
    # The patient now opposes sharing: the prescriber sees the prescription, not the dispensing.
    assert (
        run_cli(
            "consent",
            rx["id"],
            "--oppose",
            "--ledger",
            rx["ledger"],
            "--key",
            rx["pharmacy_key"],
            "--trust",
            KEYS / "demo-trust",
        ).code
        == 0
    )
    hidden = run_cli(
        "status",
        rx["id"],
        "--ledger",
        rx["ledger"],
        "--as-prescriber",
        "--key",
        rx["key"],
        "--json",
    )
    view = json.loads(hidden.stdout)
    assert hidden.code == 0 and "withheld" in view and view["share_opposition"] is True
    assert all("dispensed" not in item and "events" not in item for item in view["lines"])
    assert view["fully_dispensed"] is None and view["first_dispensed_at"] is None
    assert "fully dispensed" not in hidden.stderr and "RPPS" not in hidden.stderr
    assert (
        "dispensed"
        in json.loads(run_cli("status", rx["id"], "--ledger", rx["ledger"], "--json").stdout)[
            "lines"
        ][0]
    )
    assert (
        run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledger"], "--key", rx["key"]).code
        == 0
    )
    shown = run_cli(
        "status",
        rx["id"],
        "--ledger",
        rx["ledger"],
        "--as-prescriber",
        "--key",
        rx["key"],
        "--json",
    )
    assert "withheld" not in json.loads(shown.stdout)


def test_ledger_verify_export_checkpoint(run_cli: Any, rx_sqlite: dict[str, Any]) -> None:
    rx = rx_sqlite
    assert dispense(run_cli, rx, "--all").code == 0
    assert run_cli("ledger", "verify", "--ledger", rx["ledger"]).code == 0
    point = rx["tmp"] / "head.json"
    assert (
        run_cli(
            "ledger",
            "checkpoint",
            "--ledger",
            rx["ledger"],
            "--key",
            rx["pharmacy_key"],
            "--out",
            point,
        ).code
        == 0
    )
    checked = run_cli(
        "ledger",
        "verify",
        "--ledger",
        rx["ledger"],
        "--checkpoint",
        point,
        "--trust",
        KEYS / "demo-trust",
        "--json",
    )
    assert checked.code == 0 and json.loads(checked.stdout)["checkpoint"]["ok"] is True
    lines = run_cli("ledger", "export", "--ledger", rx["ledger"]).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    rows = list(
        csv.DictReader(
            io.StringIO(
                run_cli("ledger", "export", "--ledger", rx["ledger"], "--format", "csv").stdout
            )
        )
    )
    assert [row["kind"] for row in rows] == ["prescription"] + ["dispensing"] * 4
    assert json.loads(rows[1]["body"])["line"] == 1
    older = rx["tmp"] / "older.sqlite3"
    shutil.copyfile(rx["ledger"], older)
    db = sqlite3.connect(older)
    db.execute("DROP TRIGGER records_no_delete")
    db.execute("DELETE FROM records WHERE seq = 5")
    db.commit()
    db.close()
    truncated = run_cli(
        "ledger", "verify", "--ledger", older, "--checkpoint", point, "--trust", KEYS / "demo-trust"
    )
    assert truncated.code == 1 and "truncated" in truncated.stdout
    db = sqlite3.connect(older)
    db.execute("DROP TRIGGER records_no_update")
    db.execute(
        "UPDATE records SET body = replace(body, '\"quantity\":1', '\"quantity\":3') WHERE seq = 3"
    )
    db.commit()
    db.close()
    tampered = run_cli("ledger", "verify", "--ledger", older, "--json")
    assert tampered.code == 1
    assert json.loads(tampered.stdout)["first_bad_record"] == 3
    assert "first bad record: 3" in tampered.stderr
    assert run_cli("ledger", "verify", "--ledger", rx["tmp"] / "absent.sqlite3").code == 4


def test_console_script_dispense(rx: dict[str, Any], cli_env: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "eprescrire"
    command = [
        str(script),
        "dispense",
        str(rx["rx"]),
        "--trust",
        str(KEYS / "demo-trust"),
        "--ledger",
        str(rx["ledger"]),
        "--all",
        "--pharmacist",
        PHARMACIST,
        "--json",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "dispensed"
    assert "DÉLIVRÉE" in first.stderr and "1 boîte" in first.stderr
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert json.loads(second.stdout)["reasons"][0]["code"] == "renewal_not_due"


def test_a_forged_copy_cannot_take_over_or_cancel_the_prescription(
    run_cli: Any, rx: dict[str, Any]
) -> None:
    """Someone re-signs the same content (same identifier) with a key of their own, from a
    rogue authority: cancelling it must not cancel, nor block, the genuine prescription."""
    import datetime as dt

    from eprescrire import keys, signing

    tmp = rx["tmp"]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rogue = keys.new_authority("Rogue", not_before=start, days=3650)
    mallory = keys.new_prescriber(
        rogue, name="Dr Mallory", rpps="10003456786", specialty="X", not_before=start, days=3650
    )
    genuine = signing.load_document(rx["rx"].read_bytes())
    forged = signing.sign(genuine.prescription, mallory, allow_name_mismatch=True)
    (tmp / "forged.json").write_bytes(forged.to_json_bytes())
    keys.save_pkcs12(tmp / "mallory.p12", mallory, b"demo-only", "Dr Mallory")
    cancel = [
        "cancel",
        tmp / "forged.json",
        "--key",
        tmp / "mallory.p12",
        "--ledger",
        rx["ledger"],
        "--reason",
        "sabotage",
    ]
    refused = run_cli(*cancel, "--trust", KEYS / "demo-trust")
    assert refused.code == 3 and "not a trusted signed prescription" in refused.stderr
    # Without a trust store the cancellation is only kept with its signer: it never applies.
    assert run_cli(*cancel).code == 0
    dispensed = dispense(run_cli, rx, "--line", "1")
    assert dispensed.code == 0, dispensed
    status = run_cli("status", rx["id"], "--ledger", rx["ledger"], "--json", "-q")
    assert json.loads(status.stdout)["cancelled"] is None
    # The genuine prescriber can still cancel.
    genuine_cancel = run_cli(
        "cancel",
        rx["rx"],
        "--key",
        rx["key"],
        "--ledger",
        rx["ledger"],
        "--reason",
        "erreur",
        "--trust",
        KEYS / "demo-trust",
    )
    assert genuine_cancel.code == 0, genuine_cancel
    assert dispense(run_cli, rx, "--line", "2").code == 1


def test_bad_ledgers_and_batches_are_clear_errors(run_cli: Any, rx_sqlite: dict[str, Any]) -> None:
    rx = rx_sqlite
    import sqlite3

    tmp = rx["tmp"]
    (tmp / "empty.sqlite3").write_bytes(b"")
    empty = run_cli("ledger", "verify", "--ledger", tmp / "empty.sqlite3")
    assert empty.code == 4 and "not an eprescrire ledger" in empty.stderr
    assert (tmp / "empty.sqlite3").read_bytes() == b""  # a read never turns a file into a ledger
    # A record body that this version never writes: the ledger is corrupt (exit 4), no crash.
    assert dispense(run_cli, rx, "--line", "1").code == 0
    with sqlite3.connect(rx["ledger"]) as db:
        db.execute("DROP TRIGGER IF EXISTS records_no_update")
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("UPDATE records SET body = '{\"line\": \"x\"}' WHERE kind = 'dispensing'")
    corrupt = run_cli("status", rx["id"], "--ledger", rx["ledger"])
    assert (
        corrupt.code == 4 and "corrupt" in corrupt.stderr and "internal error" not in corrupt.stderr
    )
    huge = tmp / "huge.csv"
    huge.write_text("input,line\n" + "x" * 200_000 + ",1\n")
    result = run_cli(
        "dispense",
        "--batch",
        huge,
        "--pharmacist",
        PHARMACIST,
        "--ledger",
        tmp / "l2.sqlite3",
        "--trust",
        KEYS / "demo-trust",
    )
    assert result.code == 3 and "internal error" not in result.stderr
    assert run_cli("ledger", "export", "--ledger", rx["ledger"], "--after", "9" * 25).code == 2
