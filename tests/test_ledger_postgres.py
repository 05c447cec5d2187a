"""The shared ledger on PostgreSQL: the interface's behaviour, what the database enforces for
each role (plain SQL, expecting a database error), concurrency without a global lock, lost
connections, tampering, checkpoints, client-certificate authentication, import from SQLite and
the schema's fitness for Citus."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from eprescrire import dispensing as d
from eprescrire import keys, signing
from eprescrire.ledger import LedgerError, open_ledger, postgres
from eprescrire.ledger import checkpoint as checkpoints
from eprescrire.ledger.postgres import PostgresLedger
from eprescrire.ledger.postgres_migrations import (
    DISTRIBUTED,
    DISTRIBUTION_COLUMN,
    LATEST,
    REFERENCE,
)
from tests.ledger_support import FIVE, presented
from tests.postgres_support import Server, Site, issue, server

RPPS = "10003456786"  # the demo prescriber
OTHER_RPPS = "10012345673"
PHARMACIST_A = "10000000007"
PHARMACIST_B = "10000000015"
FINESS_A = "750001232"
FINESS_B = "750001240"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pg() -> Server:
    return server()


@pytest.fixture()
def ledger_url(pg: Server) -> Iterator[str]:
    url = pg.fresh_ledger()
    yield url
    pg.drop(url)


@pytest.fixture()
def five(issue_document: Callable[..., signing.SignedDocument]) -> d.Presented:
    return presented(issue_document(data=FIVE, now=NOW))


@pytest.fixture()
def sites(pg: Server, ledger_url: str) -> dict[str, Site]:
    return {
        "a": pg.site(ledger_url, "pharma_a", "pharmacy", finess=FINESS_A, rpps=PHARMACIST_A),
        "b": pg.site(ledger_url, "pharma_b", "pharmacy", finess=FINESS_B),
        "doctor": pg.site(ledger_url, "dr_martin", "prescriber", rpps=RPPS),
        "other_doctor": pg.site(ledger_url, "dr_autre", "prescriber", rpps=OTHER_RPPS),
        "auditor": pg.site(ledger_url, "audit", "auditor"),
    }


def request_a(**kw: Any) -> d.Request:
    return d.Request(PHARMACIST_A, pharmacy=FINESS_A, **kw)


def request_b(**kw: Any) -> d.Request:
    return d.Request(PHARMACIST_B, pharmacy=FINESS_B, **kw)


# --------------------------------------------------------------------------------------------
# The interface on PostgreSQL


def test_init_is_idempotent_and_newer_schema_refused(pg: Server, ledger_url: str) -> None:
    before, after, ledger_id = postgres.initialise(ledger_url)
    assert (before, after) == (LATEST, LATEST)
    with open_ledger(ledger_url) as ledger:
        assert isinstance(ledger, PostgresLedger)
        assert ledger.ledger_id == ledger_id
        assert "postgres:***@" in ledger.location
    with psycopg.connect(ledger_url, autocommit=True) as db:
        db.execute("INSERT INTO ledger.schema_migrations (version, description) VALUES (99, 'x')")
    with pytest.raises(LedgerError, match="newer"):
        open_ledger(ledger_url)
    with pytest.raises(LedgerError, match="newer"):
        postgres.initialise(ledger_url)


def test_uninitialised_database_and_bad_password(pg: Server) -> None:
    url = pg.url(pg.create_database())
    try:
        with pytest.raises(LedgerError, match="ledger init"):
            open_ledger(url, create=False)
        wrong = url.replace(url.split(":")[2].split("@")[0], "not-the-password-s3cret")
        with pytest.raises(LedgerError) as caught:
            open_ledger(wrong)
        assert "s3cret" not in str(caught.value)
        assert "***" in str(caught.value)
    finally:
        pg.drop(url)


def test_redact() -> None:
    assert postgres.redact("postgresql://u:pw@h:5/db?sslmode=require&password=x") == (
        "postgresql://u:***@h:5/db?sslmode=require&password=***"
    )
    assert postgres.redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_dispense_status_cancel_consent_as_sites(
    sites: dict[str, Site], five: d.Presented, demo_credentials: keys.Credentials
) -> None:
    with open_ledger(sites["a"].url) as a:
        outcome = d.dispense(a, five, request_a(line=1, quantity=2), NOW)
        assert [r.kind for r in outcome.records] == ["prescription", "dispensing"]
        assert outcome.state is not None and outcome.state.lines[0].remaining == 3
        with pytest.raises(d.Refused) as refused:
            d.dispense(a, five, request_a(line=1, quantity=4), NOW)
        assert refused.value.code is d.Code.QUANTITY_EXCEEDED
    with open_ledger(sites["b"].url) as b:
        outcome = d.dispense(b, five, request_b(line=1, quantity=3), NOW)
        assert outcome.state is not None and outcome.state.lines[0].dispensed == 5
        history = b.history(five.prescription.id)
        assert [r.body.get("pharmacy") for r in history.of_kind("dispensing")] == [
            FINESS_A,
            FINESS_B,
        ]
    with open_ledger(sites["doctor"].url) as doctor:
        seen = doctor.history(five.prescription.id)
        assert len(seen.of_kind("dispensing")) == 2  # no opposition: the prescriber follows
    with open_ledger(sites["auditor"].url) as auditor:
        report = auditor.verify()
        assert report.ok, report
        assert report.records == 3
        assert [r.seq for r in auditor.records()] == sorted(r.seq for r in history.records)


def test_failed_change_writes_nothing(sites: dict[str, Site], five: d.Presented) -> None:
    with open_ledger(sites["a"].url) as a:

        def boom(history: Any) -> list[Any]:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            a.update(five.prescription.id, boom)
        assert a.history(five.prescription.id).records == ()
        d.dispense(a, five, request_a(line=2), NOW)  # the connection is still usable
        assert len(a.history(five.prescription.id).records) == 2


def test_write_after_the_sessions_prepared_statements_are_gone(
    sites: dict[str, Site], five: d.Presented
) -> None:
    with open_ledger(sites["a"].url) as a:
        assert isinstance(a, PostgresLedger)
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        a._db.execute("DEALLOCATE ALL")  # as DISCARD ALL or a pooler would
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        assert len(a.history(five.prescription.id).of_kind("dispensing")) == 2


# --------------------------------------------------------------------------------------------
# A prescription's first write in one round trip


_LEDGER_ID = "SELECT value FROM ledger.meta WHERE key = 'ledger_id'"


def _counting(ledger: PostgresLedger, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The queries the ledger sends from now on (each one round trip)."""
    sent: list[bytes] = []
    send = ledger._run

    def run(query: bytes) -> Any:
        sent.append(query)
        return send(query)

    monkeypatch.setattr(ledger, "_run", run)
    return sent


def _warm(ledger: PostgresLedger, documents: list[d.Presented], request: d.Request) -> None:
    """Two writes: the second reserves the sequence numbers of the session's first writes."""
    for document in documents:
        d.dispense(ledger, document, request, NOW)
    assert ledger._spare


def test_first_write_of_a_prescription_is_one_round_trip(
    sites: dict[str, Site],
    issue_document: Callable[..., signing.SignedDocument],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(5)]
    with open_ledger(sites["a"].url) as a:
        assert isinstance(a, PostgresLedger)
        one = d.dispense(a, documents[0], request_a(line=1), NOW)  # a session's first write
        assert a._spare == []  # reserves nothing more: a command that writes once wastes none
        _warm(a, documents[1:2], request_a(line=1))
        spare = list(a._spare)
        assert len(spare) == 62 and spare == sorted(spare) and spare[0] > one.records[-1].seq
        sent = _counting(a, monkeypatch)
        outcomes = [d.dispense(a, doc, request_a(line=1, quantity=2), NOW) for doc in documents[2:]]
        assert len(sent) == 3 and all(
            q.startswith(b"BEGIN; EXECUTE eprescrire_append") for q in sent
        )
        assert [r.seq for o in outcomes for r in o.records] == spare[:6]
        for document, outcome in zip(documents[2:], outcomes, strict=True):
            assert [r.kind for r in outcome.records] == ["prescription", "dispensing"]
            assert outcome.records[0].prev_hash == postgres.genesis(
                a.ledger_id, document.prescription.id
            )
            history = a.history(document.prescription.id)
            assert history.records == outcome.records
            assert outcome.state == d.state_of(document.prescription, document.kid, history)
            assert outcome.state is not None and outcome.state.lines[0].dispensed == 2
        # The next write of such a chain takes numbers drawn after its head's lock.
        later = d.dispense(a, documents[2], request_a(line=1, quantity=1), NOW)
        assert later.records[0].seq > max(spare)
    with open_ledger(sites["auditor"].url) as auditor:
        report = auditor.verify()
        assert report.ok and report.records == 11, report


def test_first_write_on_a_chain_already_written_reads_the_history(
    sites: dict[str, Site],
    five: d.Presented,
    issue_document: Callable[..., signing.SignedDocument],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another pharmacy dispensed the paper first: the one-round-trip write is refused by the
    database (nothing written), the rules decide again on the real history, and the sequence
    numbers the attempt took are used by the next first write."""
    warm = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(3)]
    with open_ledger(sites["b"].url) as b:
        d.dispense(b, five, request_b(line=1, quantity=4), NOW)
    with open_ledger(sites["a"].url) as a:
        assert isinstance(a, PostgresLedger)
        _warm(a, warm[:2], request_a(line=1))
        spare = list(a._spare)
        sent = _counting(a, monkeypatch)
        with pytest.raises(d.Refused) as refused:  # 4 + 2 > 5, seen on the real history
            d.dispense(a, five, request_a(line=1, quantity=2), NOW)
        assert refused.value.code == d.Code.QUANTITY_EXCEEDED
        outcome = d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        assert [r.kind for r in outcome.records] == ["dispensing"]
        assert sent[0].startswith(b"BEGIN; EXECUTE eprescrire_append")
        assert sent[1].startswith(b"BEGIN; EXECUTE eprescrire_open_write")
        assert a._spare[: len(spare)] == spare  # the refused attempts' numbers are kept
        a._hits = 1.0  # (two misses in a row: the session would read the history first)
        first = d.dispense(a, warm[2], request_a(line=1), NOW)
        assert [r.seq for r in first.records] == spare[:2]
        state = d.state_of(five.prescription, five.kid, a.history(five.prescription.id))
        assert state.lines[0].dispensed == 5
        # A consent on a prescription the ledger knows is not tried on an empty history.
        d.set_consent(a, five.prescription.id, True, NOW, PHARMACIST_A)
    with open_ledger(sites["auditor"].url) as auditor:
        report = auditor.verify()
        assert report.ok and report.records == 10, report


def test_a_session_whose_first_writes_miss_stops_trying_then_probes(
    sites: dict[str, Site],
    issue_document: Callable[..., signing.SignedDocument],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Renewals: every one-round-trip attempt would find the chain written; after two misses
    the session reads the history first, but for a probe every few writes; probes that hit
    bring the attempts back."""
    renewals = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(12)]
    new = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(32)]
    with open_ledger(sites["b"].url) as b:
        for document in renewals:
            d.dispense(b, document, request_b(line=1, quantity=1), NOW)
    with open_ledger(sites["a"].url) as a:
        assert isinstance(a, PostgresLedger)
        _warm(a, new[:2], request_a(line=1))
        sent = _counting(a, monkeypatch)
        tried = []
        for document in renewals:
            del sent[:]
            d.dispense(a, document, request_a(line=1, quantity=1), NOW)
            tried.append(sent[0].startswith(b"BEGIN; EXECUTE eprescrire_append"))
        assert tried[:2] == [True, True] and 1 <= sum(tried[2:]) <= 4, tried
        one_trip = []
        for document in new[2:]:
            del sent[:]
            d.dispense(a, document, request_a(line=1, quantity=1), NOW)
            one_trip.append(len(sent) == 1)
        assert not all(one_trip) and all(one_trip[-5:]), one_trip
    with open_ledger(sites["auditor"].url) as auditor:
        assert auditor.verify().ok


def test_append_at_position_zero_creates_only_an_empty_chain(
    sites: dict[str, Site], five: d.Presented
) -> None:
    """In plain SQL as a site: a write at position 0 must chain to the prescription's genesis
    hash (40001 otherwise), and appends nothing once the chain has records (NULL, not an
    error: the server does not log the statement, which holds the prescription)."""
    from eprescrire.dispensing.engine import first_sight
    from eprescrire.ledger import History, chain

    pid = five.prescription.id
    body = chain.body_text(first_sight(History(pid, ()), five)[0].body)
    at = "2026-03-02T09:00:00.000000Z"
    with _raw(sites["a"].url) as db:
        ledger_id = db.execute(_LEDGER_ID).fetchone()[0]  # type: ignore[index]

    def first(head: str) -> Callable[[psycopg.Connection[Any]], Any]:
        def append(db: psycopg.Connection[Any]) -> Any:
            seq = db.execute("SELECT seqs[1] FROM ledger.open_write('x', NULL, 1)").fetchone()[0]  # type: ignore[index]
            db.execute("ROLLBACK")  # a sequence number outlives the transaction
            digest = chain.record_hash(head, seq, "prescription", pid, at, body)
            return db.execute(
                "SELECT ledger.append(%s, %s, 0, %s, %s, %s, %s, %s, %s)",
                (pid, uuid.uuid4(), head, [seq], ["prescription"], at, [body], [digest]),
            ).fetchone()[0]  # type: ignore[index]

        return append

    refused = _refused(sites["a"].url, first("0" * 64))
    assert refused.startswith("40001") and "does not follow its chain head" in refused, refused
    with _raw(sites["a"].url) as db:
        assert first(postgres.genesis(ledger_id, pid))(db) == 1
        db.commit()
        assert first(postgres.genesis(ledger_id, pid))(db) is None
        db.commit()
    with open_ledger(sites["auditor"].url) as auditor:
        report = auditor.verify()
        assert report.ok and report.records == 1, report


# --------------------------------------------------------------------------------------------
# What the database itself refuses, as each role, in plain SQL


def _raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=False)


def _append_sql(
    db: psycopg.Connection[Any], ledger_id: str, pid: str, kind: str, body: dict[str, Any]
) -> None:
    """Append one record by hand, correctly chained (so that only the rule under test fails),
    the only way a site has: ``ledger.append``."""
    from eprescrire.ledger import chain

    pos, prev = db.execute("SELECT pos, hash FROM ledger.begin_update(%s)", (pid,)).fetchone()  # type: ignore[misc]
    seq = db.execute("SELECT nextval('ledger.record_seq')").fetchone()[0]  # type: ignore[index]
    text = chain.body_text(body)
    at = "2026-03-02T09:00:00.000000Z"
    digest = chain.record_hash(prev, seq, kind, pid, at, text)
    db.execute(
        "SELECT ledger.append(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (pid, uuid.uuid4(), pos, prev, [seq], [kind], at, [text], [digest]),
    )


def _insert_sql(
    db: psycopg.Connection[Any],
    pid: str,
    kind: str,
    body: dict[str, Any],
    actor: str | None = None,
) -> None:
    """Insert one record straight into ledger.records, correctly chained (how a client of
    schema version 1 wrote, and what no site may do since version 4)."""
    from eprescrire.ledger import chain

    pos, prev = db.execute("SELECT pos, hash FROM ledger.begin_update(%s)", (pid,)).fetchone()  # type: ignore[misc]
    seq = db.execute("SELECT nextval('ledger.record_seq')").fetchone()[0]  # type: ignore[index]
    text = chain.body_text(body)
    at = "2026-03-02T09:00:00.000000Z"
    digest = chain.record_hash(prev, seq, kind, pid, at, text)
    db.execute(
        "INSERT INTO ledger.records (prescription_id, pos, seq, kind, recorded_at, body, prev_hash,"
        " hash, request_id, actor) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s, coalesce(%s, session_user))",
        (pid, pos + 1, seq, kind, at, text, prev, digest, uuid.uuid4(), actor),
    )


def _refused(url: str, statement: Callable[[psycopg.Connection[Any]], Any]) -> str:
    """Run ``statement`` then COMMIT as the role of ``url``; return the database's error."""
    with _raw(url) as db:
        try:
            statement(db)
            db.commit()
        except psycopg.Error as e:
            db.rollback()
            return f"{e.sqlstate}: {e.diag.message_primary}"
    raise AssertionError("the database accepted it")


def _dispensing(line: int, quantity: int, pharmacist: str, pharmacy: str | None) -> dict[str, Any]:
    return {
        "line": line,
        "round": 0,
        "quantity": quantity,
        "days": 2.0,
        "at": "2026-03-02T09:00:00Z",
        "pharmacist": pharmacist,
        "pharmacy": pharmacy,
        "substituted": False,
        "generic": None,
    }


def _prescriber_consent(rpps: str, lane: str | None, opposition: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "share_opposition": opposition,
        "at": "2026-03-02T10:00:00Z",
        "actor": "prescriber",
        "pharmacist": None,
        "pharmacy": None,
        "rpps": rpps,
    }
    return body if lane is None else body | {"lane": lane}


def _admin(pg: Server, ledger_url: str) -> str:
    """A login role of the administrators' group (not the owner, not a superuser)."""
    import secrets

    database = ledger_url.rsplit("/", 1)[1]
    role, password = f"{database}_admin", secrets.token_urlsafe(18)
    with pg.admin() as db:
        db.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' IN ROLE eprescrire_admin")
    return pg.url(database, role, password)


def test_database_refusals_for_each_role(
    pg: Server, sites: dict[str, Site], ledger_url: str, five: d.Presented
) -> None:
    pid = five.prescription.id
    with open_ledger(sites["a"].url) as a:
        d.dispense(a, five, request_a(line=1, quantity=4), NOW)
        ledger_id = a.ledger_id
    a_url, b_url = sites["a"].url, sites["b"].url
    refusals = {
        "pharmacy UPDATE": _refused(
            a_url, lambda db: db.execute("UPDATE ledger.records SET body = body")
        ),
        "pharmacy DELETE": _refused(a_url, lambda db: db.execute("DELETE FROM ledger.records")),
        "pharmacy TRUNCATE": _refused(a_url, lambda db: db.execute("TRUNCATE ledger.records")),
        "pharmacy lists records": _refused(
            a_url, lambda db: db.execute("SELECT * FROM ledger.records")
        ),
        "pharmacy lists prescriptions": _refused(
            a_url, lambda db: db.execute("SELECT * FROM ledger.prescriptions")
        ),
        "pharmacy edits a chain head": _refused(
            a_url, lambda db: db.execute("UPDATE ledger.chain_heads SET pos = 0")
        ),
        "pharmacy INSERTs a record itself (in another site's name)": _refused(
            b_url,
            lambda db: _insert_sql(
                db, pid, "consent", {"share_opposition": False}, actor=sites["a"].role
            ),
        ),
        "administrator INSERTs a record itself": _refused(
            _admin(pg, ledger_url),
            lambda db: _insert_sql(
                db, pid, "dispensing", _dispensing(1, 1, PHARMACIST_A, FINESS_A)
            ),
        ),
        "pharmacy records in another pharmacist's name": _refused(
            a_url,
            lambda db: _append_sql(
                db, ledger_id, pid, "dispensing", _dispensing(1, 1, PHARMACIST_B, FINESS_A)
            ),
        ),
        "pharmacy records in another pharmacy's name": _refused(
            b_url,
            lambda db: _append_sql(
                db, ledger_id, pid, "dispensing", _dispensing(1, 1, PHARMACIST_B, FINESS_A)
            ),
        ),
        "dispensing beyond the prescribed total": _refused(
            b_url,
            lambda db: _append_sql(
                db, ledger_id, pid, "dispensing", _dispensing(1, 7, PHARMACIST_B, FINESS_B)
            ),
        ),
        "dispensing of a line that does not exist": _refused(
            b_url,
            lambda db: _append_sql(
                db, ledger_id, pid, "dispensing", _dispensing(3, 1, PHARMACIST_B, FINESS_B)
            ),
        ),
        "prescriber reads another prescriber's prescription": _refused(
            sites["other_doctor"].url,
            lambda db: db.execute("SELECT * FROM ledger.history(%s)", (pid,)),
        ),
        "prescriber lists records": _refused(
            sites["doctor"].url, lambda db: db.execute("SELECT * FROM ledger.records")
        ),
        "prescriber records a dispensing": _refused(
            sites["doctor"].url,
            lambda db: _append_sql(db, ledger_id, pid, "dispensing", _dispensing(1, 1, RPPS, None)),
        ),
        "prescriber records consent on another prescriber's prescription": _refused(
            sites["other_doctor"].url,
            lambda db: _append_sql(
                db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, None)
            ),
        ),
        "prescriber records consent in another prescriber's name": _refused(
            sites["doctor"].url,
            lambda db: _append_sql(
                db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, None)
            ),
        ),
        "auditor writes": _refused(
            sites["auditor"].url,
            lambda db: _append_sql(db, ledger_id, pid, "consent", {"share_opposition": True}),
        ),
        "auditor deletes": _refused(
            sites["auditor"].url, lambda db: db.execute("DELETE FROM ledger.records")
        ),
        "administrator edits a record": _refused(
            ledger_url, lambda db: db.execute("UPDATE ledger.records SET body = body")
        ),
        "administrator deletes a record": _refused(
            ledger_url, lambda db: db.execute("DELETE FROM ledger.records")
        ),
    }
    # Cancelled by its signer: no dispensing after it, even by hand.
    cancel_body = {"kid": five.kid, "at": "2026-03-02T10:00:00Z", "reason": "erreur", "jws": "x"}
    with _raw(ledger_url) as db:
        _append_sql(db, ledger_id, pid, "cancellation", cancel_body)
        db.commit()
    refusals["dispensing after a cancellation"] = _refused(
        b_url,
        lambda db: _append_sql(
            db, ledger_id, pid, "dispensing", _dispensing(2, 1, PHARMACIST_B, FINESS_B)
        ),
    )
    print(json.dumps(refusals, indent=1, ensure_ascii=False))  # the list in the docs
    for what, error in refusals.items():
        assert error.split(":")[0] in {"42501", "23514", "22023", "40001", "23503"}, (what, error)
    assert (
        "total" in refusals["dispensing beyond the prescribed total"]
        or "prescribed" in refusals["dispensing beyond the prescribed total"]
    )
    assert "cancelled" in refusals["dispensing after a cancellation"]
    assert "own name" in refusals["pharmacy records in another pharmacist's name"]
    assert "own name" in refusals["pharmacy records in another pharmacy's name"]
    assert "append-only" in refusals["administrator edits a record"]
    for who in ("pharmacy", "administrator"):
        what = next(k for k in refusals if k.startswith(f"{who} INSERTs"))
        assert refusals[what].startswith("42501: permission denied"), refusals[what]
    assert (
        "own prescriptions"
        in refusals["prescriber records consent on another prescriber's prescription"]
    )
    assert "own name" in refusals["prescriber records consent in another prescriber's name"]
    # A record is stored under its real author, the session's.
    with _raw(b_url) as db:
        consent = {
            "share_opposition": False,
            "at": "2026-03-02T10:00:00Z",
            "pharmacist": PHARMACIST_B,
        }
        _append_sql(db, ledger_id, pid, "consent", consent)
        db.commit()
    with _raw(sites["auditor"].url) as db:
        actors = db.execute(
            "SELECT kind, actor FROM ledger.records WHERE prescription_id = %s ORDER BY pos", (pid,)
        ).fetchall()
    assert actors[-1] == ("consent", sites["b"].role)
    assert actors[1] == ("dispensing", sites["a"].role)
    # Nothing refused above was written: the chain is intact with its 4 records.
    with open_ledger(sites["auditor"].url) as auditor:
        report = auditor.verify()
        assert report.ok and report.records == 4


def test_prescriber_does_not_see_what_the_patient_opposed(
    sites: dict[str, Site], five: d.Presented
) -> None:
    pid = five.prescription.id
    with open_ledger(sites["a"].url) as a:
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        d.set_consent(a, pid, True, NOW, PHARMACIST_A)
    with _raw(sites["doctor"].url) as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM ledger.history(%s)", (pid,)).fetchall()]
    assert kinds == ["prescription", "consent"]
    with open_ledger(sites["doctor"].url) as doctor:
        state = d.state_of(five.prescription, five.kid, doctor.history(pid))
        assert state.opposition is True
        assert state.lines[0].dispensed == 0
    with open_ledger(sites["a"].url) as a:
        d.set_consent(a, pid, False, NOW, PHARMACIST_A)
    with open_ledger(sites["doctor"].url) as doctor:
        assert len(doctor.history(pid).of_kind("dispensing")) == 1


# --------------------------------------------------------------------------------------------
# Lanes: one identifier, several signers


@pytest.fixture()
def squat(five: d.Presented, demo_authority: keys.Credentials) -> d.Presented:
    """Another trusted prescriber's prescription (one line) signed under ``five``'s identifier."""
    from eprescrire import model

    paul = keys.new_prescriber(
        demo_authority, name="Dr Paul Autre", rpps=OTHER_RPPS, specialty="Médecine générale",
        not_before=NOW - dt.timedelta(days=1), days=800,
    )  # fmt: skip
    data = json.loads(json.dumps(FIVE))
    data["prescriber"] |= {"name": "Dr Paul Autre", "rpps": OTHER_RPPS}
    data["lines"] = data["lines"][:1]
    own = model.to_payload(model.from_input(data, now=NOW))
    squatted = model.from_payload(own | {"id": five.prescription.id})
    return presented(signing.sign(squatted, paul))


def test_lanes_keep_another_signers_prescription_apart(
    sites: dict[str, Site], five: d.Presented, squat: d.Presented
) -> None:
    pid = five.prescription.id
    assert squat.prescription.id == pid and squat.kid != five.kid
    with open_ledger(sites["a"].url) as a:
        first = d.dispense(a, squat, request_a(line=1, quantity=5), NOW)  # all of its line 1
        assert first.notes == ()
        ledger_id = a.ledger_id
    with open_ledger(sites["b"].url) as b:  # the genuine one is not blocked
        genuine = d.dispense(b, five, request_b(line=1, quantity=5), NOW)
        assert genuine.state is not None and genuine.state.lines[0].dispensed == 5
        assert genuine.notes and "different key" in genuine.notes[0]
    b_url = sites["b"].url

    def dispensing(lane: str, line: int) -> dict[str, Any]:
        return _dispensing(line, 1, PHARMACIST_B, FINESS_B) | {"lane": lane}

    refusals = {
        "beyond the genuine lane's total": _refused(
            b_url, lambda db: _append_sql(db, ledger_id, pid, "dispensing", dispensing(five.kid, 1))
        ),
        "beyond the other lane's total": _refused(
            b_url,
            lambda db: _append_sql(db, ledger_id, pid, "dispensing", dispensing(squat.kid, 1)),
        ),
        "a line the other lane does not have": _refused(
            b_url,
            lambda db: _append_sql(db, ledger_id, pid, "dispensing", dispensing(squat.kid, 2)),
        ),
        "a lane no prescription was recorded for": _refused(
            b_url, lambda db: _append_sql(db, ledger_id, pid, "dispensing", dispensing("x" * 16, 2))
        ),
        "the other signer cancels the genuine lane": _refused(
            sites["other_doctor"].url,
            lambda db: _append_sql(
                db, ledger_id, pid, "cancellation", {"kid": five.kid, "reason": "x", "jws": "x"}
            ),
        ),
        "the other signer records consent about the genuine lane": _refused(
            sites["other_doctor"].url,
            lambda db: _append_sql(
                db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, five.kid)
            ),
        ),
    }
    print(json.dumps(refusals, indent=1))
    assert "23514" in refusals["beyond the genuine lane's total"]
    assert "23514" in refusals["beyond the other lane's total"]
    assert "no line 2" in refusals["a line the other lane does not have"]
    assert "unrecorded" in refusals["a lane no prescription was recorded for"]
    assert "42501" in refusals["the other signer cancels the genuine lane"]
    assert "42501" in refusals["the other signer records consent about the genuine lane"]
    # Line 2 of the genuine prescription is still there to dispense.
    with _raw(b_url) as db:
        _append_sql(db, ledger_id, pid, "dispensing", dispensing(five.kid, 2))
        db.commit()
    # Each prescriber reads their own lane, and sees that another signer recorded one.
    for site, own, other, dispensed in (
        ("doctor", five, squat, 6),
        ("other_doctor", squat, five, 5),
    ):
        with open_ledger(sites[site].url) as ledger:
            history = ledger.history(pid)
        prescriptions = {r.body["kid"]: r.body for r in history.of_kind("prescription")}
        assert prescriptions[own.kid]["jws"] == own.token
        assert set(prescriptions[other.kid]) == {"kid", "withheld"}, site  # its content: never
        assert sum(r.body["quantity"] for r in history.of_kind("dispensing")) == dispensed
        assert all(r.body.get("lane") == own.kid for r in history.of_kind("dispensing"))
        assert d.lanes.conflict(history, own.kid) is not None
    with open_ledger(sites["auditor"].url) as auditor:
        assert auditor.verify().ok


def test_prescriber_records_consent_for_their_own_prescription_only(
    sites: dict[str, Site], five: d.Presented, squat: d.Presented,
    demo_credentials: keys.Credentials,
) -> None:  # fmt: skip
    from eprescrire import consents

    pid = five.prescription.id
    with open_ledger(sites["a"].url) as a:
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        ledger_id = a.ledger_id
    mine = consents.Actor("prescriber", rpps=RPPS, lane=five.kid)
    signed = consents.signed_body(pid, True, NOW, demo_credentials, mine)
    with open_ledger(sites["doctor"].url) as doctor:
        written = d.set_consent(doctor, pid, True, NOW, None, signed).records
        assert [r.kind for r in written] == ["consent"]
        history = doctor.history(pid)
    assert not history.of_kind("dispensing")  # the patient now opposes: withheld
    assert consents.changes(history)[-1]["signed"] is True
    with _raw(sites["auditor"].url) as db:
        actor, lane = db.execute(
            "SELECT actor, lane FROM ledger.records WHERE kind = 'consent'"
        ).fetchone()  # type: ignore[misc]
    assert (actor, lane) == (sites["doctor"].role, five.kid)
    # Before another signer's lane exists, the other prescriber has no prescription here.
    refused = _refused(
        sites["other_doctor"].url,
        lambda db: _append_sql(
            db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, None)
        ),
    )
    assert refused.startswith("42501") and "own prescriptions" in refused
    # Once their own (squatting) prescription is recorded: their lane, not the genuine one's,
    # nor every lane at once.
    with open_ledger(sites["b"].url) as b:
        d.dispense(b, squat, request_b(line=1, quantity=1), NOW)
    with _raw(sites["other_doctor"].url) as db:
        _append_sql(db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, squat.kid))
        db.commit()
    for lane in (five.kid, None):
        refused = _refused(
            sites["other_doctor"].url,
            lambda db, lane=lane: _append_sql(
                db, ledger_id, pid, "consent", _prescriber_consent(OTHER_RPPS, lane)
            ),
        )
        assert refused.startswith("42501"), lane
    with open_ledger(sites["doctor"].url) as doctor:  # the genuine lane's choice is unchanged
        assert not doctor.history(pid).of_kind("dispensing")


def test_upgrade_to_lanes_keeps_existing_records(
    pg: Server, five: d.Presented, squat: d.Presented, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written at schema version 1 (one prescription per identifier), upgraded by
    `ledger init`: its records and chains kept, its dispensings counted in the first signer's
    lane, the totals still enforced, a second signer's lane possible."""
    from eprescrire.dispensing.engine import first_sight
    from eprescrire.ledger import History
    from eprescrire.ledger.postgres_migrations import MIGRATIONS

    url = pg.url(pg.create_database())
    try:
        monkeypatch.setattr(postgres, "MIGRATIONS", MIGRATIONS[:1])
        monkeypatch.setattr(postgres, "LATEST", 1)
        assert postgres.initialise(url)[1] == 1
        monkeypatch.undo()
        pid = five.prescription.id
        with _raw(url) as db:  # as version 1's client wrote them
            ledger_id = db.execute("SELECT value FROM ledger.meta").fetchone()[0]  # type: ignore[index]
            first = first_sight(History(pid, ()), five)[0]
            _insert_sql(db, pid, "prescription", dict(first.body))
            _insert_sql(db, pid, "dispensing", _dispensing(1, 4, PHARMACIST_A, FINESS_A))
            db.commit()
        before, after, _ = postgres.initialise(url)
        assert (before, after) == (1, LATEST)
        with _raw(url) as db:
            kept = db.execute(
                "SELECT kind, lane FROM ledger.records WHERE prescription_id = %s ORDER BY pos",
                (pid,),
            ).fetchall()
            lanes = db.execute(
                "SELECT kid, first_signer FROM ledger.prescriptions WHERE prescription_id = %s",
                (pid,),
            ).fetchall()
        assert kept == [("prescription", None), ("dispensing", None)]
        assert lanes == [(five.kid, True)]
        b = pg.site(url, "pharma_b", "pharmacy", finess=FINESS_B, rpps=PHARMACIST_B)
        with open_ledger(b.url) as ledger:
            state = d.state_of(five.prescription, five.kid, ledger.history(pid))
            assert state.lines[0].dispensed == 4  # the old dispensing is the first signer's
            with pytest.raises(d.Refused):
                d.dispense(ledger, five, request_b(line=1, quantity=2), NOW)
            d.dispense(ledger, squat, request_b(line=1, quantity=5), NOW)  # a lane of its own
        refused = _refused(
            b.url,
            lambda db: _append_sql(
                db, ledger_id, pid, "dispensing",
                _dispensing(1, 2, PHARMACIST_B, FINESS_B) | {"lane": five.kid},
            ),
        )  # fmt: skip
        assert refused.startswith("23514"), refused  # 4 + 2 > 5, old records counted
        with open_ledger(url) as admin:
            report = admin.verify()
        assert report.ok and report.records == 4, report
    finally:
        pg.drop(url)


def test_upgrade_to_append_only_writes_keeps_records_and_rules(
    pg: Server, five: d.Presented, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written at schema version 3 (sites inserting records themselves, checked by
    triggers), upgraded by `ledger init` to version 4: its records and chains kept, their
    quantities counted against the totals by ledger.append, a site's own INSERT refused."""
    from eprescrire.dispensing.engine import first_sight
    from eprescrire.ledger import History
    from eprescrire.ledger.postgres_migrations import MIGRATIONS

    url = pg.url(pg.create_database())
    try:
        monkeypatch.setattr(postgres, "MIGRATIONS", MIGRATIONS[:3])
        monkeypatch.setattr(postgres, "LATEST", 3)
        assert postgres.initialise(url)[1] == 3
        monkeypatch.undo()
        a = pg.site(url, "pharma_a", "pharmacy", finess=FINESS_A, rpps=PHARMACIST_A)
        pid = five.prescription.id
        with _raw(a.url) as db:  # as a site could at version 3: straight into the table
            first = first_sight(History(pid, ()), five)[0]
            _insert_sql(db, pid, "prescription", dict(first.body))
            dispensing = _dispensing(1, 4, PHARMACIST_A, FINESS_A) | {"lane": five.kid}
            _insert_sql(db, pid, "dispensing", dispensing)
            db.commit()
        with _raw(url) as db:
            ledger_id = db.execute("SELECT value FROM ledger.meta").fetchone()[0]  # type: ignore[index]
        before, after, _ = postgres.initialise(url)
        assert (before, after) == (3, LATEST)
        with _raw(url) as db:
            kept = db.execute(
                "SELECT kind, lane, line, quantity FROM ledger.records"
                " WHERE prescription_id = %s ORDER BY pos",
                (pid,),
            ).fetchall()
        assert kept == [("prescription", five.kid, None, None), ("dispensing", five.kid, 1, 4)]
        with open_ledger(a.url) as ledger:
            with pytest.raises(d.Refused):
                d.dispense(ledger, five, request_a(line=1, quantity=2), NOW)  # 4 + 2 > 5
            d.dispense(ledger, five, request_a(line=1, quantity=1), NOW)
        one_more = _dispensing(1, 1, PHARMACIST_A, FINESS_A) | {"lane": five.kid}
        refused = _refused(
            a.url, lambda db: _append_sql(db, ledger_id, pid, "dispensing", one_more)
        )
        assert refused.startswith("23514") and "6 times, 5 prescribed" in refused, refused
        direct = _refused(a.url, lambda db: _insert_sql(db, pid, "dispensing", one_more))
        assert direct.startswith("42501: permission denied"), direct
        with open_ledger(url) as admin:
            report = admin.verify()
        assert report.ok and report.records == 3 and report.schema == [], report
    finally:
        pg.drop(url)


def test_upgrade_to_one_round_trip_first_writes_keeps_records_and_rules(
    pg: Server,
    five: d.Presented,
    issue_document: Callable[..., signing.SignedDocument],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ledger written at schema version 4, upgraded by `ledger init` to version 5: its
    records and chains kept and counted; a session's first writes then go in one round trip,
    and one on the chain written at version 4 reads its history."""

    url = pg.url(pg.create_database())
    try:
        a = _written_at_version(pg, url, 4, five, 4, monkeypatch)
        before, after, _ = postgres.initialise(url)
        assert (before, after) == (4, LATEST) and LATEST >= 5
        documents = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(3)]
        with open_ledger(a.url) as ledger:
            assert isinstance(ledger, PostgresLedger)
            _warm(ledger, documents[:2], request_a(line=1))
            sent = _counting(ledger, monkeypatch)
            with pytest.raises(d.Refused):
                d.dispense(ledger, five, request_a(line=1, quantity=2), NOW)  # 4 + 2 > 5
            d.dispense(ledger, five, request_a(line=1, quantity=1), NOW)
            assert sent[0].startswith(b"BEGIN; EXECUTE eprescrire_append")
            del sent[:]
            ledger._hits = 1.0  # (after two misses the session would read the history first)
            d.dispense(ledger, documents[2], request_a(line=1), NOW)
            assert len(sent) == 1 and sent[0].startswith(b"BEGIN; EXECUTE eprescrire_append")
        with open_ledger(url) as admin:
            report = admin.verify()
        assert report.ok and report.records == 9 and report.schema == [], report
    finally:
        pg.drop(url)


def _written_at_version(
    pg: Server,
    url: str,
    version: int,
    five: d.Presented,
    quantity: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Site:
    """The database at ``url`` initialised at schema ``version``, a pharmacy site, and the
    prescription ``five`` written as that version's client wrote (through ledger.append):
    its prescription record and a dispensing of ``quantity`` on line 1. Returns the site."""
    from eprescrire.dispensing.engine import first_sight
    from eprescrire.ledger import History
    from eprescrire.ledger.postgres_migrations import MIGRATIONS

    monkeypatch.setattr(postgres, "MIGRATIONS", MIGRATIONS[:version])
    monkeypatch.setattr(postgres, "LATEST", version)
    assert postgres.initialise(url)[1] == version
    monkeypatch.undo()
    a = pg.site(url, "pharma_a", "pharmacy", finess=FINESS_A, rpps=PHARMACIST_A)
    with _raw(url) as db:
        ledger_id = db.execute(_LEDGER_ID).fetchone()[0]  # type: ignore[index]
    pid = five.prescription.id
    with _raw(a.url) as db:
        first = first_sight(History(pid, ()), five)[0]
        _append_sql(db, ledger_id, pid, "prescription", dict(first.body))
        dispensing = _dispensing(1, quantity, PHARMACIST_A, FINESS_A) | {"lane": five.kid}
        _append_sql(db, ledger_id, pid, "dispensing", dispensing)
        db.commit()
    return a


def test_upgrade_to_one_record_check_keeps_records_and_refuses_malformed_ones(
    pg: Server, five: d.Presented, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written at schema version 5, upgraded by `ledger init` to version 6 (a
    record's four checks in one constraint): its records kept and verified; a record of an
    unknown kind, with a malformed hash or at position 0 is still refused by the table."""
    from eprescrire.ledger import chain

    url = pg.url(pg.create_database())
    try:
        a = _written_at_version(pg, url, 5, five, 2, monkeypatch)
        pid = five.prescription.id
        before, after, _ = postgres.initialise(url)
        assert (before, after) == (5, LATEST) and LATEST >= 6
        with open_ledger(a.url) as ledger:
            d.dispense(ledger, five, request_a(line=1, quantity=1), NOW)
        with _raw(url) as db:
            constraints = {
                name
                for (name,) in db.execute(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'ledger.records'::regclass"
                    " AND contype = 'c'"
                )
            }
        assert constraints == {"records_check"}
        body = _dispensing(1, 1, PHARMACIST_A, FINESS_A)

        def append(kind: str, uppercase: bool) -> Callable[[psycopg.Connection[Any]], Any]:
            def statement(db: psycopg.Connection[Any]) -> None:
                pos, prev = db.execute(
                    "SELECT pos, hash FROM ledger.begin_update(%s)", (pid,)
                ).fetchone()  # type: ignore[misc]
                seq = db.execute("SELECT nextval('ledger.record_seq')").fetchone()[0]  # type: ignore[index]
                text = chain.body_text(body)
                at = "2026-03-02T09:00:00.000000Z"
                digest = chain.record_hash(prev, seq, kind, pid, at, text)
                db.execute(
                    "SELECT ledger.append(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (pid, uuid.uuid4(), pos, prev, [seq], [kind], at, [text],
                     [digest.upper() if uppercase else digest]),
                )  # fmt: skip

            return statement

        for kind, uppercase in (("note", False), ("dispensing", True)):
            refused = _refused(a.url, append(kind, uppercase))
            assert refused.startswith("23514:") and "records_check" in refused, refused
        refused = _refused(
            url,
            lambda db: db.execute(
                "INSERT INTO ledger.records (prescription_id, pos, seq, kind, recorded_at, body,"
                " prev_hash, hash, request_id) VALUES (%s, 0, 1, 'dispensing', 'x', '{}',"
                " repeat('a', 64), repeat('b', 64), %s)",
                ("another", uuid.uuid4()),
            ),
        )
        assert refused.startswith("23514:") and "records_check" in refused, refused
        with open_ledger(url) as admin:
            report = admin.verify()
        assert report.ok and report.records == 3 and report.schema == [], report
    finally:
        pg.drop(url)


# --------------------------------------------------------------------------------------------
# Concurrency: no global lock; one line serialises


def test_one_open_transaction_does_not_block_another_prescription(
    sites: dict[str, Site],
    issue_document: Callable[..., signing.SignedDocument],
) -> None:
    x = presented(issue_document(data=FIVE, now=NOW))
    y = presented(issue_document(data=FIVE, now=NOW))
    held = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold(history: Any) -> list[Any]:
        held.set()
        release.wait(30)
        return d.first_sight(history, x)

    def holder() -> None:
        try:
            with open_ledger(sites["a"].url) as a:
                a.update(x.prescription.id, hold)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        with open_ledger(sites["b"].url) as b:
            b._db.execute("SET lock_timeout = '5s'")
            outcome = d.dispense(b, y, request_b(line=1, quantity=1), NOW)  # completes meanwhile
            assert [r.kind for r in outcome.records] == ["prescription", "dispensing"]
            # The same prescription waits for the holder (here: gives up after the lock timeout).
            b._db.execute("SET lock_timeout = '300ms'")
            with pytest.raises(LedgerError, match="lock timeout"):
                d.dispense(b, x, request_b(line=1, quantity=1), NOW)
    finally:
        release.set()
        thread.join(30)
    assert not errors


def _race(
    url: str,
    document: d.Presented,
    pharmacist: str,
    pharmacy: str,
    results: Any,
    warm: tuple[d.Presented, ...] = (),
    start: Any = None,
) -> None:
    try:
        with open_ledger(url) as ledger:
            request = d.Request(pharmacist, line=1, quantity=1, pharmacy=pharmacy)
            for other in warm:  # sessions with spare sequence numbers: first writes in one trip
                d.dispense(ledger, other, request, NOW)
            if start is not None:
                start.wait(60)
            d.dispense(ledger, document, request, NOW)
        results.put("ok")
    except d.Refused:
        results.put("refused")
    except BaseException as e:  # reported by the parent
        results.put(f"error: {e}")


@pytest.mark.parametrize("sessions", ["new", "warm"])
def test_concurrent_sites_dispense_exactly_the_total(
    sites: dict[str, Site],
    five: d.Presented,
    issue_document: Callable[..., signing.SignedDocument],
    sessions: str,
) -> None:
    """Ten sessions race on a new prescription: new sessions read the history first; warm
    ones (which have written before) each try the one-round-trip first write, one wins."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start = ctx.Barrier(10) if sessions == "warm" else None
    warm = [
        tuple(presented(issue_document(data=FIVE, now=NOW)) for _ in range(2))
        if sessions == "warm"
        else ()
        for _ in range(10)
    ]
    procs = [
        ctx.Process(
            target=_race,
            args=(
                (sites["a"].url, five, PHARMACIST_A, FINESS_A, results, warm[i], start)
                if i % 2
                else (sites["b"].url, five, PHARMACIST_B, FINESS_B, results, warm[i], start)
            ),
        )
        for i in range(10)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 5, outcomes
    with open_ledger(sites["auditor"].url) as auditor:
        assert auditor.verify().ok
        state = d.state_of(five.prescription, five.kid, auditor.history(five.prescription.id))
        assert state.lines[0].dispensed == 5


# --------------------------------------------------------------------------------------------
# Faults


@pytest.mark.parametrize("write", ["history first", "one round trip"])
def test_lost_commit_reply_is_recognised_not_recorded_twice(
    sites: dict[str, Site],
    five: d.Presented,
    issue_document: Callable[..., signing.SignedDocument],
    monkeypatch: pytest.MonkeyPatch,
    write: str,
) -> None:
    with open_ledger(sites["a"].url) as a:
        assert isinstance(a, PostgresLedger)
        if write == "one round trip":
            _warm(a, [presented(issue_document(data=FIVE, now=NOW)) for _ in range(2)], request_a())
        send = a._run

        sent: list[bytes] = []

        def lost_reply(query: bytes) -> Any:
            sent.append(query)
            cursor = send(query)
            if query.endswith(b"COMMIT"):  # committed on the server; the client never hears it
                a._db.close()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return cursor

        monkeypatch.setattr(a, "_run", lost_reply)
        outcome = d.dispense(a, five, request_a(line=1, quantity=2), NOW)
        assert [r.kind for r in outcome.records] == ["prescription", "dispensing"]
        assert len(sent) == (1 if write == "one round trip" else 2), sent
        history = a.history(five.prescription.id)  # reconnected
        assert len(history.of_kind("dispensing")) == 1
        assert len(history.records) == 2


def test_connection_killed_mid_dispensing_leaves_nothing(
    pg: Server, sites: dict[str, Site], five: d.Presented
) -> None:
    with open_ledger(sites["a"].url) as a:
        pid = a._db.info.backend_pid

        def killed(history: Any) -> list[Any]:
            with pg.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return d.first_sight(history, five)

        with pytest.raises(LedgerError, match="connection"):
            a.update(five.prescription.id, killed)
        assert a.history(five.prescription.id).records == ()  # reconnects; nothing half-written
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
    with open_ledger(sites["auditor"].url) as auditor:
        assert auditor.verify().ok


def test_unreachable_ledger_is_an_environment_error(pg: Server) -> None:
    with pytest.raises(LedgerError, match="cannot reach"):
        open_ledger("postgresql://nobody:secret-pw@127.0.0.1:9/none?connect_timeout=2")


# --------------------------------------------------------------------------------------------
# Tampering as the superuser, checkpoints


def _fill(url: str, documents: list[d.Presented]) -> None:
    with open_ledger(url) as ledger:
        for doc in documents:
            d.dispense(ledger, doc, d.Request(PHARMACIST_A, line=1, quantity=1), NOW)
            d.dispense(ledger, doc, d.Request(PHARMACIST_A, line=1, quantity=1), NOW)


def _superuser(url: str) -> psycopg.Connection[Any]:
    db = psycopg.connect(url, autocommit=True)
    db.execute("SET session_replication_role = replica")  # triggers off: only a superuser can
    return db


TAMPERING = {
    "edit a body": "UPDATE ledger.records SET body = replace(body, '\"quantity\":1', '\"quantity\":2') WHERE seq = {seq}",
    "edit a time": "UPDATE ledger.records SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = {seq}",
    "delete an inner record": "DELETE FROM ledger.records WHERE seq = {seq}",
    "swap two records": "UPDATE ledger.records SET pos = pos + 1000 WHERE prescription_id = (SELECT prescription_id FROM ledger.records WHERE seq = {seq}) AND pos IN (2, 3); UPDATE ledger.records SET pos = CASE pos WHEN 1002 THEN 3 ELSE 2 END WHERE pos IN (1002, 1003)",
    "insert a copy": "INSERT INTO ledger.records SELECT prescription_id, pos + 100, seq, kind, recorded_at, body, prev_hash, hash, actor, request_id, line, quantity FROM ledger.records WHERE seq = {seq}",
    "delete the last record": "DELETE FROM ledger.records WHERE seq = {seq}",
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_detected_and_named(
    pg: Server, ledger_url: str, issue_document: Callable[..., signing.SignedDocument], how: str
) -> None:
    documents = [presented(issue_document(data=FIVE, now=NOW)) for _ in range(3)]
    _fill(ledger_url, documents)
    with open_ledger(ledger_url) as ledger:
        assert ledger.verify().ok
        target = documents[1].prescription.id
        seqs = [r.seq for r in ledger.history(target).records]
    victim = seqs[-1] if how == "delete the last record" else seqs[1]
    with _superuser(ledger_url) as db:
        db.execute(TAMPERING[how].format(seq=victim).encode())
    with open_ledger(ledger_url) as ledger:
        report = ledger.verify()
    assert not report.ok
    assert report.first_bad in seqs, (how, report)
    assert target in (report.problem or "")


def test_checkpoint_merkle_root_detects_truncation(
    sites: dict[str, Site], ledger_url: str, five: d.Presented, demo_credentials: keys.Credentials
) -> None:
    with open_ledger(sites["a"].url) as a:
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
    with open_ledger(ledger_url) as ledger:
        data, saved = checkpoints.write(ledger, demo_credentials, NOW)
        assert saved.hash is not None and len(saved.hash) == 64
        read = checkpoints.read(data)
        assert checkpoints.compare(ledger, read) is None
    with open_ledger(sites["a"].url) as a:  # later records keep the checkpoint valid
        d.dispense(a, five, request_a(line=2, quantity=1), NOW)
    with open_ledger(ledger_url) as ledger:
        assert checkpoints.compare(ledger, read) is None
    # Cut the tail of the chain *and* its head row, so that the chains alone look complete.
    with _superuser(ledger_url) as db:
        db.execute(
            "DELETE FROM ledger.records WHERE prescription_id = %s AND pos >= 3",
            (five.prescription.id,),
        )
        db.execute(
            "UPDATE ledger.chain_heads h SET pos = r.pos, seq = r.seq, hash = r.hash FROM ledger.records r"
            " WHERE r.prescription_id = h.prescription_id AND r.pos = 2"
        )
    with open_ledger(ledger_url) as ledger:
        assert ledger.verify().ok  # a shorter chain is still a chain...
        problem = checkpoints.compare(ledger, read)  # ...but not the one that was signed
    assert problem is not None and "truncated" in problem


# --------------------------------------------------------------------------------------------
# Client certificates (PostgreSQL `cert`), from the project's authority


def test_site_logs_in_with_its_certificate(
    pg: Server, ledger_url: str, tmp_path: Path, demo_authority: keys.Credentials, five: d.Presented
) -> None:
    pg.enable_tls(demo_authority.key, demo_authority.certificate, tmp_path / "tls")
    database = ledger_url.rsplit("/", 1)[1]
    role = f"{database}_cert_a"
    key, certificate = issue(demo_authority.key, demo_authority.certificate, role)
    assert (
        postgres.add_site(ledger_url, certificate, "pharmacy", finess=FINESS_A, rpps=PHARMACIST_A)
        == role
    )
    url = pg.cert_url(database, role, key, certificate)
    with open_ledger(url) as a:
        d.dispense(a, five, request_a(line=1, quantity=1), NOW)
        assert a._db.info.parameter_status("ssl") in (None, "on")
        assert a._db.pgconn.ssl_in_use
    # A certificate for the same name from another authority is refused by the server.
    rogue = keys.new_authority("Rogue", not_before=NOW - dt.timedelta(days=1), days=30)
    rogue_key, rogue_cert = issue(rogue.key, rogue.certificate, role)
    with pytest.raises(LedgerError, match="cannot reach"):
        open_ledger(pg.cert_url(database, role, rogue_key, rogue_cert))
    # A role named otherwise than its certificate needs a password (SCRAM; no `cert` login).
    with pytest.raises(ValueError, match="password"):
        postgres.add_site(ledger_url, certificate, "pharmacy", role="someone_else", finess=FINESS_B)


# --------------------------------------------------------------------------------------------
# Citus: the schema is distributable by prescription identifier


def test_schema_follows_citus_rules(ledger_url: str) -> None:
    with psycopg.connect(ledger_url) as db:
        tables = {
            r[0]
            for r in db.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'ledger' AND c.relkind = 'r'"
            ).fetchall()
        }
        assert tables == set(DISTRIBUTED) | set(REFERENCE), tables
        for table in DISTRIBUTED:
            keys_ = db.execute(
                "SELECT i.relname, array_agg(a.attname::text) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey)"
                " WHERE n.nspname = 'ledger' AND t.relname = %s AND (x.indisunique OR x.indisprimary)"
                " GROUP BY i.relname",
                (table,),
            ).fetchall()
            assert keys_, f"{table} has no primary key"
            for index, columns in keys_:
                assert DISTRIBUTION_COLUMN in columns, (
                    f"{table}.{index} lacks {DISTRIBUTION_COLUMN}"
                )
        foreign = db.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text, conkey, confkey"
            " FROM pg_constraint WHERE contype = 'f' AND connamespace = 'ledger'::regnamespace"
        ).fetchall()
        for child, parent, _ckey, _pkey in foreign:
            # Allowed only to a reference table, or between distributed tables on the column.
            assert parent.split(".")[-1] in REFERENCE, (child, parent)


# --------------------------------------------------------------------------------------------
# Import from SQLite


def test_import_sqlite_keeps_records_verifiable(
    pg: Server,
    ledger_url: str,
    tmp_path: Path,
    five: d.Presented,
    issue_document: Callable[..., signing.SignedDocument],
) -> None:
    other = presented(issue_document(data=FIVE, now=NOW))
    with open_ledger(str(tmp_path / "pharmacy.sqlite3")) as local:
        d.dispense(local, five, d.Request(PHARMACIST_A, line=1, quantity=2), NOW)
        d.dispense(local, other, d.Request(PHARMACIST_A, line=2, quantity=1), NOW)
        d.set_consent(local, other.prescription.id, True, NOW, PHARMACIST_A)
        with open_ledger(ledger_url) as shared:
            assert postgres.import_sqlite(local, shared) == (5, 2)
            assert postgres.import_sqlite(local, shared) == (0, 2)  # again: nothing twice
            report = shared.verify()
            assert report.ok, report
            state = d.state_of(five.prescription, five.kid, shared.history(five.prescription.id))
            assert state.lines[0].dispensed == 2
            # The imported copy of the SQLite chain is checked too.
            with _superuser(ledger_url) as db:
                db.execute(
                    "UPDATE ledger.imported_records SET body = body || ' ' WHERE source_seq = 2"
                )
            report = shared.verify()
            assert not report.ok and "imported ledger" in (report.problem or "")


# --------------------------------------------------------------------------------------------
# The command line against the shared ledger


def test_cli_init_add_site_dispense_verify_import(
    pg: Server,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    pharmacy_key_file: Path,
    tmp_path: Path,
    demo_authority: keys.Credentials,
) -> None:
    from conftest import KEYS

    admin = pg.url(pg.create_database())
    try:
        first = run_cli("ledger", "init", "--ledger", admin, "--json")
        assert first.code == 0, first
        assert json.loads(first.stdout)["schema"] == LATEST
        assert "***" in json.loads(first.stdout)["ledger"]
        again = run_cli("ledger", "init", "--ledger", admin)
        assert again.code == 0 and "already at" in again.stderr + again.stdout
        # A site from its certificate (client-certificate login).
        pg.enable_tls(demo_authority.key, demo_authority.certificate, tmp_path / "tls")
        database = admin.rsplit("/", 1)[1]
        role = f"{database}_cli_a"
        site_key, site_cert = issue(demo_authority.key, demo_authority.certificate, role)
        pem = tmp_path / "site.pem"
        from cryptography.hazmat.primitives import serialization

        pem.write_bytes(site_cert.public_bytes(serialization.Encoding.PEM))
        added = run_cli(
            "ledger",
            "add-site",
            pem,
            "--kind",
            "pharmacy",
            "--finess",
            FINESS_A,
            "--rpps",
            "10003456786",
            "--ledger",
            admin,
            "--json",
        )
        assert added.code == 0, added
        site_url = pg.cert_url(database, role, site_key, site_cert)
        b = pg.site(admin, "cli_b", "pharmacy", finess=FINESS_B)
        rx = tmp_path / "rx.json"
        assert (
            run_cli(
                "issue",
                KEYS.parent / "examples" / "reference.toml",
                "--key",
                key_file,
                "--out",
                rx,
                "-q",
            ).code
            == 0
        )

        def dispense(url: str, finess: str, *extra: Any) -> Any:
            return run_cli(
                "dispense",
                rx,
                "--trust",
                KEYS / "demo-trust",
                "--ledger",
                url,
                "--pharmacist",
                "10003456786",
                "--pharmacy",
                finess,
                "--json",
                "-q",
                *extra,
            )

        done = dispense(site_url, FINESS_A, "--all")
        assert done.code == 0, done
        # Pharmacy B: the same paper is not dispensed again.
        twice = dispense(b.url, FINESS_B, "--all")
        assert twice.code == 1, twice
        assert json.loads(twice.stdout)["status"] == "refused"
        assert run_cli("ledger", "verify", "--ledger", admin, "-q").code == 0
        head = tmp_path / "head.json"
        written = run_cli(
            "ledger",
            "checkpoint",
            "--key",
            pharmacy_key_file,
            "--out",
            head,
            "--ledger",
            admin,
            "-q",
        )
        assert written.code == 0, written
        checked = run_cli(
            "ledger",
            "verify",
            "--ledger",
            admin,
            "--checkpoint",
            head,
            "--trust",
            KEYS / "demo-trust",
            "--json",
        )
        assert checked.code == 0 and json.loads(checked.stdout)["checkpoint"]["ok"], checked
        # Unreachable: verify gives the offline verdict with a warning; dispense fails closed.
        down = "postgresql://x:pw@127.0.0.1:9/none?connect_timeout=2"
        offline = run_cli("verify", rx, "--trust", KEYS / "demo-trust", "--ledger", down, "--json")
        assert offline.code == 0, offline
        verdict = json.loads(offline.stdout)
        assert verdict["status"] == "valid"
        assert any("dispensing state unknown" in w for w in verdict["warnings"])
        closed = dispense(down, FINESS_B, "--all")
        assert closed.code == 4, closed
        assert len(closed.stderr.strip().splitlines()) == 1 and "pw" not in closed.stderr
        # A pharmacy's SQLite ledger moves in.
        local = tmp_path / "local.sqlite3"
        other = tmp_path / "rx2.json"
        assert (
            run_cli(
                "issue",
                KEYS.parent / "examples" / "reference.toml",
                "--key",
                key_file,
                "--out",
                other,
                "-q",
            ).code
            == 0
        )
        assert (
            run_cli(
                "dispense",
                other,
                "--trust",
                KEYS / "demo-trust",
                "--ledger",
                local,
                "--pharmacist",
                "10003456786",
                "--all",
                "-q",
            ).code
            == 0
        )
        moved = run_cli("ledger", "import", local, "--ledger", admin, "--json")
        assert moved.code == 0, moved
        assert json.loads(moved.stdout)["prescriptions"] == 1
        assert run_cli("ledger", "verify", "--ledger", admin, "-q").code == 0
        status = run_cli("status", json.loads(other.read_text())["id"], "--ledger", admin, "--json")
        assert status.code == 0, status
        # The prescriber, as their own role, cancels a prescription; no pharmacy dispenses it.
        doctor = pg.site(admin, "cli_dr", "prescriber", rpps=RPPS)
        third = tmp_path / "rx3.json"
        assert (
            run_cli(
                "issue",
                KEYS.parent / "examples" / "reference.toml",
                "--key",
                key_file,
                "--out",
                third,
                "-q",
            ).code
            == 0
        )
        cancelled = run_cli(
            "cancel",
            third,
            "--key",
            key_file,
            "--ledger",
            doctor.url,
            "--reason",
            "Erreur",
            "--trust",
            KEYS / "demo-trust",
            "--json",
        )
        assert cancelled.code == 0, cancelled
        rx = third
        refused = dispense(b.url, FINESS_B, "--all")
        assert refused.code == 1 and "cancelled" in refused.stdout, refused
        # A pharmacy cannot run the auditor's full verification: an environment error, not "tampered".
        assert run_cli("ledger", "verify", "--ledger", b.url, "-q").code == 4
    finally:
        pg.drop(admin)


def _closed_port() -> int:
    """A local TCP port nothing listens on (a stopped server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_counter_with_an_unreachable_ledger_verifies_offline_and_dispenses_nothing(
    run_cli: Any, cli_env: dict[str, str], key_file: Path, tmp_path: Path
) -> None:
    from conftest import KEYS, CliResult

    rx = tmp_path / "rx.json"
    issued = run_cli(
        "issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file, "--out", rx, "-q"
    )
    assert issued.code == 0, issued
    down = f"postgresql://site:s3cret-pw@127.0.0.1:{_closed_port()}/ledger?connect_timeout=2"
    trust = ("--trust", KEYS / "demo-trust")

    def counter(*args: Any, stdin: bytes) -> Any:
        import os
        import subprocess
        import sys

        script = Path(sys.executable).parent / "eprescrire"
        done = subprocess.run(
            [str(script), "counter", *map(str, args)],
            input=stdin,
            capture_output=True,
            timeout=120,
            env={**os.environ, **cli_env},
        )
        return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())

    # Verification: the offline signature verdict, with a warning; exit 0.
    seen = counter(*trust, "--ledger", down, "--json", stdin=f"{rx}\n".encode())
    assert seen.code == 0, seen
    verdict = json.loads(seen.stdout.splitlines()[0])
    assert verdict["status"] == "valid" and verdict["dispensing"] is None
    assert any("dispensing state unknown" in w for w in verdict["warnings"]), verdict
    assert "s3cret" not in seen.stdout + seen.stderr
    human = counter(*trust, "--ledger", down, stdin=f"{rx}\n".encode())
    assert human.code == 0 and "état des délivrances inconnu" in human.stdout, human
    # Dispensing fails closed: exit 4, one line, nothing recorded anywhere.
    closed = counter(
        *trust,
        "--ledger",
        down,
        "--pharmacist",
        "10003456786",
        stdin=f"{rx}\n+\n".encode(),
    )
    assert closed.code == 4, closed
    assert len(closed.stderr.strip().splitlines()) == 1, closed
    assert "cannot dispense" in closed.stderr and "s3cret" not in closed.stderr
    # `dispense` itself fails closed the same way.
    refused = run_cli(
        "dispense", rx, *trust, "--ledger", down, "--pharmacist", "10003456786", "--all"
    )
    assert refused.code == 4 and len(refused.stderr.strip().splitlines()) == 1, refused
    assert "s3cret" not in refused.stderr


def test_counter_ledger_lost_mid_session(
    pg: Server, ledger_url: str, five: d.Presented, demo_trust: Any
) -> None:
    """A ledger lost after the session started: the next verdict warns, the next dispensing
    fails closed; once the server answers again, the session goes on."""
    from eprescrire import qr
    from eprescrire.errors import EnvironmentProblem
    from eprescrire.services import counter

    site = pg.site(ledger_url, "counter_a", "pharmacy", rpps=PHARMACIST_A)
    assert five.certificate is not None
    document = signing.SignedDocument(five.token, (five.certificate,), five.prescription)
    code = qr.encode(document)
    with open_ledger(site.url) as book:
        session = counter.Session(demo_trust, ledger=book, pharmacist=PHARMACIST_A, at=NOW)
        assert session.check(code)[0].dispensing is not None
        assert session.dispense("+1:1").exit_code == 0
        # Every session of the site ended by the server, and logins refused for a moment.
        with pg.admin() as db:
            db.execute(f'ALTER ROLE "{site.role}" NOLOGIN')
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (site.role,),
            )
        verdict = session.check(code)[0]
        assert verdict.status == "valid" and verdict.dispensing is None
        assert any("dispensing state unknown" in w for w in verdict.warnings)
        with pytest.raises(EnvironmentProblem):
            session.dispense("+1:1")
        with pg.admin() as db:
            db.execute(f'ALTER ROLE "{site.role}" LOGIN')
        again = session.check(code)[0]
        assert again.dispensing is not None and not again.warnings
        assert session.dispense("+1:1").exit_code == 0
    with open_ledger(ledger_url) as ledger:
        assert [r.kind for r in ledger.history(five.prescription.id).records] == [
            "prescription",
            "dispensing",
            "dispensing",
        ]


def test_add_site_from_a_keys_prescriber_certificate(
    pg: Server, ledger_url: str, run_cli: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A prescriber's certificate from ``keys prescriber`` names a person, not a role: the site
    gets the role given and a SCRAM password, its RPPS read from the certificate."""
    from conftest import KEYS

    authority = tmp_path / "authority.p12"
    shutil.copyfile(KEYS / "demo-authority.p12", authority)
    authority.chmod(0o600)
    p12 = tmp_path / "dr_durand.p12"
    made = run_cli(
        "keys",
        "prescriber",
        "--authority",
        authority,
        "--name",
        "Dr Paul Durand",
        "--rpps",
        "10000000025",
        "--specialty",
        "Cardiologie",
        "--out",
        p12,
        "-q",
    )
    assert made.code == 0, made
    pem = p12.with_suffix(".pem")
    assert pem.exists()
    database = ledger_url.rsplit("/", 1)[1]
    role = f"{database}_dr_durand"
    # Without a password such a role could not log in at all: a clear usage error.
    no_password = run_cli(
        "ledger", "add-site", pem, "--kind", "prescriber", "--role", role, "--ledger", ledger_url
    )
    assert no_password.code == 2, no_password
    assert len(no_password.stderr.strip().splitlines()) == 1 and "password" in no_password.stderr
    secret = tmp_path / "password"
    secret.write_text("Un-mot-de-passe-de-test\n")
    secret.chmod(0o600)
    added = run_cli(
        "ledger",
        "add-site",
        pem,
        "--kind",
        "prescriber",
        "--role",
        role,
        "--password-file",
        secret,
        "--ledger",
        ledger_url,
        "--json",
    )
    assert added.code == 0, added
    assert "Un-mot-de-passe" not in added.stdout + added.stderr
    with pg.admin() as db, psycopg.connect(ledger_url) as ledger_db:
        row = ledger_db.execute(
            "SELECT kind, rpps, finess FROM ledger.sites WHERE role_name = %s", (role,)
        ).fetchone()
        assert row == ("prescriber", "10000000025", None)
        member = db.execute(
            "SELECT pg_has_role(%s, 'eprescrire_prescriber', 'MEMBER'),"
            " pg_has_role(%s, 'eprescrire_cert', 'MEMBER')",
            (role, role),
        ).fetchone()
        assert member == (True, False)  # SCRAM only: its certificate's CN is not the role
    url = pg.url(database, role, "Un-mot-de-passe-de-test")
    with open_ledger(url, create=False) as ledger:
        assert ledger.history("AAAAAAAAAAAAAAAAAAAAAAAAAA").records == ()
