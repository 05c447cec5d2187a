"""``ledger verify`` compares the SQLite ledger's schema with the migrations' and names what is
foreign, missing or altered (exit 1); ``dispense`` confirms what it wrote before reporting it, so a
planted trigger that drops records makes it fail (exit 4) instead of lying."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS

PHARMACIST = "10003456786"


@pytest.fixture()
def ledger(tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path) -> Path:
    rx = tmp_path / "rx.json"
    assert run_cli("issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file,
                   "--out", rx, "-q").code == 0  # fmt: skip
    path = tmp_path / "ledger.sqlite3"
    result = _dispense(run_cli, rx, path, "--line", "4", "--quantity", "1")
    assert result.code == 0, result
    return path


def _dispense(run_cli: Any, rx: Path, path: Path, *args: str) -> Any:
    return run_cli("dispense", rx, "--trust", KEYS / "demo-trust", "--ledger", path,
                   "--pharmacist", PHARMACIST, "-q", *args)  # fmt: skip


def _sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


PLANTED = (
    "CREATE TRIGGER t BEFORE INSERT ON records WHEN NEW.kind='dispensing' "
    "BEGIN SELECT RAISE(IGNORE); END"
)

CASES = {
    "planted trigger": ((PLANTED,), "foreign trigger t on records"),
    "dropped append-only trigger": (
        ("DROP TRIGGER records_no_update",),
        "trigger records_no_update is missing",
    ),
    "added view": (("CREATE VIEW v AS SELECT seq FROM records",), "foreign view v"),
    "added column": (("ALTER TABLE records ADD COLUMN note TEXT",), "foreign column records.note"),
    "altered column": (
        (
            "PRAGMA writable_schema = ON",
            "UPDATE sqlite_master SET sql = replace(sql, 'kind TEXT NOT NULL', 'kind BLOB') "
            "WHERE name = 'records'",
        ),
        "column records.kind altered: kind BLOB instead of kind TEXT NOT NULL",
    ),
    "foreign index": (("CREATE INDEX i ON records (kind)",), "foreign index i on records"),
    "dropped index": (
        ("DROP INDEX records_by_prescription",),
        "index records_by_prescription is missing",
    ),
}


def test_an_untouched_ledger_has_the_migrations_schema(ledger: Path, run_cli: Any) -> None:
    result = run_cli("ledger", "verify", "--ledger", ledger, "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["schema"] == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_ledger_verify_names_a_schema_change(name: str, ledger: Path, run_cli: Any) -> None:
    statements, expected = CASES[name]
    _sql(ledger, *statements)
    human = run_cli("ledger", "verify", "--ledger", ledger)
    assert human.code == 1, human
    assert "TAMPERED" in human.stdout and expected in human.stdout, human
    result = run_cli("ledger", "verify", "--ledger", ledger, "--json")
    assert result.code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "tampered" and expected in body["schema"]
    assert any(expected in r["message"] for r in body["reasons"])


def test_a_planted_trigger_makes_dispense_fail_and_write_nothing(
    ledger: Path, run_cli: Any, tmp_path: Path
) -> None:
    _sql(ledger, PLANTED)
    before = sqlite3.connect(ledger).execute("SELECT count(*) FROM records").fetchone()[0]
    for _ in range(3):
        result = _dispense(run_cli, tmp_path / "rx.json", ledger, "--all")
        assert result.code == 4, result
        assert "did not keep the records just written" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    after = sqlite3.connect(ledger).execute("SELECT count(*) FROM records").fetchone()[0]
    assert after == before
    assert run_cli("ledger", "verify", "--ledger", ledger).code == 1
