"""Tampering with a ledger of 1,000 records using the sqlite3 shell, 200 times; each copy is
checked with ``eprescrire ledger verify`` (the console script). Then truncation and an older
copy, checked against a signed checkpoint.

An attacker with the file can drop the append-only triggers, so every edit starts with that.
Deleting the *last* record is truncation (a shorter chain is still a chain): it is in the
checkpoint part, not among the 200.

    .venv/bin/python bench/ledger_tamper.py [--tamperings 200] [--records 1000]
    .venv/bin/python bench/ledger_tamper.py --backend postgresql   # as the database superuser
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ledger_common import CREDENTIALS, NOW, ROOT, RPPS, d, prescriptions

from eprescrire.ledger import NewRecord, open_ledger
from eprescrire.ledger import checkpoint as checkpoints

SQLITE = shutil.which("sqlite3")
EPRESCRIRE = str(Path(sys.executable).parent / "eprescrire")
UNLOCK = "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;"


def build(path: Path, records: int) -> None:
    with open_ledger(str(path)) as ledger:
        documents = prescriptions(records // 3 + 1)
        for document in documents:
            if ledger.head()[0] + 3 > records:
                break
            d.dispense(ledger, document, d.Request(RPPS), NOW)
        while ledger.head()[0] < records:
            ledger.update(
                documents[0].prescription.id,
                lambda h: [
                    NewRecord("consent", {"share_opposition": True, "at": "2026-03-02T09:00:00Z"})
                ],
            )


def edits(n: int, rng: random.Random) -> tuple[str, str, int]:
    """(kind, SQL, first record that must be reported)."""
    kind = rng.choice(
        [
            "edit-quantity",
            "edit-time",
            "edit-id",
            "edit-kind",
            "edit-hash",
            "delete",
            "swap",
            "insert-middle",
            "insert-end",
        ]
    )
    seq = rng.randint(2, n - 1)
    if kind == "edit-quantity":
        # keep the record as JSON, change what was handed over
        return (
            kind,
            (
                f"UPDATE records SET body = substr(body, 1, length(body) - 1) || ',\"quantity\":9}}' "
                f"WHERE seq = {seq};"
            ),
            seq,
        )
    if kind == "edit-time":
        return (
            kind,
            f"UPDATE records SET recorded_at = '2025-01-01T00:00:00.000000Z' WHERE seq = {seq};",
            seq,
        )
    if kind == "edit-id":
        return (
            kind,
            f"UPDATE records SET prescription_id = 'AAAAAAAAAAAAAAAA' WHERE seq = {seq};",
            seq,
        )
    if kind == "edit-kind":
        return (
            kind,
            (
                f"UPDATE records SET kind = CASE kind WHEN 'consent' THEN 'dispensing' ELSE 'consent' END "
                f"WHERE seq = {seq};"
            ),
            seq,
        )
    if kind == "edit-hash":
        return kind, f"UPDATE records SET hash = lower(hex(randomblob(32))) WHERE seq = {seq};", seq
    if kind == "delete":
        return kind, f"DELETE FROM records WHERE seq = {seq};", seq
    if kind == "swap":
        other = rng.randint(seq + 1, n)
        return (
            kind,
            (
                f"UPDATE records SET seq = -1 WHERE seq = {seq}; UPDATE records SET seq = {seq} WHERE seq = {other}; "
                f"UPDATE records SET seq = {other} WHERE seq = -1;"
            ),
            seq,
        )
    if kind == "insert-middle":
        source = rng.randint(1, n)
        return (
            kind,
            (
                f"CREATE TEMP TABLE c AS SELECT * FROM records WHERE seq = {source}; "
                f"UPDATE records SET seq = seq + 1000000 WHERE seq >= {seq}; "
                f"UPDATE records SET seq = seq - 999999 WHERE seq >= 1000000; "
                f"INSERT INTO records SELECT {seq}, kind, prescription_id, recorded_at, body, prev_hash, hash FROM c;"
            ),
            seq,
        )
    # insert-end: a plausible new record chained to the real head, with a made-up hash
    return (
        kind,
        (
            f"INSERT INTO records SELECT {n + 1}, 'dispensing', prescription_id, recorded_at, body, hash, "
            f"lower(hex(randomblob(32))) FROM records WHERE seq = {n};"
        ),
        n + 1,
    )


def verify(path: Path, *extra: str) -> tuple[int, dict]:
    result = subprocess.run(
        [EPRESCRIRE, "ledger", "verify", "--ledger", str(path), "--json", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tamperings", type=int, default=200)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="Ledger backend."
    )
    args = parser.parse_args()
    if args.backend == "postgresql":
        import ledger_pg

        raise SystemExit(ledger_pg.tamper(args.tamperings, args.records, args.seed))
    if SQLITE is None:
        raise SystemExit("the sqlite3 shell is needed: apt-get install -y sqlite3")
    rng = random.Random(args.seed)
    detected: collections.Counter[str] = collections.Counter()
    tried: collections.Counter[str] = collections.Counter()
    exact = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.sqlite3"
        build(base, args.records)
        code, report = verify(base)
        print(f"clean ledger: {report['records']} records, exit {code}")
        assert code == 0
        for n in range(args.tamperings):
            kind, sql, first = edits(args.records, rng)
            copy = Path(tmp) / f"t{n}.sqlite3"
            shutil.copyfile(base, copy)
            subprocess.run([SQLITE, str(copy), UNLOCK + sql], check=True, capture_output=True)
            code, report = verify(copy)
            tried[kind] += 1
            if code == 1:
                detected[kind] += 1
                exact += report.get("first_bad_record") == first
            else:
                print(f"NOT DETECTED: {kind}: {sql}")
            copy.unlink()
        print(
            f"\n{sum(detected.values())}/{args.tamperings} tamperings detected by `ledger verify` (exit 1); "
            f"first bad record named exactly in {exact}/{args.tamperings}"
        )
        for kind in sorted(tried):
            print(f"  {kind:14s} {detected[kind]:3d}/{tried[kind]}")

        # Truncation and an older copy, against a checkpoint signed at the head.
        older = Path(tmp) / "older.sqlite3"
        shutil.copyfile(base, older)
        with open_ledger(str(base)) as ledger:
            d.dispense(ledger, prescriptions(1)[0], d.Request(RPPS), NOW)
            data, saved = checkpoints.write(ledger, CREDENTIALS, NOW)
        point = Path(tmp) / "checkpoint.json"
        point.write_bytes(data)
        truncated = Path(tmp) / "truncated.sqlite3"
        shutil.copyfile(base, truncated)
        subprocess.run(
            [SQLITE, str(truncated), UNLOCK + f"DELETE FROM records WHERE seq > {saved.seq - 2};"],
            check=True,
        )
        trust = str(ROOT / "keys" / "demo-trust")
        for name, path in (("current", base), ("truncated", truncated), ("older copy", older)):
            plain, _ = verify(path)
            code, report = verify(path, "--checkpoint", str(point), "--trust", trust)
            print(
                f"{name:10s}: chain alone exit {plain}; with the checkpoint exit {code}: "
                f"{report.get('checkpoint', {}).get('problem') or 'matches'}"
            )


if __name__ == "__main__":
    main()
