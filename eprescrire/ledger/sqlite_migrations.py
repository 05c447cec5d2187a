"""Schema versions of the SQLite ledger, applied in order, each inside one transaction with its
record in ``schema_migrations`` and ``PRAGMA user_version``.

Never edit a released migration: add the next one. A ledger whose version is newer than
:data:`LATEST` is refused rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "append-only hash-chained records, ledger metadata",
        (
            """CREATE TABLE schema_migrations (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at TEXT NOT NULL
            )""",
            """CREATE TABLE meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
            """CREATE TABLE records (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                prescription_id TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                body TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )""",
            "CREATE INDEX records_by_prescription ON records (prescription_id, seq)",
        ),
    ),
    Migration(
        2,
        "refuse in-place edits and deletions through the ledger's own connection",
        (
            # The ledger is append-only. These triggers stop accidents and careless scripts;
            # they are no defence against someone with the file (that is the hash chain's job).
            """CREATE TRIGGER records_no_update BEFORE UPDATE ON records
               BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END""",
            """CREATE TRIGGER records_no_delete BEFORE DELETE ON records
               BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END""",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version
