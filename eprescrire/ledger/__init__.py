"""The dispensing ledger: an append-only, hash-chained record of what was handed over.

``open_ledger(location)`` picks the backend from the location: a path (or ``sqlite:///path``)
opens the SQLite ledger; a ``postgresql://`` URL opens the shared ledger
(:mod:`eprescrire.ledger.postgres`, psycopg imported only then). Both implement
:class:`~eprescrire.ledger.interface.Ledger`.
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
    elif location.startswith(("postgresql://", "postgres://")):
        from eprescrire.ledger.postgres import PostgresLedger

        return PostgresLedger(location, create=create)
    elif "://" in location:
        scheme = location.split("://", 1)[0]
        raise LedgerError(
            f"no ledger backend for {scheme!r} URLs (use a file path, sqlite:///path or postgresql://...)"
        )
    else:
        path = Path(location)
    from eprescrire.ledger.sqlite import SQLiteLedger

    return SQLiteLedger(path, create=create)
