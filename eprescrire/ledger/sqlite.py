"""The SQLite ledger: one file, WAL, ``synchronous=FULL``, every change in ``BEGIN IMMEDIATE``.

Durability: with WAL and ``synchronous=FULL`` a transaction is on disk when ``COMMIT`` returns,
so a dispensing reported as done survives a crash or a power cut. Isolation: ``BEGIN
IMMEDIATE`` takes the write lock *before* reading, so the read-check-write of a dispensing
cannot interleave with another process's; waiting writers queue on the busy timeout instead of
failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eprescrire.ledger import chain, sqlite_schema
from eprescrire.ledger.interface import (
    KINDS,
    ChainReport,
    Change,
    History,
    Ledger,
    LedgerError,
    Record,
)
from eprescrire.ledger.sqlite_migrations import LATEST, MIGRATIONS

BUSY_TIMEOUT_SECONDS = 60.0
FILE_MODE = 0o600
_COLUMNS = "seq, kind, prescription_id, recorded_at, body, prev_hash, hash"


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _record(row: tuple[Any, ...]) -> Record:
    seq, kind, pid, recorded_at, body, prev_hash, digest = row
    return Record(
        seq=seq,
        kind=kind,
        prescription_id=pid,
        recorded_at=recorded_at,
        body=json.loads(body),
        prev_hash=prev_hash,
        hash=digest,
    )


def _create_file(path: Path) -> None:
    """Create an empty ledger file readable by its owner only (never widen an existing one)."""
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except OSError as e:
            raise LedgerError(
                f"cannot create the ledger directory {path.parent}: {e.strerror}"
            ) from e
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE
        )
    except FileExistsError:
        return
    except OSError as e:
        raise LedgerError(f"cannot create the ledger {path}: {e.strerror}") from e
    os.close(fd)
    os.chmod(path, FILE_MODE)


class SQLiteLedger(Ledger):
    """A ledger in one SQLite file. On failure, methods raise :class:`LedgerError`."""

    def __init__(
        self, path: Path, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = path
        self.location = str(path)
        if path.is_symlink() and not path.exists():
            # Creating the ledger would create whatever file the link names.
            raise LedgerError(f"the ledger path is a dangling symbolic link: {path}; refusing it")
        if not path.exists():
            if not create:
                raise LedgerError(f"ledger not found: {path}")
            _create_file(path)
        elif path.is_dir():
            raise LedgerError(f"the ledger path is a directory: {path}")
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise LedgerError(f"cannot open the ledger {path}: {e}") from e
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not create and self.schema_version() == 0:
                # A read-only use never turns a stray (empty) file into a ledger.
                raise LedgerError(f"{path} is not an eprescrire ledger (no schema)")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"the ledger {path} cannot use WAL journaling (got {mode})")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise LedgerError(f"the ledger {path} is unreadable or corrupt: {e}") from e
        except LedgerError:
            self._db.close()
            raise
        if row is None:
            self._db.close()
            raise LedgerError(f"the ledger {path} has no identifier: not an eprescrire ledger")
        self.ledger_id = str(row[0])

    # ------------------------------------------------------------------------- schema

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > LATEST:
            raise LedgerError(
                f"the ledger {self.path} has schema version {version}, newer than this "
                f"eprescrire supports ({LATEST}); upgrade eprescrire"
            )
        if version == LATEST:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self.schema_version()  # another process may have migrated meanwhile
            if (
                version == 0
                and self._db.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
            ):
                raise LedgerError(f"{self.path} is an SQLite file but not an eprescrire ledger")
            now = _timestamp(dt.datetime.now(dt.UTC))
            for migration in MIGRATIONS:
                if migration.version <= version:
                    continue
                for statement in migration.statements:
                    self._db.execute(statement)
                if migration.version == 1:
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('ledger_id', ?), ('created_at', ?)",
                        (uuid.uuid4().hex, now),
                    )
                self._db.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, now),
                )
                self._db.execute(f"PRAGMA user_version = {migration.version}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------- reading

    def history(self, prescription_id: str) -> History:
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM records WHERE prescription_id = ? ORDER BY seq",
                (prescription_id,),
            ).fetchall()
            return History(prescription_id, tuple(_record(r) for r in rows))
        except (sqlite3.Error, ValueError) as e:
            raise LedgerError(f"cannot read the ledger {self.path}: {e}") from e

    def records(self, after: int = 0) -> Iterator[Record]:
        try:
            cursor = self._db.execute(
                f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq", (after,)
            )
            for row in cursor:
                yield _record(row)
        except (sqlite3.Error, ValueError) as e:
            raise LedgerError(f"cannot read the ledger {self.path}: {e}") from e

    def head(self) -> tuple[int, str | None]:
        row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def record_at(self, seq: int) -> Record | None:
        try:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM records WHERE seq = ?", (seq,)
            ).fetchone()
            return None if row is None else _record(row)
        except (sqlite3.Error, ValueError) as e:
            raise LedgerError(f"cannot read the ledger {self.path}: {e}") from e

    # ------------------------------------------------------------------------- writing

    def update(
        self, prescription_id: str, change: Change, *, now: dt.datetime | None = None
    ) -> tuple[Record, ...]:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise LedgerError(f"cannot write to the ledger {self.path}: {e}") from e
        try:
            history = self.history(prescription_id)
            new = list(change(history))
            written: list[Record] = []
            if new:
                seq, prev = self.head()
                if prev is None:
                    prev = chain.genesis(self.ledger_id)
                recorded_at = _timestamp(now or dt.datetime.now(dt.UTC))
                for item in new:
                    if item.kind not in KINDS:
                        raise ValueError(f"unknown record kind {item.kind!r}")
                    seq += 1
                    text = chain.body_text(item.body)
                    digest = chain.record_hash(
                        prev, seq, item.kind, prescription_id, recorded_at, text
                    )
                    db.execute(
                        f"INSERT INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (seq, item.kind, prescription_id, recorded_at, text, prev, digest),
                    )
                    written.append(
                        Record(
                            seq,
                            item.kind,
                            prescription_id,
                            recorded_at,
                            json.loads(text),
                            prev,
                            digest,
                        )
                    )
                    prev = digest
                self._confirm(written)
            db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise LedgerError(f"cannot write to the ledger {self.path}: {e}") from e
        except BaseException:
            self._rollback()
            raise
        return tuple(written)

    def _confirm(self, written: list[Record]) -> None:
        """Before committing: the records just appended are there, as written, and the head
        moved to the last of them (a foreign trigger may silently drop or alter an insert)."""
        rows = self._db.execute(
            "SELECT seq, hash FROM records WHERE seq >= ? ORDER BY seq", (written[0].seq,)
        ).fetchall()
        if [(int(r[0]), str(r[1])) for r in rows] != [(r.seq, r.hash) for r in written]:
            raise LedgerError(
                f"the ledger {self.path} did not keep the records just written (a foreign "
                "trigger?); nothing was recorded: run `ledger verify`"
            )

    def _rollback(self) -> None:
        # The transaction may already be gone (e.g. the commit itself failed).
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    # ------------------------------------------------------------------------- checking

    def verify(self) -> ChainReport:
        try:
            integrity = [str(r[0]) for r in self._db.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as e:
            integrity = [f"integrity check failed: {e}"]
        try:
            schema = sqlite_schema.problems(self._db)
        except sqlite3.DatabaseError as e:
            schema = [f"cannot read the schema: {e}"]
        try:
            self._db.execute("BEGIN")  # one snapshot for the whole walk
            try:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq")
                count, last, problem = chain.check(rows, self.ledger_id, KINDS)
            finally:
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            return ChainReport(0, 0, None, integrity, None, f"cannot read the records: {e}", schema)
        head_seq = count if problem is None else (problem.seq - 1)
        return ChainReport(
            records=count,
            head_seq=head_seq,
            head_hash=last,
            integrity=integrity,
            first_bad=None if problem is None else problem.seq,
            problem=None if problem is None else problem.message,
            schema=schema,
        )

    def close(self) -> None:
        self._db.close()
