"""The command-line ledger tests (tests/test_ledger_cli.py) run again with ``--ledger`` a shared
PostgreSQL ledger (the administrator's URL) instead of an SQLite file. Tests that look inside
the SQLite file itself stay SQLite-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_ledger_cli as base

from conftest import KEYS
from tests.postgres_support import server

SQLITE_ONLY = {
    # These open, copy or corrupt the SQLite file itself; their PostgreSQL counterparts are in
    # tests/test_ledger_postgres.py (tampering as the superuser, checkpoints, bad URLs).
    "test_bad_ledgers_and_batches_are_clear_errors",
    "test_ledger_verify_export_checkpoint",
    "test_unreadable_and_forged_inputs",
}


@pytest.fixture()
def rx(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path, pharmacy_key_file: Path
) -> Iterator[dict[str, Any]]:
    pg = server()
    url = pg.fresh_ledger()
    out = tmp_path / "rx.json"
    result = run_cli(
        "issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file, "--out", out, "-q"
    )
    assert result.code == 0, result
    try:
        yield {
            "rx": out,
            "id": json.loads(out.read_text())["id"],
            "ledger": url,
            "key": key_file,
            "pharmacy_key": pharmacy_key_file,
            "tmp": tmp_path,
        }
    finally:
        pg.drop(url)


for _name in dir(base):
    if _name.startswith("test_") and _name not in SQLITE_ONLY:
        _test = getattr(base, _name)
        if "rx" in _test.__code__.co_varnames[: _test.__code__.co_argcount]:
            globals()[_name] = _test
