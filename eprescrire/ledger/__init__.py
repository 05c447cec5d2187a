"""The dispensing ledger: an append-only, hash-chained record of what was handed over.

``open_ledger(location)`` picks the backend from the location: a path (or ``sqlite:///path``)
opens the SQLite ledger; other URL schemes are reserved for server backends (PostgreSQL) that
implement the same :class:`~eprescrire.ledger.interface.Ledger` interface.
"""

from __future__ import annotations

from pathlib import Path

from eprescrire.ledger.interface import (
    ChainReport,
    History,
    Ledger,
    LedgerError,
    NewRecord,
    Record,
)

__all__ = ["ChainReport", "History", "Ledger", "LedgerError", "NewRecord", "Record", "open_ledger"]


def open_ledger(location: str, *, create: bool = True) -> Ledger:
    """Open (and with ``create``, create) the ledger at ``location``.

    On failure, raises :class:`LedgerError` (exit code 4).
    """
    if location.startswith("sqlite://"):
        rest = location[len("sqlite://") :]
        if not rest.startswith("/"):
            raise LedgerError("a sqlite URL is sqlite:///absolute/path")
        path = Path(rest)
    elif "://" in location:
        scheme = location.split("://", 1)[0]
        raise LedgerError(
            f"no ledger backend for {scheme!r} URLs in this version (use a file path or sqlite:///path)"
        )
    else:
        path = Path(location)
    from eprescrire.ledger.sqlite import SQLiteLedger

    return SQLiteLedger(path, create=create)
