"""The test cluster stays small: databases left by a killed run are dropped by the next."""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.postgres_support import Server, server


def _names(pg: Server) -> set[str]:
    with pg.admin() as db:
        return {n for (n,) in db.execute("SELECT datname FROM pg_database").fetchall()}


def test_orphans_of_a_dead_process_are_dropped_and_live_ones_kept() -> None:
    pg = server()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"ept_{int(gone.stdout)}_{uuid.uuid4().hex[:10]}"
    legacy = "ept_" + uuid.uuid4().hex[:12]  # another form: never touched
    with pg.admin() as db:
        db.execute(f'CREATE DATABASE "{dead}"')
        db.execute(f'CREATE ROLE "{dead}_pharmacy"')
        db.execute(f'CREATE DATABASE "{legacy}"')
    mine = pg.create_database()
    try:
        dropped = pg.sweep_orphans()
        names = _names(pg)
        assert dead in dropped and dead not in names
        assert mine in names and legacy in names
        with pg.admin() as db:
            roles = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (f"{dead}_pharmacy",))
            assert roles.fetchone() is None
    finally:
        with pg.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{legacy}"')
        pg.drop(pg.url(mine))
