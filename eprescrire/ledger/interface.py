"""What every ledger backend offers: an append-only, hash-chained log of records per prescription.

The ledger is keyed on the prescription identifier, never on signature bytes (ECDSA signatures
are malleable: the same prescription can carry many valid signatures). Callers never touch SQL:
they read a prescription's :class:`History`, and change it only through :meth:`Ledger.update`,
which runs *read, check, write* as one serialised transaction, so two counters dispensing the
same paper at the same moment cannot both succeed. A PostgreSQL backend fits behind the same
methods (one ``SERIALIZABLE`` transaction, or a row lock on the chain head).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from eprescrire.errors import EnvironmentProblem

RecordKind = Literal["prescription", "dispensing", "cancellation", "consent"]
KINDS: frozenset[str] = frozenset({"prescription", "dispensing", "cancellation", "consent"})


class LedgerError(EnvironmentProblem):
    """The ledger is unavailable, unreadable, from a newer version, or corrupt (exit 4)."""


@dataclass(frozen=True)
class NewRecord:
    """A record to append; the backend gives it its sequence number, time and hashes."""

    kind: RecordKind
    body: dict[str, Any]


@dataclass(frozen=True)
class Record:
    seq: int
    kind: str
    prescription_id: str
    recorded_at: str  # real wall-clock time of the write, UTC, ISO 8601
    body: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "prescription_id": self.prescription_id,
            "recorded_at": self.recorded_at,
            "body": self.body,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class History:
    """Every record about one prescription, in ledger order."""

    prescription_id: str
    records: tuple[Record, ...] = ()

    def of_kind(self, kind: RecordKind) -> list[Record]:
        return [r for r in self.records if r.kind == kind]

    @property
    def known(self) -> bool:
        """The ledger has seen the signed prescription itself (not only a cancellation)."""
        return any(r.kind == "prescription" for r in self.records)


@dataclass(frozen=True)
class ChainReport:
    """What ``ledger verify`` found, whatever the backend. ``first_bad`` names the first record
    whose hash chain fails; ``integrity`` is what the storage's own consistency check says
    (``["ok"]`` when it found nothing: SQLite's ``integrity_check``, a server's own check)."""

    records: int
    head_seq: int
    head_hash: str | None
    integrity: list[str] = field(default_factory=list)
    first_bad: int | None = None
    problem: str | None = None
    # What differs from the schema the migrations define (foreign, missing or altered tables,
    # columns, indexes, triggers, views); empty when it matches.
    schema: list[str] = field(default_factory=list)

    @property
    def storage_ok(self) -> bool:
        """The storage's own check found nothing wrong."""
        return self.integrity == ["ok"]

    @property
    def ok(self) -> bool:
        return self.problem is None and self.storage_ok and not self.schema

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "integrity": self.integrity,
            "first_bad_record": self.first_bad,
            "problem": self.problem,
            "schema": self.schema,
        }


Change = Callable[[History], Sequence[NewRecord]]


class Ledger(ABC):
    """One ledger, opened. Use as a context manager, or call :meth:`close`."""

    location: str
    ledger_id: str

    @abstractmethod
    def history(self, prescription_id: str) -> History:
        """A consistent snapshot of every record about ``prescription_id``."""

    @abstractmethod
    def update(
        self, prescription_id: str, change: Change, *, now: dt.datetime | None = None
    ) -> tuple[Record, ...]:
        """Run ``change(history)`` and append what it returns, atomically.

        The history is read and the new records are written in one write transaction that no
        other writer can interleave with; each record is hash-chained to the one before in
        that same transaction. If ``change`` raises, nothing is written and the exception
        propagates. On a storage failure, raises :class:`LedgerError`.

        ``change`` decides from the history it is given alone: a backend may call it more than
        once in one update (the PostgreSQL ledger first tries a prescription's first write on
        an empty history), and what the last call returned is what is written.
        """

    @abstractmethod
    def records(self, after: int = 0) -> Iterator[Record]:
        """Every record with ``seq > after``, in order (for export)."""

    @abstractmethod
    def head(self) -> tuple[int, str | None]:
        """Sequence number and hash of the last record (0, None when empty)."""

    @abstractmethod
    def record_at(self, seq: int) -> Record | None:
        """The record with sequence number ``seq``, if any."""

    @abstractmethod
    def verify(self) -> ChainReport:
        """Recompute the whole hash chain and check the storage's own integrity."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
