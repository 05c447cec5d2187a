"""``ledger verify`` compares the shared PostgreSQL ledger's catalogue with the one its
migrations define and names what is foreign, missing or altered (exit 1), whatever an attacker
with the database superuser's access planted in plain SQL; ``dispense`` reads back, before
COMMIT, what it appended, so a planted trigger that drops records makes it fail (exit 4) with
nothing written instead of reporting a dispensing that is not there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import KEYS
from eprescrire.ledger import postgres_schema
from tests.postgres_support import Server, server

PHARMACIST = "10003456786"


@pytest.fixture(scope="module")
def pg() -> Server:
    return server()


@pytest.fixture()
def ledger_url(pg: Server) -> Iterator[str]:
    url = pg.fresh_ledger()
    yield url
    pg.drop(url)


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        for statement in statements:
            db.execute(statement.encode())


def _records(url: str) -> int:
    with psycopg.connect(url) as db:
        return int(db.execute("SELECT count(*) FROM ledger.records").fetchone()[0])  # type: ignore[index]


def _dispense(run_cli: Any, rx: Path, url: str, *args: str) -> Any:
    return run_cli("dispense", rx, "--trust", KEYS / "demo-trust", "--ledger", url,
                   "--pharmacist", PHARMACIST, "-q", *args)  # fmt: skip


@pytest.fixture()
def rx(tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path) -> Path:
    path = tmp_path / "rx.json"
    assert run_cli("issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file,
                   "--out", path, "-q").code == 0  # fmt: skip
    return path


def _drop_dispensings(name: str) -> tuple[str, ...]:
    return (
        "CREATE OR REPLACE FUNCTION public.drop_dispensings() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN IF NEW.kind = 'dispensing' THEN RETURN NULL; END IF; RETURN NEW; END $$",
        f"CREATE TRIGGER {name} BEFORE INSERT ON ledger.records"
        " FOR EACH ROW EXECUTE FUNCTION public.drop_dispensings()",
    )


CASES = {
    "planted trigger": (_drop_dispensings("a_hide"), "foreign trigger a_hide on records"),
    "planted rule": (
        (
            "CREATE RULE hide AS ON INSERT TO ledger.records WHERE NEW.kind = 'dispensing'"
            " DO INSTEAD NOTHING",
        ),
        "foreign rule hide on records",
    ),
    "disabled append-only trigger": (
        ("ALTER TABLE ledger.records DISABLE TRIGGER records_no_update",),
        "trigger records_no_update on records is disabled",
    ),
    "dropped append-only trigger": (
        ("DROP TRIGGER records_no_truncate ON ledger.records",),
        "trigger records_no_truncate on records is missing",
    ),
    "added view": (
        ("CREATE VIEW ledger.every_record AS SELECT seq, body FROM ledger.records",),
        "foreign view every_record",
    ),
    "altered column type": (
        ("ALTER TABLE ledger.records ALTER COLUMN quantity TYPE bigint",),
        "column records.quantity altered: bigint instead of integer",
    ),
    "altered column nullability": (
        ("ALTER TABLE ledger.records ALTER COLUMN body DROP NOT NULL",),
        "column records.body altered: text instead of text not null",
    ),
    "added column": (
        ("ALTER TABLE ledger.records ADD COLUMN note text",),
        "foreign column records.note",
    ),
    "row level security enabled": (
        ("ALTER TABLE ledger.records ENABLE ROW LEVEL SECURITY",),
        "table records altered: row level security on instead of row level security off",
    ),
    "added policy": (
        (
            "CREATE POLICY hide ON ledger.records AS RESTRICTIVE FOR SELECT"
            " USING (kind <> 'dispensing')",
        ),
        "foreign policy hide on records",
    ),
    "replaced function": (
        (
            "CREATE OR REPLACE FUNCTION ledger.append_only() RETURNS trigger LANGUAGE plpgsql"
            " SET search_path = pg_catalog AS $$ BEGIN RETURN OLD; END $$",
        ),
        "function append_only() altered",
    ),
    "dropped index": (("DROP INDEX ledger.records_by_seq",), "index records_by_seq is missing"),
    "granted INSERT": (
        ("GRANT INSERT ON ledger.records TO eprescrire_pharmacy",),
        "privileges table records altered",
    ),
    "dropped check": (
        ("ALTER TABLE ledger.records DROP CONSTRAINT records_check",),
        "constraint records.records_check is missing",
    ),
    "weakened check": (
        (
            "CREATE OR REPLACE FUNCTION ledger.record_ok(pos integer, kind text,"
            " prev_hash text, hash text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE"
            " PARALLEL SAFE AS $$ BEGIN RETURN true; END $$",
        ),
        "function record_ok(pos integer, kind text, prev_hash text, hash text) altered",
    ),
}


def test_reference_is_what_the_migrations_create(ledger_url: str) -> None:
    with psycopg.connect(ledger_url) as db:
        described = postgres_schema.describe(db)
        assert postgres_schema.problems(db) == []
    # When a migration changes the schema, this prints the new reference to paste.
    assert described == postgres_schema.EXPECTED, json.dumps(described, indent=4, sort_keys=True)


def test_fresh_ledger_verifies_clean(ledger_url: str, run_cli: Any, rx: Path) -> None:
    assert _dispense(run_cli, rx, ledger_url, "--line", "4", "--quantity", "1").code == 0
    result = run_cli("ledger", "verify", "--ledger", ledger_url, "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["schema"] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_names_what_differs(ledger_url: str, run_cli: Any, case: str) -> None:
    statements, named = CASES[case]
    _sql(ledger_url, *statements)
    result = run_cli("ledger", "verify", "--ledger", ledger_url, "--json")
    assert result.code == 1, result
    schema = json.loads(result.stdout)["schema"]
    assert any(named in problem for problem in schema), (named, schema)
    human = run_cli("ledger", "verify", "--ledger", ledger_url)
    assert human.code == 1 and named in human.stdout, human


# A trigger before the ledger's own (the chain head does not move), one after it (the head
# moves, the record is dropped all the same), a rule (nothing is inserted at all).
PLANTED = {
    "trigger before": _drop_dispensings("a_hide"),
    "trigger after": _drop_dispensings("zz_hide"),
    "rule": CASES["planted rule"][0],
}


@pytest.mark.parametrize("how", sorted(PLANTED))
def test_dispense_with_a_planted_trigger_fails_and_writes_nothing(
    ledger_url: str, run_cli: Any, rx: Path, how: str
) -> None:
    _sql(ledger_url, *PLANTED[how])
    result = _dispense(run_cli, rx, ledger_url, "--line", "4", "--quantity", "1")
    assert result.code == 4, result
    assert len(result.stderr.strip().splitlines()) == 1, result
    assert "did not keep" in result.stderr and "Traceback" not in result.stderr
    assert _records(ledger_url) == 0
    with psycopg.connect(ledger_url) as db:
        assert db.execute("SELECT count(*) FROM ledger.chain_heads WHERE pos > 0").fetchone() == (
            0,
        )


def test_prescription_bodies_are_stored_with_lz4_where_the_server_has_it(
    ledger_url: str, run_cli: Any, rx: Path
) -> None:
    with psycopg.connect(ledger_url, autocommit=True) as db:
        try:
            db.execute("CREATE TEMP TABLE lz4_probe (x text COMPRESSION lz4)")
            expected = ("l", "lz4")
        except psycopg.errors.FeatureNotSupported:
            expected = ("", "pglz")  # a server built without lz4 keeps the default
    assert _dispense(run_cli, rx, ledger_url, "--line", "1").code == 0
    with psycopg.connect(ledger_url) as db:
        column = db.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'ledger.records'::regclass AND attname = 'body'"
        ).fetchone()[0]  # type: ignore[index]
        stored = db.execute(
            "SELECT pg_column_compression(body) FROM ledger.records WHERE kind = 'prescription'"
        ).fetchone()[0]  # type: ignore[index]
    assert (column.strip("\x00"), stored) == expected


def test_failed_statements_are_not_logged_with_their_text(pg: Server, ledger_url: str) -> None:
    """A refused write's statement holds the prescription: ``ledger init`` (as the superuser)
    sets the ledger database to log a failed statement's error without its text."""

    def setting(url: str) -> str:
        with psycopg.connect(url, autocommit=True) as db:
            return str(db.execute("SHOW log_min_error_statement").fetchone()[0])  # type: ignore[index]

    plain = pg.create_database()
    try:
        assert setting(pg.url(plain)) == "error"  # the server's default
    finally:
        pg.drop(pg.url(plain))
    assert setting(ledger_url) == "panic"
