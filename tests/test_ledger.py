"""The ledger: storage settings, migrations, the hash chain and its tampering, checkpoints,
concurrency and crashes (light versions; bench/ledger_*.py run the heavy ones).

Tests taking ``ledger_backend`` run once per backend (tests/conftest.py, LEDGER_BACKENDS); the
others are about the SQLite file itself (its settings, triggers, and tampering with the file)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eprescrire import dispensing as d
from eprescrire import keys, signing
from eprescrire.errors import VerificationError
from eprescrire.ledger import LedgerError, NewRecord, open_ledger
from eprescrire.ledger import checkpoint as checkpoints
from eprescrire.ledger.sqlite import SQLiteLedger
from eprescrire.ledger.sqlite_migrations import LATEST
from tests.ledger_support import FIVE, presented

RPPS = "10003456786"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture()
def five(issue_document: Callable[..., signing.SignedDocument]) -> d.Presented:
    return presented(issue_document(data=FIVE, now=NOW))


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection, as an attacker with the file would use (triggers dropped)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER IF EXISTS records_no_update")
    db.execute("DROP TRIGGER IF EXISTS records_no_delete")
    return db


def fill(path: Path, document: d.Presented, count: int) -> None:
    with open_ledger(str(path)) as ledger:
        ledger.update(document.prescription.id, lambda h: d.first_sight(h, document))
        for n in range(count - 1):
            ledger.update(
                f"X{n:015d}",
                lambda h, n=n: [NewRecord("consent", {"share_opposition": bool(n % 2), "n": n})],
            )


# --------------------------------------------------------------------------------------------
# Storage


def test_new_ledger_settings(tmp_path: Path) -> None:
    path = tmp_path / "home" / "ledger.sqlite3"
    with SQLiteLedger(path) as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert path.stat().st_mode & 0o777 == 0o600
        db = ledger._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
        assert ledger.schema_version() == LATEST
        versions = [
            r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
        assert versions == list(range(1, LATEST + 1))
        assert len(ledger.ledger_id) == 32
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_reopen_keeps_identity_and_records(ledger_backend: Any, five: d.Presented) -> None:
    with ledger_backend() as ledger:
        ident = ledger.ledger_id
        d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=2), NOW)
    with ledger_backend(create=False) as ledger:
        assert ledger.ledger_id == ident
        assert [r.kind for r in ledger.records()] == ["prescription", "dispensing"]


def test_sqlite_url_opens_the_same_file(tmp_path: Path, five: d.Presented) -> None:
    path = tmp_path / "l.sqlite3"
    with open_ledger(str(path)) as ledger:
        ident = ledger.ledger_id
        d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=2), NOW)
    with open_ledger(f"sqlite://{path}", create=False) as ledger:
        assert ledger.ledger_id == ident
        assert [r.kind for r in ledger.records()] == ["prescription", "dispensing"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_bytes(b"not a database at all" * 100), "unreadable or corrupt"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
            "not an eprescrire ledger",
        ),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["garbage", "other-sqlite", "directory"],
)
def test_unusable_files_are_environment_errors(
    tmp_path: Path, setup: Callable[[Path], Any], message: str
) -> None:
    path = tmp_path / "l.sqlite3"
    setup(path)
    with pytest.raises(LedgerError, match=message) as caught:
        open_ledger(str(path))
    assert caught.value.exit_code == 4


def test_newer_schema_refused_and_missing_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    open_ledger(str(path)).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    with pytest.raises(LedgerError, match="newer"):
        open_ledger(str(path))
    with pytest.raises(LedgerError, match="not found"):
        open_ledger(str(tmp_path / "absent.sqlite3"), create=False)
    with pytest.raises(LedgerError, match="backend"):
        open_ledger("mysql://pharmacie/ledger")


def test_records_are_append_only_through_the_ledger_connection(
    tmp_path: Path, five: d.Presented
) -> None:
    with SQLiteLedger(tmp_path / "l.sqlite3") as ledger:
        d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=1), NOW)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            ledger._db.execute("UPDATE records SET body = '{}' WHERE seq = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            ledger._db.execute("DELETE FROM records")


def test_failed_change_writes_nothing(ledger_backend: Any, five: d.Presented) -> None:
    with ledger_backend() as ledger:
        with pytest.raises(d.Refused):
            d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=6), NOW)
        assert ledger.head() == (0, None)
        assert not ledger.history(five.prescription.id).records


def test_same_identifier_other_content_refused(
    ledger_backend: Any, five: d.Presented, issue_document: Callable[..., signing.SignedDocument]
) -> None:
    other = presented(issue_document(data=FIVE, now=NOW + dt.timedelta(hours=1)))
    clash = d.Presented(
        five.prescription.__class__(**{**other.prescription.__dict__, "id": five.prescription.id}),
        other.token,
        other.kid,
        other.certificate,
    )
    with ledger_backend() as ledger:
        d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=1), NOW)
        with pytest.raises(d.Refused) as caught:
            d.dispense(ledger, clash, d.Request(RPPS, line=1, quantity=1), NOW)
        assert caught.value.code is d.Code.CONFLICTING_RECORD


# --------------------------------------------------------------------------------------------
# Tamper evidence

TAMPERINGS: list[tuple[str, Callable[[sqlite3.Connection, int, random.Random], int]]] = []


def tampering(func: Callable[[sqlite3.Connection, int, random.Random], int]) -> Any:
    TAMPERINGS.append((func.__name__, func))
    return func


@tampering
def edit_body(db: sqlite3.Connection, n: int, rng: random.Random) -> int:
    seq = rng.randint(1, n)
    db.execute(
        "UPDATE records SET body = substr(body, 1, length(body) - 1) || ',\"quantity\":2}' WHERE seq = ?",
        (seq,),
    )
    return seq


@tampering
def edit_time(db: sqlite3.Connection, n: int, rng: random.Random) -> int:
    seq = rng.randint(1, n)
    db.execute(
        "UPDATE records SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = ?", (seq,)
    )
    return seq


@tampering
def delete_inner(db: sqlite3.Connection, n: int, rng: random.Random) -> int:
    seq = rng.randint(1, n - 1)
    db.execute("DELETE FROM records WHERE seq = ?", (seq,))
    return seq


@tampering
def swap(db: sqlite3.Connection, n: int, rng: random.Random) -> int:
    a, b = sorted(rng.sample(range(1, n + 1), 2))
    db.execute("UPDATE records SET seq = -1 WHERE seq = ?", (a,))
    db.execute("UPDATE records SET seq = ? WHERE seq = ?", (a, b))
    db.execute("UPDATE records SET seq = ? WHERE seq = -1", (b,))
    return a


@tampering
def insert_copy(db: sqlite3.Connection, n: int, rng: random.Random) -> int:
    seq = rng.randint(1, n)
    db.execute(
        "INSERT INTO records SELECT ?, kind, prescription_id, recorded_at, body, prev_hash, hash "
        "FROM records WHERE seq = ?",
        (n + 1, seq),
    )
    return n + 1


def test_tampering_is_detected_at_the_first_bad_record(tmp_path: Path, five: d.Presented) -> None:
    base = tmp_path / "base.sqlite3"
    fill(base, five, 60)
    with open_ledger(str(base)) as ledger:
        assert ledger.verify().ok
    rng = random.Random(20260302)
    for round_ in range(20):
        name, tamper = TAMPERINGS[round_ % len(TAMPERINGS)]
        copy = tmp_path / f"t{round_}.sqlite3"
        shutil.copyfile(base, copy)
        db = raw(copy)
        first = tamper(db, 60, rng)
        db.close()
        with open_ledger(str(copy)) as ledger:
            report = ledger.verify()
        assert not report.ok, name
        assert report.first_bad == first, (name, report.problem)


def test_checkpoint_detects_truncation_and_older_copy(
    tmp_path: Path, five: d.Presented, demo_credentials: keys.Credentials
) -> None:
    path = tmp_path / "l.sqlite3"
    fill(path, five, 10)
    older = tmp_path / "older.sqlite3"
    shutil.copyfile(path, older)
    with open_ledger(str(path)) as ledger:
        d.dispense(ledger, five, d.Request(RPPS, line=1, quantity=1), NOW)
        data, saved = checkpoints.write(ledger, demo_credentials, NOW)
        assert saved.seq == 11 and checkpoints.compare(ledger, checkpoints.read(data)) is None
    truncated = tmp_path / "truncated.sqlite3"
    shutil.copyfile(path, truncated)
    db = raw(truncated)
    db.execute("DELETE FROM records WHERE seq = 11")
    db.close()
    for copy in (truncated, older):
        with open_ledger(str(copy)) as ledger:
            report = ledger.verify()
            assert (
                report.problem is None and report.storage_ok
            )  # a shorter chain is still a chain...
            problem = checkpoints.compare(ledger, checkpoints.read(data))
        assert problem is not None and "truncated" in problem  # ...but not the checkpointed one
    forged = bytearray(data)
    forged[forged.index(b'"jws": "') + 40] ^= 1
    with pytest.raises(VerificationError):
        checkpoints.read(bytes(forged))


# --------------------------------------------------------------------------------------------
# Concurrency and crashes (forked processes)

_CTX = multiprocessing.get_context("fork")


def _attempts(path: str, document: d.Presented, count: int, results: Any) -> None:
    ledger = open_ledger(path)
    for _ in range(count):
        try:
            d.dispense(ledger, document, d.Request(RPPS, line=1, quantity=1), NOW)
            results.put("ok")
        except d.Refused as e:
            results.put(e.code.value)
        except Exception as e:
            results.put(f"error: {e}")
    ledger.close()


def test_concurrent_dispensing_never_exceeds(ledger_backend: Any, five: d.Presented) -> None:
    path = ledger_backend.location()
    ledger_backend().close()
    results = _CTX.Queue()
    workers = [_CTX.Process(target=_attempts, args=(path, five, 5, results)) for _ in range(8)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=60) for _ in range(40)]
    for w in workers:
        w.join(timeout=60)
    assert outcomes.count("ok") == 5
    assert set(outcomes) == {"ok", "quantity_exceeded"}
    with open_ledger(path) as ledger:
        state = d.state_of(five.prescription, five.kid, ledger.history(five.prescription.id))
        assert state.lines[0].dispensed == 5
        assert ledger.verify().ok


def _batch(path: str, documents: list[d.Presented], done: Any) -> None:
    ledger = open_ledger(path)
    for document in documents:
        for _attempt in range(2):  # the second attempt must be refused
            try:
                written = d.dispense(ledger, document, d.Request(RPPS), NOW).records
                done.send((document.prescription.id, written[-1].seq, written[-1].hash))
            except d.Refused:
                pass


def test_killed_batches_lose_nothing_reported(
    ledger_backend: Any, issue_document: Callable[..., signing.SignedDocument]
) -> None:
    documents = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(60)]
    path = ledger_backend.location()
    ledger_backend().close()
    rng = random.Random(7)
    reported: list[tuple[str, int, str]] = []
    for _ in range(5):
        receiver, sender = _CTX.Pipe(duplex=False)
        worker = _CTX.Process(target=_batch, args=(path, documents, sender))
        worker.start()
        sender.close()
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join()
        while receiver.poll():
            try:
                reported.append(receiver.recv())
            except EOFError:
                break
        with open_ledger(path) as ledger:
            assert ledger.verify().ok
            for pid, seq, digest in reported:
                record = ledger.record_at(seq)
                assert (
                    record is not None and record.hash == digest and record.prescription_id == pid
                )
            for document in documents:
                state = d.state_of(
                    document.prescription, document.kid, ledger.history(document.prescription.id)
                )
                assert all(ls.dispensed <= ls.prescribed for ls in state.lines)
    assert reported, "the worker was always killed before its first commit"
