"""Dispensings per second through the library API (one process), against raw SQLite inserts of
the same rows with the same durability (WAL, synchronous=FULL, one BEGIN IMMEDIATE transaction
per dispensing), measured in the same run. Medians of several runs; target ratio >= 0.5.

Each library dispensing is ``dispensing.dispense(..., Request(line=1, quantity=1))`` of a
prescription the ledger has not seen: read its history, apply the rules, append the
prescription record and the dispensing record with their chained hashes, commit. The baseline
inserts the same two rows (same bodies and hashes) per transaction, with no reads and no rules.

    .venv/bin/python bench/ledger_throughput.py [--count 500] [--runs 5]
    .venv/bin/python bench/ledger_throughput.py --backend postgresql [--clients 1 4 16]
    .venv/bin/python bench/ledger_throughput.py --backend postgresql --cpu [--count 400]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from ledger_common import NOW, RPPS, d, median, prescriptions

from eprescrire.ledger import open_ledger
from eprescrire.ledger.sqlite_migrations import MIGRATIONS


def library(path: Path, documents: list[d.Presented]) -> tuple[float, list[tuple]]:
    ledger = open_ledger(str(path))
    request = d.Request(RPPS, line=1, quantity=1)
    started = time.perf_counter()
    for document in documents:
        d.dispense(ledger, document, request, NOW)
    elapsed = time.perf_counter() - started
    rows = [
        (
            r.seq,
            r.kind,
            r.prescription_id,
            r.recorded_at,
            __import__("eprescrire.ledger.chain", fromlist=["x"]).body_text(r.body),
            r.prev_hash,
            r.hash,
        )
        for r in ledger.records()
    ]
    ledger.close()
    return elapsed, rows


def raw(path: Path, rows: list[tuple]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    for statement in MIGRATIONS[0].statements:
        db.execute(statement)
    started = time.perf_counter()
    for i in range(0, len(rows), 2):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows[i : i + 2])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 4, 16], help="postgresql: concurrent clients"
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="Ledger backend."
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="postgresql: CPU time per dispensing of one client and of its server backend",
    )
    args = parser.parse_args()
    if args.backend == "postgresql":
        import ledger_pg

        if args.cpu:
            raise SystemExit(ledger_pg.cpu(args.count, args.runs))
        raise SystemExit(ledger_pg.throughput(args.count, args.runs, args.clients))
    lib_rates, raw_rates = [], []
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        print(f"ledger directory: {tmp}")
        for run in range(args.runs):
            documents = prescriptions(args.count)
            elapsed, rows = library(Path(tmp) / f"lib{run}.sqlite3", documents)
            lib_rates.append(args.count / elapsed)
            raw_rates.append(args.count / raw(Path(tmp) / f"raw{run}.sqlite3", rows))
            print(
                f"run {run + 1}: library {lib_rates[-1]:8.0f}/s   raw SQLite {raw_rates[-1]:8.0f}/s"
            )
    lib, base = median(lib_rates), median(raw_rates)
    print(
        f"\nmedian of {args.runs} runs x {args.count} dispensings: library {lib:.0f} dispensings/s, "
        f"raw inserts {base:.0f}/s, ratio {lib / base:.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()
