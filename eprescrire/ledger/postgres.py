"""The shared ledger on PostgreSQL (psycopg 3), behind the same :class:`Ledger` interface.

Every prescription has its own hash chain (``pos`` 1, 2, ...), whose head row in
``ledger.chain_heads`` is the only row a write locks: dispensings of different prescriptions
never wait for each other, those of the same prescription serialise on it. A record still
carries a ledger-wide ``seq`` (from a sequence, for export and naming; gaps are possible, order
between prescriptions is not commit order) and is hashed exactly as in SQLite
(:func:`eprescrire.ledger.chain.record_hash`) but chained to the previous record *of its
prescription*. A checkpoint signs the Merkle root over every chain head (:meth:`head`).

The rules the database enforces on its own (append-only, own name, prescriber reads, totals,
cancellations) are in :mod:`eprescrire.ledger.postgres_migrations`. Each :meth:`update` carries
a random request identifier stored with its records; when the connection is lost during COMMIT
the ledger reconnects and asks whether that request was committed, so a lost reply never turns
into a second dispensing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import select
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eprescrire.ledger import chain, postgres_schema
from eprescrire.ledger.interface import (
    KINDS,
    ChainReport,
    Change,
    History,
    Ledger,
    LedgerError,
    NewRecord,
    Record,
)
from eprescrire.ledger.postgres_migrations import LATEST, MIGRATIONS

CONNECT_TIMEOUT_SECONDS = 10
_RESERVED = 2  # sequence numbers taken with the history (unused ones leave gaps, as sequences do)
_SPARE = 62  # more of them, kept by a session that writes again for its next first writes
# A first write is tried in one round trip while at least this share of the session's recent
# attempts found the chain empty (an average weighting the last attempt by _WEIGHT), and
# otherwise once every _PROBE writes, to notice when they would again.
_SPECULATE = 0.8
_WEIGHT = 0.2
_PROBE = 4
_COLUMNS = "seq, kind, prescription_id, recorded_at, body, prev_hash, hash"
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A write's two statements, prepared once per session (parsed, resolved and planned once).
_PREPARE = (
    b"PREPARE eprescrire_open_write(text, uuid, integer) AS"
    b" SELECT * FROM ledger.open_write($1, $2, $3);"
    b" PREPARE eprescrire_append(text, uuid, integer, text, bigint[], text[], text, text[], text[])"
    b" AS SELECT ledger.append($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


def redact(url: str) -> str:
    """The URL without its password (and without any password= parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unparsable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = re.sub(r"(?i)(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def genesis(ledger_id: str, prescription_id: str) -> str:
    """Where a prescription's chain starts: bound to the ledger and to the prescription."""
    return chain.genesis(f"{ledger_id}/{prescription_id}")


def merkle_root(leaves: list[tuple[str, int, str]]) -> str:
    """SHA-256 Merkle root over ``(prescription_id, pos, hash)`` leaves sorted by identifier;
    an odd node is carried up unchanged. The empty tree's root is SHA-256 of nothing."""
    level = [
        hashlib.sha256(b"\x00" + json.dumps([p, n, h]).encode("utf-8")).digest()
        for p, n, h in sorted(leaves)
    ]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def _record(row: tuple[Any, ...]) -> Record:
    seq, kind, pid, recorded_at, body, prev_hash, digest = row[:7]
    try:
        parsed = json.loads(body)
    except ValueError as e:
        raise LedgerError(f"record {seq} has a body that is not JSON") from e
    return Record(int(seq), kind, pid, recorded_at, parsed, prev_hash, digest)


def _psycopg() -> Any:
    import logging

    # psycopg logs (at WARNING) what it ignores while tearing down a broken pipeline; the
    # command reports the failure itself, in one line.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - a dependency
        raise LedgerError(
            "the PostgreSQL ledger needs psycopg 3 (pip install 'psycopg[binary]')"
        ) from e
    return psycopg


def _one_line(error: BaseException) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(error) or type(error).__name__
    return " ".join(text.split())


class PostgresLedger(Ledger):
    """A shared ledger in a PostgreSQL database. Methods raise :class:`LedgerError` (exit 4)
    when the server is unreachable or refuses; a rule the database enforces surfaces as a
    :class:`LedgerError` naming it."""

    def __init__(
        self, url: str, *, create: bool = True, connect_timeout: int = CONNECT_TIMEOUT_SECONDS
    ):
        self.url = url
        self.location = redact(url)
        self._timeout = connect_timeout
        self._psycopg = _psycopg()
        self._db: Any = None
        self._escaping: Any = None
        self._escaping_for: Any = None
        self._encoding = "utf-8"
        self._prepared_for: Any = None
        # Sequence numbers reserved (through open_write) and not used yet: a first write
        # (:meth:`_first_write`) takes its own from them, without a round trip.
        self._spare: list[int] = []
        self._writes = 0
        self._aborted = False
        # How often the session's recent one-round-trip attempts found the chain empty
        # (weighted average): a miss costs more than a hit saves (the rules run and the
        # records built for nothing, one round trip more), so a session whose writes are
        # mostly renewals or second pharmacies only tries now and then.
        self._hits = 1.0
        self._connect()
        version = self.schema_version()
        if version == 0:
            self.close()
            raise LedgerError(
                f"{self.location} holds no eprescrire ledger: create it with `eprescrire ledger init`"
            )
        if version > LATEST:
            self.close()
            raise LedgerError(
                f"the ledger {self.location} has schema version {version}, newer than this "
                f"eprescrire supports ({LATEST}); upgrade eprescrire"
            )
        if version < LATEST:
            self.close()
            raise LedgerError(
                f"the ledger {self.location} has schema version {version}: upgrade it with "
                f"`eprescrire ledger init` (as its administrator)"
            )
        row = self._query_one("SELECT value FROM ledger.meta WHERE key = 'ledger_id'")
        if row is None:
            self.close()
            raise LedgerError(f"the ledger {self.location} has no identifier")
        self.ledger_id = str(row[0])

    # ------------------------------------------------------------------------- connection

    def _connect(self) -> None:
        try:
            self._db = self._psycopg.connect(
                self.url,
                connect_timeout=self._timeout,
                autocommit=True,
                application_name="eprescrire",
            )
        except self._psycopg.Error as e:
            raise LedgerError(f"cannot reach the ledger {self.location}: {_one_line(e)}") from e
        except ValueError as e:  # a malformed URL
            raise LedgerError(f"invalid ledger URL {self.location}: {e}") from e

    def _fail(self, action: str, e: BaseException) -> LedgerError:
        return LedgerError(f"{action} {self.location}: {_one_line(e)}")

    def _query_one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row
        except self._psycopg.Error as e:
            raise self._fail("cannot read the ledger", e) from e

    def schema_version(self) -> int:
        try:
            exists = self._db.execute(
                "SELECT to_regclass('ledger.schema_migrations') IS NOT NULL"
            ).fetchone()[0]
            if not exists:
                return 0
            row = self._db.execute("SELECT max(version) FROM ledger.schema_migrations").fetchone()
        except self._psycopg.Error as e:
            raise self._fail("cannot read the ledger", e) from e
        return int(row[0] or 0)

    # ------------------------------------------------------------------------- reading

    def history(self, prescription_id: str) -> History:
        self._ensure()
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM ledger.history(%s)", (prescription_id,)
            ).fetchall()
        except self._psycopg.Error as e:
            raise self._fail("cannot read the ledger", e) from e
        return History(prescription_id, tuple(_record(r) for r in rows))

    def records(self, after: int = 0) -> Iterator[Record]:
        try:
            with self._db.transaction(), self._db.cursor(name="eprescrire_export") as cursor:
                cursor.execute(
                    f"SELECT {_COLUMNS} FROM ledger.records WHERE seq > %s ORDER BY seq", (after,)
                )
                for row in cursor:
                    yield _record(row)
        except self._psycopg.Error as e:
            raise self._fail("cannot read the ledger", e) from e

    def _heads(self) -> list[tuple[str, int, str]]:
        rows = self._db.execute(
            "SELECT prescription_id, pos, hash FROM ledger.chain_heads WHERE pos > 0"
        ).fetchall()
        return [(str(p), int(n), str(h)) for p, n, h in rows]

    def head(self) -> tuple[int, str | None]:
        """The highest sequence number and the Merkle root over every prescription's chain
        head (None when empty), read in one snapshot."""
        try:
            with self._db.transaction():
                self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                top = self._db.execute(
                    "SELECT coalesce(max(seq), 0) FROM ledger.records"
                ).fetchone()
                heads = self._heads()
        except self._psycopg.Error as e:
            raise self._fail("cannot read the ledger", e) from e
        return (int(top[0]), merkle_root(heads) if heads else None)

    def record_at(self, seq: int) -> Record | None:
        row = self._query_one(f"SELECT {_COLUMNS} FROM ledger.records WHERE seq = %s", (seq,))
        return None if row is None else _record(row)

    # ------------------------------------------------------------------------- writing

    def update(
        self,
        prescription_id: str,
        change: Change,
        *,
        now: dt.datetime | None = None,
        request: uuid.UUID | None = None,
    ) -> tuple[Record, ...]:
        """As :meth:`Ledger.update`; ``request`` (random by default) identifies the write: a
        request already committed is not written again (its records are not returned).

        A write that records the prescription itself (its first dispensing, as far as the
        session can tell) is tried first in one round trip, on an empty chain
        (:meth:`_first_write`); when the chain is not empty, ``change`` is called again with
        the real history (so it may be called twice: it must not keep what an earlier call
        decided)."""
        given = request is not None
        request = request or uuid.uuid4()
        self._ensure()
        if not given and self._spare and (self._hits >= _SPECULATE or self._writes % _PROBE == 0):
            self._aborted = False
            first = self._first_write(prescription_id, change, request, now)
            if first is not None:
                return first
        # The first write's aborted transaction is rolled back with the next query.
        pending = b"ROLLBACK; " if self._aborted else b""
        self._aborted = False
        return self._write(prescription_id, change, request, given, now, pending)

    def _first_write(
        self, prescription_id: str, change: Change, request: uuid.UUID, now: dt.datetime | None
    ) -> tuple[Record, ...] | None:
        """Append what ``change`` records on an empty history, in one round trip
        (``BEGIN; EXECUTE eprescrire_append(…); COMMIT``): ``ledger.append`` creates the chain
        head at position 0 (or takes it while still empty); on a chain that has records it
        writes nothing and returns NULL (40001 when another writer created them meanwhile: the
        transaction is then left to be rolled back). Returns the records written, or None when
        the write must read the history first (the change refused or recorded no prescription
        on an empty history, the chain is not empty, the session has too few sequence
        numbers left)."""
        psycopg = self._psycopg
        try:
            new = list(change(History(prescription_id, ())))
        except Exception:
            return None  # decided again on the real history, which may differ
        if not new or new[0].kind != "prescription" or len(new) > len(self._spare):
            return None
        seqs = self._spare[: len(new)]
        del self._spare[: len(new)]
        prev = genesis(self.ledger_id, prescription_id)
        recorded_at = _timestamp(now or dt.datetime.now(dt.UTC))
        written, query = self._appending(prescription_id, request, 0, prev, new, seqs, recorded_at)
        try:
            try:
                rows = self._run(self._preparing() + b"BEGIN; " + query)
            except psycopg.errors.InvalidSqlStatementName:
                self._run(b"ROLLBACK; " + _PREPARE)
                rows = self._run(b"BEGIN; " + query)
            if not rows or rows[0][0] is None:
                # The chain has records: append wrote nothing (and COMMIT ended an empty
                # transaction); the numbers are still free.
                self._spare[:0] = seqs
                self._hits *= 1 - _WEIGHT
                return None
        except psycopg.errors.SerializationFailure:
            # Another writer created the chain meanwhile: nothing was written either.
            self._spare[:0] = seqs
            self._aborted = True
            self._hits *= 1 - _WEIGHT
            return None
        except psycopg.OperationalError as e:
            return self._after_lost_commit(prescription_id, request, written, e)
        except psycopg.Error as e:
            self._rollback()
            raise self._fail("the write was refused by the ledger", e) from e
        except BaseException:
            self._rollback()
            raise
        self._writes += 1
        self._hits = self._hits * (1 - _WEIGHT) + _WEIGHT
        return tuple(written)

    def _preparing(self) -> bytes:
        """The statements preparing a write's two statements, to send before the first write
        of a connection (in the same round trip); nothing once they were sent."""
        if self._prepared_for is self._db:
            return b""
        self._prepared_for = self._db
        return _PREPARE + b"; "

    def _appending(
        self,
        prescription_id: str,
        request: uuid.UUID,
        pos: int,
        prev: str,
        new: Sequence[NewRecord],
        seqs: Sequence[int],
        recorded_at: str,
    ) -> tuple[list[Record], bytes]:
        """The records ``new`` chained after ``(pos, prev)``, and the statement appending them
        then committing: ``ledger.append`` checks and writes them and reads them back in the
        same transaction (the chain head moved to the last one, this request's records all
        there), raising when a rule refuses them or a foreign trigger or rule dropped or
        rewrote them."""
        written: list[Record] = []
        texts: list[str] = []
        first_pos, first_prev = pos, prev
        for item, seq in zip(new, seqs, strict=False):
            if item.kind not in KINDS:
                raise ValueError(f"unknown record kind {item.kind!r}")
            text = chain.body_text(item.body)
            digest = chain.record_hash(prev, seq, item.kind, prescription_id, recorded_at, text)
            texts.append(text)
            written.append(
                Record(seq, item.kind, prescription_id, recorded_at, json.loads(text), prev, digest)
            )
            prev = digest
        query = (
            b"EXECUTE eprescrire_append(%s, %s, %d, %s, ARRAY[%s]::bigint[], %s, %s, %s, %s);"
            b" COMMIT"
            % (
                self._literal(prescription_id),
                self._uuid(request),
                first_pos,
                self._literal(first_prev),
                b",".join(b"%d" % r.seq for r in written),
                self._plain_array([r.kind for r in written]),
                self._literal(recorded_at),
                self._array(texts),
                self._plain_array([r.hash for r in written]),
            )
        )
        return written, query

    def _write(
        self,
        prescription_id: str,
        change: Change,
        request: uuid.UUID,
        given: bool,
        now: dt.datetime | None,
        pending: bytes,
    ) -> tuple[Record, ...]:
        """A write in two round trips: the chain head taken with the history, then the
        records appended and committed."""
        psycopg = self._psycopg
        written: list[Record] = []
        committing = False
        db = self._db
        # Sequence numbers for the session's next first writes (one round trip each) are
        # reserved with the history, once the session has written (a command that writes
        # once reserves none).
        spare = _SPARE if self._writes and len(self._spare) < _RESERVED else 0
        try:
            # One round trip: take the prescription's chain head (recognising a retried
            # request, reserving sequence numbers for the usual case: a prescription record and
            # a dispensing) with its history.
            opening = (
                pending
                + self._preparing()
                + b"BEGIN; EXECUTE eprescrire_open_write(%s, %s, %d)"
                % (
                    self._literal(prescription_id),
                    self._uuid(request) if given else b"NULL",
                    _RESERVED + spare,
                )
            )
            try:
                rows = self._run(opening)
            except psycopg.errors.InvalidSqlStatementName:
                # The session's prepared statements were deallocated (psycopg does so after
                # a ROLLBACK it runs, a pooler or DISCARD ALL may): prepared again.
                self._run(b"ROLLBACK; " + _PREPARE)
                rows = self._run(opening)
            encoding = db.info.encoding
            top = rows[0]
            pos, prev = int(top[0] or b"0"), bytes(top[1] or b"").decode(encoding)
            reserved = [int(n) for n in bytes(top[3] or b"{}")[1:-1].split(b",") if n]
            if top[2] == b"t":
                self._run(b"ROLLBACK")
                return ()
            history = History(
                prescription_id,
                tuple(
                    _record(
                        (int(r[4]), *(None if v is None else v.decode(encoding) for v in r[5:]))
                    )
                    for r in rows
                    if r[4] is not None
                ),
            )
            new = list(change(history))
            if new:
                if len(new) > len(reserved):
                    reserved += [
                        int(r[0])
                        for r in db.execute(
                            "SELECT nextval('ledger.record_seq') FROM generate_series(1, %s)",
                            (len(new) - len(reserved),),
                        ).fetchall()
                    ]
                recorded_at = _timestamp(now or dt.datetime.now(dt.UTC))
                written, query = self._appending(
                    prescription_id, request, pos, prev, new, reserved, recorded_at
                )
                committing = True
                self._run(query)
                # Numbers drawn after the head was locked, so greater than any of this
                # prescription's: whichever chain they start, its sequence numbers increase.
                self._spare += reserved[len(new) :]
                self._writes += 1
            else:
                self._run(b"ROLLBACK")
        except psycopg.OperationalError as e:
            if committing and written:
                return self._after_lost_commit(prescription_id, request, written, e)
            self._reset()
            raise self._fail("lost the connection to the ledger", e) from e
        except psycopg.Error as e:
            self._rollback()
            raise self._fail("the write was refused by the ledger", e) from e
        except BaseException:
            self._rollback()
            raise
        return tuple(written)

    # A write's two round trips go as one simple query each (no pipeline, no bind step), their
    # values quoted by libpq (PQescapeLiteral), straight through libpq: psycopg's cursors and
    # pipelines cost the client more CPU than the rest of a dispensing.

    def _run(self, query: bytes) -> list[tuple[bytes | None, ...]]:
        """Send ``query`` (statements whose values are already quoted) in one round trip; the
        rows of its last result, as libpq gives them (text format). A statement's error
        raises its psycopg exception (OperationalError when the connection is lost)."""
        psycopg = self._psycopg
        pq = psycopg.pq
        pgconn = self._db.pgconn
        rows: list[tuple[bytes | None, ...]] = []
        error = None
        try:
            pgconn.send_query(query)
            while pgconn.flush():
                select.select([], [pgconn.socket], [])
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                select.select([pgconn.socket], [], [])
            while (result := pgconn.get_result()) is not None:
                if result.status == pq.ExecStatus.TUPLES_OK:
                    rows = [
                        tuple(result.get_value(r, c) for c in range(result.nfields))
                        for r in range(result.ntuples)
                    ]
                elif result.status != pq.ExecStatus.COMMAND_OK and error is None:
                    error = psycopg.errors.error_from_result(result, self._db.info.encoding)
        except psycopg.Error:
            if pgconn.status != pq.ConnStatus.OK:
                self._reset()
            raise
        except BaseException:
            # Interrupted mid-query: closing the connection rolls the transaction back.
            self._reset()
            raise
        if pgconn.status != pq.ConnStatus.OK:
            self._reset()
            raise psycopg.OperationalError(
                str(error) if error is not None else "the connection to the server was lost"
            )
        if error is not None:
            raise error
        return rows

    def _literal(self, value: str) -> bytes:
        if "\x00" in value:
            raise LedgerError("a value holds a NUL character, which the ledger cannot store")
        if self._escaping_for is not self._db:
            self._escaping = self._psycopg.pq.Escaping(self._db.pgconn)
            self._encoding = self._db.info.encoding
            self._escaping_for = self._db
        quoted: bytes = self._escaping.escape_literal(value.encode(self._encoding))
        return quoted

    def _array(self, values: Sequence[str]) -> bytes:
        return b"ARRAY[%s]::text[]" % b",".join(self._literal(v) for v in values)

    @staticmethod
    def _plain_array(values: Sequence[str]) -> bytes:
        """Values that need no quoting (record kinds, hexadecimal hashes), as a text array."""
        return b"ARRAY['%s']::text[]" % "','".join(values).encode("ascii")

    @staticmethod
    def _uuid(value: uuid.UUID) -> bytes:
        return b"'%s'::uuid" % str(value).encode("ascii")

    def _after_lost_commit(
        self,
        prescription_id: str,
        request: uuid.UUID,
        written: list[Record],
        error: BaseException,
    ) -> tuple[Record, ...]:
        """The reply to COMMIT was lost: the request identifier says what happened. Returns
        ``written`` when it was committed; raises :class:`LedgerError` when it was not."""
        if self._committed_after_reconnect(prescription_id, request):
            return tuple(written)
        raise LedgerError(
            f"the connection to the ledger {self.location} was lost while committing; "
            f"the dispensing was not recorded ({_one_line(error)})"
        ) from error

    def _committed_after_reconnect(self, prescription_id: str, request: uuid.UUID) -> bool:
        """Reconnect (a few tries) and ask whether ``request`` was committed. Raises
        :class:`LedgerError` when the outcome cannot be known."""
        self._reset()
        last: BaseException | None = None
        for delay in (0.2, 0.5, 1.0, 2.0):
            try:
                self._connect()
                row = self._db.execute(
                    "SELECT ledger.request_done(%s, %s)", (prescription_id, request)
                ).fetchone()
                return bool(row[0])
            except (LedgerError, self._psycopg.Error) as e:
                last = e
                self._reset()
                time.sleep(delay)
        raise LedgerError(
            f"the connection to the ledger {self.location} was lost while committing and the "
            f"outcome is unknown: check with `eprescrire status` before dispensing again "
            f"(request {request}; {_one_line(last) if last else 'unreachable'})"
        )

    def _rollback(self) -> None:
        try:
            if self._db is not None and not self._db.closed:
                self._db.rollback()
        except self._psycopg.Error:
            self._reset()

    def _reset(self) -> None:
        try:
            if self._db is not None:
                self._db.close()
        except self._psycopg.Error:
            pass
        self._db = None

    def _ensure(self) -> None:
        if self._db is None or self._db.closed:
            self._connect()

    # ------------------------------------------------------------------------- checking

    def verify(self) -> ChainReport:
        """Walk every prescription's chain in one snapshot: positions 1..n, each record
        chained to the one before, its hash recomputed, its body canonical; the chain head
        matches the last record; no sequence number used twice. Names the first bad record
        (lowest sequence number among the damaged chains)."""
        problems: list[tuple[int, str]] = []
        count = 0
        top = 0
        seen_seq: set[int] = set()
        try:
            with self._db.transaction():
                self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                schema = postgres_schema.problems(self._db)
                heads = {
                    str(p): (int(n), s, str(h))
                    for p, n, s, h in self._db.execute(
                        "SELECT prescription_id, pos, seq, hash FROM ledger.chain_heads"
                    ).fetchall()
                }
                with self._db.cursor(name="eprescrire_verify") as cursor:
                    cursor.itersize = 2000
                    cursor.execute(
                        f"SELECT {_COLUMNS}, pos FROM ledger.records ORDER BY prescription_id, pos"
                    )
                    current: str | None = None
                    expected_pos = 1
                    prev = ""
                    broken = False
                    last: tuple[int, int, str] | None = None

                    def close_chain(pid: str | None) -> None:
                        if pid is None or broken:
                            return
                        head = heads.pop(pid, None)
                        if head is None:
                            problems.append(
                                (last[0] if last else 0, f"prescription {pid} has no chain head")
                            )
                        elif last is None or head[0] != last[1] or head[2] != last[2]:
                            seq_named = (
                                head[1] if isinstance(head[1], int) else (last[0] if last else 0)
                            )
                            problems.append(
                                (
                                    int(seq_named),
                                    f"record {head[1]} (prescription {pid}, position {head[0]}) "
                                    f"is missing: the chain ends at position {last[1] if last else 0}",
                                )
                            )

                    for row in cursor:
                        count += 1
                        seq, kind, pid, recorded_at, body, prev_hash, stored, pos = row
                        top = max(top, int(seq))
                        if pid != current:
                            close_chain(current)
                            current, expected_pos, broken, last = pid, 1, False, None
                            prev = genesis(self.ledger_id, pid)
                        if broken:
                            continue
                        where = f"record {seq} (prescription {pid}, position {pos})"
                        message = None
                        if seq in seen_seq:
                            message = f"{where} reuses a sequence number"
                        elif pos != expected_pos:
                            message = (
                                f"{where} is out of place: position {expected_pos} is missing"
                                if pos > expected_pos
                                else f"{where} is out of sequence"
                            )
                        elif kind not in KINDS:
                            message = f"{where} has an unknown kind"
                        elif prev_hash != prev:
                            message = f"{where} does not chain to the record before it"
                        elif (
                            chain.record_hash(prev_hash, seq, kind, pid, recorded_at, body)
                            != stored
                        ):
                            message = f"{where} was altered (hash mismatch)"
                        else:
                            try:
                                parsed = json.loads(body)
                                canonical = (
                                    isinstance(parsed, dict) and chain.body_text(parsed) == body
                                )
                            except ValueError:
                                canonical = False
                            if not canonical:
                                message = f"{where} body is not canonical JSON"
                        seen_seq.add(int(seq))
                        if message is not None:
                            problems.append((int(seq), message))
                            broken = True
                            continue
                        prev = stored
                        expected_pos += 1
                        last = (int(seq), int(pos), str(stored))
                    close_chain(current)
                for pid, (n, s, _h) in heads.items():
                    if n > 0:
                        problems.append(
                            (
                                int(s or 0),
                                f"prescription {pid}'s records are missing (its chain head is at position {n})",
                            )
                        )
                problems.extend(self._verify_imported())
        except self._psycopg.Error as e:
            # Not being allowed to read (a site's role) or a lost connection is no verdict.
            raise self._fail("cannot read the whole ledger", e) from e
        root = None
        if not problems:
            try:
                root = self.head()[1]
            except LedgerError:
                root = None
        first = min(problems) if problems else None
        return ChainReport(
            records=count,
            head_seq=top,
            head_hash=root,
            integrity=["ok"],
            first_bad=None if first is None else first[0],
            problem=None if first is None else first[1],
            schema=schema,
        )

    def _verify_imported(self) -> list[tuple[int, str]]:
        """Each imported SQLite ledger's own chain, as it was when imported."""
        problems: list[tuple[int, str]] = []
        for source, records, head_seq, head_hash in self._db.execute(
            "SELECT source_ledger, records, head_seq, head_hash FROM ledger.imported_ledgers"
        ).fetchall():
            rows = self._db.execute(
                "SELECT source_seq, kind, prescription_id, recorded_at, body, prev_hash, hash"
                " FROM ledger.imported_records WHERE source_ledger = %s ORDER BY source_seq",
                (source,),
            ).fetchall()
            count, last, problem = chain.check(
                [(int(r[0]), *r[1:]) for r in rows], str(source), KINDS
            )
            if problem is not None:
                problems.append((0, f"imported ledger {source}: {problem.message}"))
            elif count != records or last != head_hash:
                problems.append(
                    (0, f"imported ledger {source}: records missing (head {head_seq} of {records})")
                )
        return problems

    # ------------------------------------------------------------------------- checkpoints

    def snapshot_checkpoint(self) -> tuple[int, str | None]:
        """Record the leaves of the Merkle root over the current chain heads (so that a signed
        root can be checked later) and return (highest seq, root)."""
        try:
            with self._db.transaction():
                self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                top = int(
                    self._db.execute("SELECT coalesce(max(seq), 0) FROM ledger.records").fetchone()[
                        0
                    ]
                )
                heads = self._heads()
                if not heads:
                    return (0, None)
                root = merkle_root(heads)
                done = self._db.execute(
                    "INSERT INTO ledger.checkpoints (root, max_seq, leaves) VALUES (%s, %s, %s)"
                    " ON CONFLICT (root) DO NOTHING RETURNING root",
                    (root, top, len(heads)),
                ).fetchone()
                if done is not None:
                    with self._db.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO ledger.checkpoint_leaves (prescription_id, root, pos, hash)"
                            " VALUES (%s, %s, %s, %s)",
                            [(p, root, n, h) for p, n, h in heads],
                        )
        except self._psycopg.Error as e:
            raise self._fail("cannot checkpoint the ledger", e) from e
        return (top, root)

    def check_checkpoint(self, seq: int, root: str | None) -> str | None:
        """None when every chain head under the signed Merkle ``root`` is still in the ledger
        with the same hash; otherwise what is wrong."""
        if root is None:
            return None
        try:
            leaves = [
                (str(p), int(n), str(h))
                for p, n, h in self._db.execute(
                    "SELECT prescription_id, pos, hash FROM ledger.checkpoint_leaves WHERE root = %s",
                    (root,),
                ).fetchall()
            ]
            if not leaves or merkle_root(leaves) != root:
                return "the checkpoint's chain heads are missing or were altered in the ledger"
            for pid, pos, digest in sorted(leaves):
                row = self._db.execute(
                    "SELECT seq, hash FROM ledger.records WHERE prescription_id = %s AND pos = %s",
                    (pid, pos),
                ).fetchone()
                if row is None:
                    return (
                        f"prescription {pid} ends before position {pos} seen by the checkpoint: "
                        "truncated, or restored from an older copy"
                    )
                if row[1] != digest:
                    return (
                        f"record {row[0]} (prescription {pid}, position {pos}) differs from the "
                        "checkpoint: the history before it was rewritten"
                    )
        except self._psycopg.Error as e:
            return f"cannot read the checkpoint's chain heads: {_one_line(e)}"
        return None

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(self._psycopg.Error):
                self._db.close()
            self._db = None


# ----------------------------------------------------------------------------- administration


def initialise(url: str) -> tuple[int, int, str]:
    """Create or upgrade the ledger schema at ``url`` (as a role that may create roles and
    schemas). Returns (version before, version after, ledger id). Refuses a newer database."""
    psycopg = _psycopg()
    location = redact(url)
    try:
        db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach the ledger {location}: {_one_line(e)}") from e
    except ValueError as e:
        raise LedgerError(f"invalid ledger URL {location}: {e}") from e
    try:
        with db.transaction():
            # One initialiser at a time per database.
            db.execute("SELECT pg_advisory_xact_lock(hashtext('eprescrire-ledger-init'))")
            exists = db.execute(
                "SELECT to_regclass('ledger.schema_migrations') IS NOT NULL"
            ).fetchone()[0]
            before = 0
            if exists:
                before = int(
                    db.execute(
                        "SELECT coalesce(max(version), 0) FROM ledger.schema_migrations"
                    ).fetchone()[0]
                )
            elif db.execute("SELECT to_regnamespace('ledger') IS NOT NULL").fetchone()[0]:
                raise LedgerError(
                    f"{location} has a 'ledger' schema that is not an eprescrire ledger"
                )
            if before > LATEST:
                raise LedgerError(
                    f"the ledger {location} has schema version {before}, newer than this "
                    f"eprescrire supports ({LATEST}); upgrade eprescrire"
                )
            for migration in MIGRATIONS:
                if migration.version <= before:
                    continue
                db.execute(migration.sql)
                if migration.version == 1:
                    db.execute(
                        "INSERT INTO ledger.meta (key, value) VALUES ('ledger_id', %s), ('created_at', %s)",
                        (uuid.uuid4().hex, _timestamp(dt.datetime.now(dt.UTC))),
                    )
                    db.execute("SELECT set_config('eprescrire.db', current_database(), true)")
                    name = db.execute("SELECT current_database()").fetchone()[0]
                    db.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
                    db.execute(
                        f'GRANT CONNECT ON DATABASE "{name}" TO eprescrire_pharmacy, '
                        "eprescrire_prescriber, eprescrire_auditor, eprescrire_admin"
                    )
                db.execute(
                    "INSERT INTO ledger.schema_migrations (version, description) VALUES (%s, %s)",
                    (migration.version, migration.description),
                )
            ledger_id = str(
                db.execute("SELECT value FROM ledger.meta WHERE key = 'ledger_id'").fetchone()[0]
            )
            _quiet_error_statements(db)
    except psycopg.Error as e:
        raise LedgerError(f"cannot initialise the ledger {location}: {_one_line(e)}") from e
    finally:
        db.close()
    return before, LATEST, ledger_id


def _quiet_error_statements(db: Any) -> None:
    """The server logs the text of a statement that fails (``log_min_error_statement``,
    ``error`` by default), and a refused write's text holds the prescription: for this
    database it logs the error alone. The setting is the superuser's; another initialiser
    leaves it to the database administrator (docs/scaling.md)."""
    if db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        name = db.execute("SELECT current_database()").fetchone()[0]
        db.execute(f'ALTER DATABASE "{name}" SET log_min_error_statement = panic')


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677)."""
    import base64
    import hmac
    import os

    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def add_site(
    url: str,
    certificate: Any,
    kind: str,
    *,
    finess: str | None = None,
    rpps: str | None = None,
    role: str | None = None,
    password: str | None = None,
) -> str:
    """Create the login role of a site (or person) from its X.509 certificate and register it.

    The role name is the certificate's common name (PostgreSQL's ``cert`` authentication
    compares it with the user name), lower-case letters, digits and ``_``; the role joins its
    group (``eprescrire_pharmacy`` / ``_prescriber`` / ``_auditor``) and ``eprescrire_cert``
    (pg_hba.conf: ``hostssl all +eprescrire_cert ... cert``). With ``password`` it may also log
    in with SCRAM; a ``role`` named otherwise than the certificate logs in with SCRAM only.
    The certificate's SHA-256 is kept with the site. Returns the role name."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    if kind not in ("pharmacy", "prescriber", "auditor"):
        raise ValueError("the kind of site is pharmacy, prescriber or auditor")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common = str(names[0].value) if names else ""
    name = role or common
    if not _ROLE_NAME.match(name):
        raise ValueError(
            f"the certificate's common name {common!r} is not a role name "
            "(lower-case letters, digits, _; at most 63)"
        )
    # PostgreSQL's `cert` method logs in the role named by the certificate's common name; a
    # role of another name (a prescriber's certificate names a person) logs in with SCRAM.
    cert_login = name == common
    if not cert_login and password is None:
        raise ValueError(
            f"the certificate is for {common!r}, not {name!r}: such a role logs in with a "
            "password (SCRAM), give one"
        )
    if kind == "prescriber" and rpps is None:
        from eprescrire.keys import rpps_of

        rpps = rpps_of(certificate)
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    psycopg = _psycopg()
    from psycopg import sql

    location = redact(url)
    try:
        db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as e:
        raise LedgerError(f"cannot reach the ledger {location}: {_one_line(e)}") from e
    try:
        with db.transaction():
            ident = sql.Identifier(name)
            exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if exists is None:
                db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
            if password is not None:
                db.execute(
                    # Only the SCRAM verifier reaches the server (and its logs), not the password.
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        ident, sql.Literal(scram_verifier(password))
                    )
                )
            db.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(f"eprescrire_{kind}"), ident)
            )
            if cert_login:
                db.execute(sql.SQL("GRANT eprescrire_cert TO {}").format(ident))
            db.execute(
                "INSERT INTO ledger.sites (role_name, kind, finess, rpps, certificate_sha256)"
                " VALUES (%s, %s, %s, %s, %s)",
                (name, kind, finess, rpps, digest),
            )
    except psycopg.Error as e:
        raise LedgerError(f"cannot add the site {name!r} to {location}: {_one_line(e)}") from e
    finally:
        db.close()
    return name


def import_sqlite(source: Ledger, target: PostgresLedger) -> tuple[int, int]:
    """Move an SQLite ledger into the shared one (as its administrator).

    The source's records are kept verbatim in ``ledger.imported_records`` (its own hash chain
    stays verifiable by ``ledger verify``) and appended, with the same kinds and bodies, to the
    prescriptions' chains, where the database's rules apply. Each prescription is one
    transaction with a request identifier derived from the source ledger and the prescription,
    so an interrupted import can be run again without recording anything twice. A prescription
    the shared ledger already holds under another content is refused (nothing of it appended).
    Returns (records appended, prescriptions)."""
    report = source.verify()
    if not report.ok:
        raise LedgerError(
            f"refusing to import a damaged ledger: record {report.first_bad}: {report.problem}"
        )
    rows = list(source.records())
    psycopg = target._psycopg
    db = target._db
    try:
        with db.transaction():
            done = db.execute(
                "SELECT records FROM ledger.imported_ledgers WHERE source_ledger = %s",
                (source.ledger_id,),
            ).fetchone()
            if done is None:
                db.execute(
                    "INSERT INTO ledger.imported_ledgers (source_ledger, records, head_seq, head_hash)"
                    " VALUES (%s, %s, %s, %s)",
                    (source.ledger_id, len(rows), report.head_seq, report.head_hash),
                )
                with db.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO ledger.imported_records (prescription_id, source_ledger,"
                        " source_seq, kind, recorded_at, body, prev_hash, hash)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        [
                            (
                                r.prescription_id,
                                source.ledger_id,
                                r.seq,
                                r.kind,
                                r.recorded_at,
                                chain.body_text(r.body),
                                r.prev_hash,
                                r.hash,
                            )
                            for r in rows
                        ],
                    )
    except psycopg.Error as e:
        raise target._fail("cannot import into the ledger", e) from e
    by_prescription: dict[str, list[Record]] = {}
    for r in rows:
        by_prescription.setdefault(r.prescription_id, []).append(r)
    appended = 0
    for pid, records in by_prescription.items():
        from eprescrire.ledger.interface import NewRecord

        def change(history: History, records: list[Record] = records) -> list[NewRecord]:
            known = [r.body for r in history.of_kind("prescription")]
            new = []
            for r in records:
                if r.kind == "prescription" and known:
                    if known[0] != r.body:
                        raise LedgerError(
                            f"prescription {r.prescription_id} is already in the shared ledger "
                            "with another content; not imported"
                        )
                    continue
                new.append(NewRecord(r.kind, r.body))  # type: ignore[arg-type]
            return new

        request = uuid.uuid5(uuid.NAMESPACE_URL, f"eprescrire-import:{source.ledger_id}/{pid}")
        appended += len(target.update(pid, change, request=request))
    return appended, len(by_prescription)
