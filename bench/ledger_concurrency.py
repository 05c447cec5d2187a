"""16 processes x 10 attempts each to dispense one unit of a line that allows 5, repeated 20 times.

Prints, per repetition, how many were recorded and how the others were refused; the claim is
exactly 5 recorded, 0 "database is locked" (or any other error), every refusal quantity_exceeded.

    .venv/bin/python bench/ledger_concurrency.py [--processes 16] [--attempts 10] [--repeat 20]
    .venv/bin/python bench/ledger_concurrency.py --backend postgresql --processes 32   # 2 sites
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import tempfile
import time
from pathlib import Path

from ledger_common import NOW, RPPS, d, prescriptions

from eprescrire.ledger import open_ledger


def attempts(
    path: str, document: d.Presented, count: int, barrier: object, results: object
) -> None:
    ledger = open_ledger(path)
    barrier.wait()  # type: ignore[attr-defined]
    for _ in range(count):
        try:
            d.dispense(ledger, document, d.Request(RPPS, line=1, quantity=1), NOW)
            results.put("recorded")  # type: ignore[attr-defined]
        except d.Refused as e:
            results.put(e.code.value)  # type: ignore[attr-defined]
        except Exception as e:
            results.put(f"error: {e}")  # type: ignore[attr-defined]
    ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--attempts", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="Ledger backend."
    )
    args = parser.parse_args()
    if args.backend == "postgresql":
        import ledger_pg

        raise SystemExit(ledger_pg.concurrency(args.processes, args.attempts, args.repeat))
    ctx = multiprocessing.get_context("fork")
    documents = prescriptions(args.repeat)
    failures = 0
    totals: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n, document in enumerate(documents, start=1):
            path = str(Path(tmp) / f"l{n}.sqlite3")
            open_ledger(path).close()
            results = ctx.Queue()
            barrier = ctx.Barrier(args.processes)
            started = time.perf_counter()
            workers = [
                ctx.Process(target=attempts, args=(path, document, args.attempts, barrier, results))
                for _ in range(args.processes)
            ]
            for w in workers:
                w.start()
            outcomes = collections.Counter(
                results.get(timeout=120) for _ in range(args.processes * args.attempts)
            )
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - started
            with open_ledger(path) as ledger:
                state = d.state_of(
                    document.prescription, document.kid, ledger.history(document.prescription.id)
                )
                dispensed = state.lines[0].dispensed
                chain_ok = ledger.verify().ok
            ok = (
                outcomes["recorded"] == 5
                and dispensed == 5
                and set(outcomes) == {"recorded", "quantity_exceeded"}
                and chain_ok
            )
            failures += not ok
            totals.update(outcomes)
            print(
                f"run {n:2d}: recorded {outcomes['recorded']}, in ledger {dispensed}, "
                f"refusals {dict((k, v) for k, v in outcomes.items() if k != 'recorded')}, "
                f"chain {'ok' if chain_ok else 'BROKEN'}, {elapsed:.2f} s {'ok' if ok else 'FAIL'}"
            )
    locked = sum(v for k, v in totals.items() if "locked" in k)
    errors = sum(v for k, v in totals.items() if k.startswith("error"))
    print(
        f"\n{args.repeat} runs x {args.processes} processes x {args.attempts} attempts: "
        f"{args.repeat - failures}/{args.repeat} runs with exactly 5 recorded; "
        f"'database is locked': {locked}; other errors: {errors}; refusal codes: "
        f"{sorted(k for k in totals if k != 'recorded')}"
    )
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
