"""A dispensing batch killed with SIGKILL at a random moment, 50 times, on the same ledger.

The batch dispenses (``--all``) a list of prescriptions, each twice (the second must be
refused), and reports every commit on a pipe as it returns. After each kill: SQLite's integrity
check, the hash chain, no line over-dispensed, and every dispensing reported as done before the
kill still present with the same hash.

    .venv/bin/python bench/ledger_crash.py [--kills 50] [--prescriptions 6000]
    .venv/bin/python bench/ledger_crash.py --backend postgresql [--kills 50]   # stop -m immediate / kill connections
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import tempfile
import time
from pathlib import Path

from ledger_common import NOW, RPPS, d, prescriptions

from eprescrire.ledger import open_ledger


def batch(path: str, documents: list[d.Presented], done: object) -> None:
    ledger = open_ledger(path)
    for document in documents:
        for _ in range(2):
            try:
                written = d.dispense(ledger, document, d.Request(RPPS), NOW).records
                done.send((document.prescription.id, written[-1].seq, written[-1].hash))  # type: ignore[attr-defined]
            except d.Refused:
                pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--prescriptions", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="Ledger backend."
    )
    args = parser.parse_args()
    if args.backend == "postgresql":
        import ledger_pg

        raise SystemExit(ledger_pg.crash(args.kills, args.prescriptions, args.seed))
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(args.seed)
    documents = prescriptions(args.prescriptions)
    reported: list[tuple[str, int, str]] = []
    problems = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "l.sqlite3")
        open_ledger(path).close()
        for kill in range(1, args.kills + 1):
            receiver, sender = ctx.Pipe(duplex=False)
            # Start a little before where the previous batch died: some prescriptions are
            # already dispensed (refused), then new ones.
            done_ids = {pid for pid, _, _ in reported}
            start = max(0, len(done_ids) - 5)
            worker = ctx.Process(target=batch, args=(path, documents[start:], sender))
            worker.start()
            sender.close()
            time.sleep(rng.uniform(0.005, 0.08))
            os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
            worker.join()
            before = len(reported)
            while receiver.poll():
                try:
                    reported.append(receiver.recv())
                except EOFError:
                    break
            with open_ledger(path) as ledger:
                report = ledger.verify()
                missing = sum(
                    1
                    for pid, seq, digest in reported
                    if (r := ledger.record_at(seq)) is None
                    or r.hash != digest
                    or r.prescription_id != pid
                )
                over = 0
                for document in documents:
                    state = d.state_of(
                        document.prescription,
                        document.kid,
                        ledger.history(document.prescription.id),
                    )
                    over += sum(ls.dispensed > ls.prescribed for ls in state.lines)
                head = ledger.head()[0]
            bad = (not report.ok) or missing or over
            problems += bool(bad)
            print(
                f"kill {kill:2d}: {len(reported) - before:3d} new commits reported, ledger head {head:5d}, "
                f"integrity {report.integrity[0]}, chain {'ok' if report.problem is None else report.problem}, "
                f"reported-but-missing {missing}, over-dispensed lines {over}"
            )
    print(
        f"\n{args.kills} kills: {args.kills - problems}/{args.kills} clean; "
        f"{len(reported)} reported dispensings all present: {problems == 0}"
    )
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
