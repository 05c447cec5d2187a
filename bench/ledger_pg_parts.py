"""Parts of a shared-ledger dispensing, measured alone (one process, CPU-bound, no lock needed
for relative figures; medians of --runs):

- ``fold``: the state a first dispensing returns, folded again from the whole history against
  folded on from the rules' state over the records written (``state_after``);
- ``compression``: rows holding the bench's prescription body inserted into a column compressed
  with pglz against lz4 (the server's time, one statement of --rows rows);
- ``expressions``: PL/pgSQL assignments, one against 20 distinct ones, a COMMIT after each
  iteration (an expression's set-up is per transaction);
- ``--first-writes N`` (alone): CPU per dispensing (client ``time.process_time``, its server
  backend's utime + stime) of a warm session's one-round-trip first write when the chain is
  empty (hit) and when another pharmacy wrote it first (miss: every attempt made), against the
  same dispensings reading the history first (the attempt switched off), medians of --runs.

    .venv/bin/python bench/ledger_pg_parts.py [--runs 3] [--rows 4000]
- ``--checks N`` (alone): the server's CPU per dispensing (its backend's run time from
  /proc/PID/schedstat, in nanoseconds: utime counts in 10 ms ticks) of a warm session's first
  writes with ``ledger.records``' checks as schema 6 has them (one constraint calling
  ``ledger.record_ok``) and as schema 5 had them (four constraints, which PostgreSQL reads back
  from their text and plans again in every INSERT), switched in the same database between
  batches of N, alternately, --runs times each; medians, and the median of the paired
  differences.

    .venv/bin/python bench/ledger_pg_parts.py [--runs 3] [--rows 4000]
    .venv/bin/python bench/ledger_pg_parts.py --first-writes 200 [--runs 5]
    .venv/bin/python bench/ledger_pg_parts.py --checks 400 [--runs 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ledger_pg
from ledger_common import NOW, d, median, prescriptions

from eprescrire.dispensing.state import state_after
from eprescrire.ledger import History, open_ledger
from eprescrire.ledger.postgres import PostgresLedger


def fold(runs: int) -> None:
    documents = prescriptions(300)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = open_ledger(str(Path(tmp) / "ledger.sqlite3"))
        request = d.Request("10003456786", line=1, quantity=1)
        cases = []
        for doc in documents:
            written = d.dispense(ledger, doc, request, NOW).records
            before = History(doc.prescription.id, ())
            cases.append((doc, before, d.state_of(doc.prescription, doc.kid, before), written))
        ledger.close()
    again, on = [], []
    for _ in range(runs):
        started = time.process_time()
        for doc, before, _state, written in cases:
            after = History(doc.prescription.id, before.records + written)
            d.state_of(doc.prescription, doc.kid, after)
        again.append((time.process_time() - started) / len(cases))
        started = time.process_time()
        for _doc, before, state, written in cases:
            state_after(state, before, written)
        on.append((time.process_time() - started) / len(cases))
    print(
        f"fold after a first dispensing: whole history again {median(again) * 1e6:.1f} us, "
        f"folded on {median(on) * 1e6:.1f} us"
    )


def server_parts(runs: int, rows: int) -> None:
    import psycopg

    pg = ledger_pg.server()
    url = pg.fresh_ledger()
    try:
        site, pharmacist, finess = ledger_pg._sites(pg, url)[0]
        with open_ledger(site) as ledger:
            request = d.Request(pharmacist, line=1, quantity=1, pharmacy=finess)
            d.dispense(ledger, prescriptions(1)[0], request, NOW)
        with psycopg.connect(url, autocommit=True) as db:
            body = db.execute(
                "SELECT body FROM ledger.records WHERE kind = 'prescription'"
            ).fetchone()[0]  # type: ignore[index]
            times: dict[str, list[float]] = {"pglz": [], "lz4": []}
            for method in times:
                db.execute(f"CREATE TABLE parts_{method} (h text, b text COMPRESSION {method})")
            for _ in range(runs):
                for method, values in times.items():
                    started = time.perf_counter()
                    db.execute(
                        f"INSERT INTO parts_{method} SELECT repeat('a', 200), %s || i"
                        " FROM generate_series(1, %s) i",
                        (body, rows),
                    )
                    values.append((time.perf_counter() - started) / rows)
            stored = {
                m: db.execute(
                    f"SELECT pg_column_compression(b), pg_column_size(b) FROM parts_{m} LIMIT 1"
                ).fetchone()
                for m in times
            }
            print(
                f"a row with the prescription body ({len(body)} bytes): "
                + ", ".join(
                    f"{m} {median(v) * 1e6:.1f} us (stored {stored[m]})" for m, v in times.items()
                )
            )
            notes: list[str] = []
            db.add_notice_handler(lambda n: notes.append(n.message_primary or ""))
            for name, count in (("1 assignment", 1), ("20 distinct assignments", 20)):
                statements = " ".join(f"x := x + {k};" for k in range(1, count + 1))
                figures = []
                for _ in range(runs):
                    db.execute(
                        "DO $d$ DECLARE x integer := 0; s timestamptz; BEGIN"
                        " s := clock_timestamp();"
                        f" FOR i IN 1..3000 LOOP {statements} COMMIT; END LOOP;"
                        " RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - s) / 3000;"
                        " END $d$"
                    )
                    figures.append(float(notes[-1]))
                print(f"PL/pgSQL, {name} then COMMIT: {median(figures) * 1e6:.2f} us")
    finally:
        pg.drop(url)


def first_writes(runs: int, count: int) -> None:
    pg = ledger_pg.server()
    cases = ("hit", "first, history read first", "miss", "renewal, history read first")
    figures: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    for _ in range(runs):
        url = pg.fresh_ledger()
        try:
            (url_a, rpps_a, finess_a), (url_b, rpps_b, finess_b) = ledger_pg._sites(pg, url)
            documents = prescriptions(4 * count + 4)
            a, b = open_ledger(url_a), open_ledger(url_b)
            assert isinstance(a, PostgresLedger)
            request_a = d.Request(rpps_a, line=1, quantity=1, pharmacy=finess_a)
            request_b = d.Request(rpps_b, line=1, quantity=1, pharmacy=finess_b)
            for document in documents[:4]:  # the session now has spare sequence numbers
                d.dispense(a, document, request_a, NOW)
            batches = [documents[4 + i * count : 4 + (i + 1) * count] for i in range(4)]
            for document in batches[2] + batches[3]:  # written first by pharmacy B
                d.dispense(b, document, request_b, NOW)
            backend = a._db.execute("SELECT pg_backend_pid()").fetchone()[0]
            for case, batch in zip(cases, batches, strict=True):
                if "history read first" in case:  # the attempt switched off
                    setattr(a, "_first_write", lambda *args: None)  # noqa: B010
                server0, client0 = ledger_pg._backend_cpu(backend), time.process_time()
                for document in batch:
                    a._hits = 1.0  # every attempt made (a session would stop after misses)
                    d.dispense(a, document, request_a, NOW)
                client1, server1 = time.process_time(), ledger_pg._backend_cpu(backend)
                vars(a).pop("_first_write", None)
                figures[case].append(((client1 - client0) / count, (server1 - server0) / count))
            a.close()
            b.close()
        finally:
            pg.drop(url)
    for case, values in figures.items():
        client = median([v[0] for v in values]) * 1e3
        server = median([v[1] for v in values]) * 1e3
        print(
            f"{case:28s} client CPU {client:.3f} ms, server CPU {server:.3f} ms, "
            f"total {client + server:.3f} ms"
        )


_CHECKS_DROPPED = (
    "ALTER TABLE ledger.records DROP CONSTRAINT IF EXISTS records_check,"
    " DROP CONSTRAINT IF EXISTS records_pos_check, DROP CONSTRAINT IF EXISTS records_kind_check,"
    " DROP CONSTRAINT IF EXISTS records_prev_hash_check,"
    " DROP CONSTRAINT IF EXISTS records_hash_check, "
)
CHECKS = {
    "schema 6 (one check)": _CHECKS_DROPPED
    + "ADD CONSTRAINT records_check CHECK (ledger.record_ok(pos, kind, prev_hash, hash))",
    "schema 5 (four checks)": _CHECKS_DROPPED + "ADD CONSTRAINT records_pos_check CHECK (pos >= 1),"
    " ADD CONSTRAINT records_kind_check"
    " CHECK (kind IN ('prescription', 'dispensing', 'cancellation', 'consent')),"
    " ADD CONSTRAINT records_prev_hash_check"
    """ CHECK (octet_length(prev_hash) = 64 AND prev_hash COLLATE "C" ~ '^[0-9a-f]+$'),"""
    " ADD CONSTRAINT records_hash_check"
    """ CHECK (octet_length(hash) = 64 AND hash COLLATE "C" ~ '^[0-9a-f]+$')""",
}


def _run_time(pid: int) -> float:
    """A process's time on a CPU so far (seconds, nanosecond resolution), from /proc."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e9


def checks(runs: int, count: int) -> None:
    import psycopg

    pg = ledger_pg.server()
    url = pg.fresh_ledger()
    figures: dict[str, list[float]] = {name: [] for name in CHECKS}
    try:
        url_a, rpps_a, finess_a = ledger_pg._sites(pg, url)[0]
        documents = iter(prescriptions(runs * len(CHECKS) * (count + 10) + 4))
        ledger = open_ledger(url_a)
        assert isinstance(ledger, PostgresLedger)
        request = d.Request(rpps_a, line=1, quantity=1, pharmacy=finess_a)
        for _ in range(4):  # the session now has spare sequence numbers
            d.dispense(ledger, next(documents), request, NOW)
        backend = ledger._db.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(url, autocommit=True) as admin:
            for run in range(runs):
                names = list(CHECKS) if run % 2 == 0 else list(reversed(CHECKS))
                for name in names:
                    admin.execute(CHECKS[name].encode())
                    for _ in range(10):  # statements planned again after the change
                        d.dispense(ledger, next(documents), request, NOW)
                    start = _run_time(backend)
                    for _ in range(count):
                        d.dispense(ledger, next(documents), request, NOW)
                    figures[name].append((_run_time(backend) - start) / count)
        ledger.close()
    finally:
        pg.drop(url)
    print(f"load average after: {ledger_pg._load()}")
    for name, values in figures.items():
        print(
            f"{name:24s} server CPU per dispensing, median of {runs}: {median(values) * 1e3:.3f} ms"
        )
    new, old = (figures[name] for name in CHECKS)
    paired = median([a - b for a, b in zip(new, old, strict=True)]) * 1e3
    print(f"median of the paired differences (schema 6 - schema 5): {paired:+.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--first-writes", type=int, metavar="N", help="only this part")
    parser.add_argument("--checks", type=int, metavar="N", help="only this part")
    args = parser.parse_args()
    if args.checks:
        checks(args.runs, args.checks)
        return
    if args.first_writes:
        first_writes(args.runs, args.first_writes)
        return
    fold(args.runs)
    server_parts(args.runs, args.rows)


if __name__ == "__main__":
    main()
