"""The SQLite ledger's schema checked against the one its migrations define.

A trigger, view, index, table or column that the migrations do not create is *foreign*; one
they create and the file lacks is *missing*; one whose definition differs is *altered*. A
foreign ``BEFORE INSERT`` trigger can silently drop records, a dropped append-only trigger lets
a careless script edit history: ``ledger verify`` names each one (SPEC §3: exit 1).
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache

from eprescrire.ledger.sqlite_migrations import MIGRATIONS

_Objects = dict[tuple[str, str], tuple[str, str]]  # (type, name) -> (table, normalised SQL)
_Columns = list[tuple[str, str, int, str | None, int]]  # name, type, not null, default, pk


def _normalise(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip().lower()


def _objects(db: sqlite3.Connection) -> _Objects:
    rows = db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {(str(t), str(n)): (str(tbl), _normalise(sql)) for t, n, tbl, sql in rows}


def _columns(db: sqlite3.Connection, table: str) -> _Columns:
    quoted = table.replace('"', '""')
    return [
        (str(r[1]), str(r[2]).upper(), int(r[3]), r[4], int(r[5]))
        for r in db.execute(f'PRAGMA table_xinfo("{quoted}")').fetchall()
    ]


@cache
def expected() -> tuple[_Objects, dict[str, _Columns]]:
    """The schema the migrations create (applied to an empty in-memory database)."""
    db = sqlite3.connect(":memory:")
    try:
        for migration in MIGRATIONS:
            for statement in migration.statements:
                db.execute(statement)
        objects = _objects(db)
        tables = {name: _columns(db, name) for kind, name in objects if kind == "table"}
        return objects, tables
    finally:
        db.close()


def _describe(column: tuple[str, str, int, str | None, int]) -> str:
    name, type_, not_null, default, pk = column
    text = f"{name} {type_}".strip()
    if pk:
        text += " PRIMARY KEY"
    if not_null:
        text += " NOT NULL"
    if default is not None:
        text += f" DEFAULT {default}"
    return text


def problems(db: sqlite3.Connection) -> list[str]:
    """What differs between the file's schema and the migrations' (empty when they match)."""
    want_objects, want_tables = expected()
    have = _objects(db)
    found: list[str] = []
    for key in sorted(set(want_objects) - set(have)):
        found.append(f"{key[0]} {key[1]} is missing")
    for key in sorted(set(have) - set(want_objects)):
        table = have[key][0]
        where = f" on {table}" if key[0] in ("trigger", "index") else ""
        found.append(f"foreign {key[0]} {key[1]}{where}")
    for key in sorted(set(have) & set(want_objects)):
        kind, name = key
        if kind == "table":
            got = {c[0]: c for c in _columns(db, name)}
            wanted = {c[0]: c for c in want_tables[name]}
            column_problems = [f"column {name}.{c} is missing" for c in wanted if c not in got]
            column_problems += [f"foreign column {name}.{c}" for c in got if c not in wanted]
            column_problems += [
                f"column {name}.{c} altered: {_describe(got[c])} instead of {_describe(wanted[c])}"
                for c in wanted
                if c in got and got[c] != wanted[c]
            ]
            found += column_problems
            if not column_problems and have[key] != want_objects[key]:
                found.append(f"table {name} altered (its definition differs from the migrations')")
        elif have[key] != want_objects[key]:
            found.append(f"{kind} {name} altered (its definition differs from the migrations')")
    return found
