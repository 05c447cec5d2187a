"""The ledger benchmarks on the shared PostgreSQL ledger (``--backend postgresql``).

They run against the test cluster (``scripts/postgres-test-cluster.sh``, started when needed, or
``EPRESCRIRE_TEST_PG_URL``), each in fresh databases dropped at the end. Sites log in as their
own roles (SCRAM), so every database rule and trigger is on the measured path.
"""

from __future__ import annotations

import collections
import multiprocessing
import random
import sys
import time
import uuid
from typing import Any

from ledger_common import NOW, ROOT, d, median, prescriptions

from eprescrire.ledger import chain, open_ledger
from eprescrire.ledger.postgres import PostgresLedger

sys.path.insert(0, str(ROOT))
from tests.postgres_support import Server, server, start, stop_immediately

PHARMACIST_A, FINESS_A = "10000000007", "750001232"
PHARMACIST_B, FINESS_B = "10000000015", "750001240"


def _sites(pg: Server, url: str) -> list[tuple[str, str, str]]:
    a = pg.site(url, "bench_a", "pharmacy", finess=FINESS_A, rpps=PHARMACIST_A)
    b = pg.site(url, "bench_b", "pharmacy", finess=FINESS_B, rpps=PHARMACIST_B)
    return [(a.url, PHARMACIST_A, FINESS_A), (b.url, PHARMACIST_B, FINESS_B)]


def _load() -> str:
    """The machine's load average (1, 5, 15 min): the figures depend on what else runs."""
    import os

    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _settings(pg: Server) -> str:
    with pg.admin() as db:
        values = [
            f"{name}={db.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("synchronous_commit", "fsync", "wal_sync_method", "server_version")
        ]
    return ", ".join(values)


# ----------------------------------------------------------------------------- concurrency


def _race(
    site: tuple[str, str, str], document: d.Presented, count: int, barrier: Any, results: Any
) -> None:
    url, pharmacist, finess = site
    try:
        ledger = open_ledger(url)
    except Exception as e:
        for _ in range(count):
            results.put(f"error: {e}")
        return
    barrier.wait()
    for _ in range(count):
        try:
            d.dispense(
                ledger, document, d.Request(pharmacist, line=1, quantity=1, pharmacy=finess), NOW
            )
            results.put("recorded")
        except d.Refused as e:
            results.put(e.code.value)
        except Exception as e:
            results.put(f"error: {e}")
    ledger.close()


def concurrency(processes: int, attempts: int, repeat: int) -> int:
    pg = server()
    url = pg.fresh_ledger()
    ctx = multiprocessing.get_context("fork")
    failures = 0
    totals: collections.Counter[str] = collections.Counter()
    try:
        sites = _sites(pg, url)
        print(f"PostgreSQL ({_settings(pg)}); {processes} processes from 2 sites")
        for n, document in enumerate(prescriptions(repeat), start=1):
            results = ctx.Queue()
            barrier = ctx.Barrier(processes)
            started = time.perf_counter()
            workers = [
                ctx.Process(target=_race, args=(sites[i % 2], document, attempts, barrier, results))
                for i in range(processes)
            ]
            for w in workers:
                w.start()
            outcomes = collections.Counter(
                results.get(timeout=300) for _ in range(processes * attempts)
            )
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - started
            with open_ledger(url) as ledger:
                state = d.state_of(
                    document.prescription, document.kid, ledger.history(document.prescription.id)
                )
                dispensed = state.lines[0].dispensed
            ok = (
                outcomes["recorded"] == 5
                and dispensed == 5
                and set(outcomes) <= {"recorded", "quantity_exceeded"}
            )
            failures += not ok
            totals.update(outcomes)
            print(
                f"run {n:2d}: recorded {outcomes['recorded']}, in ledger {dispensed}, refusals "
                f"{dict((k, v) for k, v in outcomes.items() if k != 'recorded')}, {elapsed:.2f} s "
                f"{'ok' if ok else 'FAIL'}"
            )
        with open_ledger(url) as ledger:
            chain_ok = ledger.verify().ok
    finally:
        pg.drop(url)
    errors = sum(v for k, v in totals.items() if k.startswith("error"))
    print(
        f"\n{repeat} runs x {processes} processes (2 sites) x {attempts} attempts: "
        f"{repeat - failures}/{repeat} runs with exactly 5 recorded; errors other than refusals: "
        f"{errors}; refusal codes: {sorted(k for k in totals if k != 'recorded')}; chain "
        f"{'ok' if chain_ok else 'BROKEN'}"
    )
    return 1 if failures or not chain_ok else 0


# ----------------------------------------------------------------------------- throughput


def _library_client(
    url: str, pharmacist: str, finess: str, documents: list[d.Presented], barrier: Any, out: Any
) -> None:
    ledger = open_ledger(url)
    request = d.Request(pharmacist, line=1, quantity=1, pharmacy=finess)
    barrier.wait()
    started = time.perf_counter()
    outcomes = [d.dispense(ledger, document, request, NOW).records for document in documents]
    elapsed = time.perf_counter() - started
    # The baseline's rows (the same records) are prepared after the clock stops.
    rows = [
        (
            r.prescription_id,
            i + 1,
            r.seq,
            r.kind,
            r.recorded_at,
            chain.body_text(r.body),
            r.prev_hash,
            r.hash,
        )
        for written in outcomes
        for i, r in enumerate(written)
    ]
    out.put((elapsed, rows))
    ledger.close()


_RAW_TABLE = """CREATE TABLE raw_records (
    prescription_id text NOT NULL, pos integer NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
    recorded_at text NOT NULL, body text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,
    request_id uuid NOT NULL, PRIMARY KEY (prescription_id, pos))"""


def _raw_client(url: str, rows: list[tuple[Any, ...]], barrier: Any, out: Any) -> None:
    import psycopg

    db = psycopg.connect(url, autocommit=True)
    barrier.wait()
    started = time.perf_counter()
    for i in range(0, len(rows), 2):
        request = uuid.uuid4()
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO raw_records VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*row, request) for row in rows[i : i + 2]],
            )
    out.put((time.perf_counter() - started, []))
    db.close()


def _parallel(ctx: Any, target: Any, per_client: list[tuple[Any, ...]]) -> tuple[float, list[Any]]:
    out = ctx.Queue()
    barrier = ctx.Barrier(len(per_client))
    workers = [ctx.Process(target=target, args=(*a, barrier, out)) for a in per_client]
    for w in workers:
        w.start()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    return max(r[0] for r in results), [row for r in results for row in r[1]]


def throughput(count: int, runs: int, levels: list[int]) -> int:
    pg = server()
    ctx = multiprocessing.get_context("fork")
    print(f"PostgreSQL ({_settings(pg)}); one transaction per dispensing, committed durably")
    print(f"load average before: {_load()}")
    summary = []
    for clients in levels:
        lib_rates, raw_rates = [], []
        per = max(1, count // clients)
        for run in range(runs):
            url = pg.fresh_ledger()
            raw_url = pg.url(pg.create_database())
            try:
                sites = _sites(pg, url)
                documents = prescriptions(per * clients)
                chunks = [documents[i * per : (i + 1) * per] for i in range(clients)]
                elapsed, rows = _parallel(
                    ctx,
                    _library_client,
                    [(*sites[i % 2], chunks[i]) for i in range(clients)],
                )
                lib_rates.append(per * clients / elapsed)
                import psycopg

                with psycopg.connect(raw_url, autocommit=True) as db:
                    db.execute(_RAW_TABLE)
                by_pid: dict[str, list[tuple[Any, ...]]] = collections.defaultdict(list)
                for row in rows:
                    by_pid[row[0]].append(row)
                raw_chunks = [
                    [row for doc in chunk for row in by_pid[doc.prescription.id]]
                    for chunk in chunks
                ]
                elapsed, _ = _parallel(
                    ctx, _raw_client, [(raw_url, raw_chunks[i]) for i in range(clients)]
                )
                raw_rates.append(per * clients / elapsed)
            finally:
                pg.drop(url)
                pg.drop(raw_url)
            print(
                f"{clients:2d} client(s), run {run + 1}: library {lib_rates[-1]:7.0f}/s   "
                f"raw psycopg INSERTs {raw_rates[-1]:7.0f}/s   ratio {lib_rates[-1] / raw_rates[-1]:.2f}"
            )
        lib, base = median(lib_rates), median(raw_rates)
        paired = median([a / b for a, b in zip(lib_rates, raw_rates, strict=True)])
        summary.append((clients, lib, base, paired))
    print(f"\nload average after: {_load()}")
    for clients, lib, base, paired in summary:
        # Each run measures the library then the baseline, back to back: on a machine whose load
        # changes by the minute, the median of these paired ratios is the steadier figure.
        print(
            f"{clients:2d} concurrent client(s), median of {runs} x {count} dispensings: library "
            f"{lib:.0f}/s, raw INSERTs {base:.0f}/s, ratio {lib / base:.2f}; median of the "
            f"per-run ratios {paired:.2f} (target >= 0.5)"
        )
    return 0


def _backend_cpu(pid: int) -> float:
    """A server backend's CPU time so far (utime + stime, seconds), from /proc."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu(count: int, runs: int) -> int:
    """CPU time per dispensing, one client: the client's (``time.process_time``) and its
    server backend's (utime + stime from /proc; the server runs on this machine), library then
    raw INSERTs of the same rows, medians of ``runs``."""
    import psycopg

    pg = server()
    print(f"PostgreSQL ({_settings(pg)}); one client, {count} dispensings per run")
    figures: dict[str, list[tuple[float, float, float]]] = {"library": [], "raw": []}
    warm = 20
    for _ in range(runs):
        url = pg.fresh_ledger()
        raw_url = pg.url(pg.create_database())
        try:
            site_url, pharmacist, finess = _sites(pg, url)[0]
            documents = prescriptions(count + warm)
            ledger = open_ledger(site_url)
            request = d.Request(pharmacist, line=1, quantity=1, pharmacy=finess)
            for document in documents[:warm]:
                d.dispense(ledger, document, request, NOW)
            backend = ledger._db.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]
            s0, c0, w0 = _backend_cpu(backend), time.process_time(), time.perf_counter()
            written = [d.dispense(ledger, doc, request, NOW).records for doc in documents[warm:]]
            w1, c1, s1 = time.perf_counter(), time.process_time(), _backend_cpu(backend)
            figures["library"].append(((c1 - c0) / count, (s1 - s0) / count, (w1 - w0) / count))
            ledger.close()
            rows = [
                (r.prescription_id, i + 1, r.seq, r.kind, r.recorded_at, chain.body_text(r.body),
                 r.prev_hash, r.hash)
                for records in written for i, r in enumerate(records)
            ]  # fmt: skip
            with psycopg.connect(raw_url, autocommit=True) as db:
                db.execute(_RAW_TABLE)
                backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
                s0, c0, w0 = _backend_cpu(backend), time.process_time(), time.perf_counter()
                for i in range(0, len(rows), 2):
                    request_id = uuid.uuid4()
                    with db.transaction(), db.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO raw_records VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            [(*row, request_id) for row in rows[i : i + 2]],
                        )
                w1, c1, s1 = time.perf_counter(), time.process_time(), _backend_cpu(backend)
                figures["raw"].append(((c1 - c0) / count, (s1 - s0) / count, (w1 - w0) / count))
        finally:
            pg.drop(url)
            pg.drop(raw_url)
        lib, raw = figures["library"][-1], figures["raw"][-1]
        print(
            f"run: library client {lib[0] * 1e3:.3f} ms, server {lib[1] * 1e3:.3f} ms, wall "
            f"{lib[2] * 1e3:.3f} ms; raw client {raw[0] * 1e3:.3f} ms, server "
            f"{raw[1] * 1e3:.3f} ms, wall {raw[2] * 1e3:.3f} ms"
        )
    print(f"load average after: {_load()}")
    for name, values in figures.items():
        client, backend_cpu, wall = (median([v[i] for v in values]) * 1e3 for i in range(3))
        print(
            f"{name:7s} per dispensing, median of {runs}: client CPU {client:.3f} ms, server CPU "
            f"{backend_cpu:.3f} ms, wall {wall:.3f} ms"
        )
    return 0


# ----------------------------------------------------------------------------- crash


def _batch(site: tuple[str, str, str], documents: list[d.Presented], done: Any) -> None:
    url, pharmacist, finess = site
    while True:
        try:
            ledger = open_ledger(url)
            break
        except Exception:
            time.sleep(0.2)
    for document in documents:
        for _ in range(2):
            try:
                written = d.dispense(
                    ledger, document, d.Request(pharmacist, pharmacy=finess), NOW
                ).records
                done.put(("ack", document.prescription.id, written[-1].seq, written[-1].hash))
            except d.Refused:
                pass
            except Exception as e:
                done.put(("error", " ".join(str(e).split())[:160], 0, ""))
                return
    done.put(("end", "", 0, ""))


def crash(faults: int, prescriptions_count: int, seed: int) -> int:
    pg = server()
    rng = random.Random(seed)
    ctx = multiprocessing.get_context("fork")
    url = pg.fresh_ledger()
    problems = 0
    acked: list[tuple[str, int, str]] = []
    documents = prescriptions(prescriptions_count)
    errors: collections.Counter[str] = collections.Counter()
    try:
        sites = _sites(pg, url)
        cursor = 0
        for fault in range(1, faults + 1):
            done = ctx.Queue()
            chunk = documents[cursor : cursor + 40]
            cursor = max(0, cursor + 40 - 5) % max(1, len(documents) - 40)
            workers = [
                ctx.Process(target=_batch, args=(sites[i % 2], chunk[i::4] + chunk[: i + 1], done))
                for i in range(4)
            ]
            for w in workers:
                w.start()
            time.sleep(rng.uniform(0.05, 0.4))
            how = "server stopped (-m immediate)" if fault % 2 else "connections killed"
            if fault % 2:
                stop_immediately()
                time.sleep(0.2)
                start()
            else:
                with pg.admin() as db:
                    pids = [
                        r[0]
                        for r in db.execute(
                            "SELECT pid FROM pg_stat_activity WHERE usename LIKE 'ept_%%' AND pid <> pg_backend_pid()"
                        ).fetchall()
                    ]
                    for pid in rng.sample(pids, k=max(1, len(pids) // 2)) if pids else []:
                        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for w in workers:
                w.join(120)
                if w.is_alive():
                    w.kill()
            new = 0
            while not done.empty():
                kind, pid, seq, digest = done.get()
                if kind == "ack":
                    acked.append((pid, seq, digest))
                    new += 1
                elif kind == "error":
                    errors[pid.split(":")[0]] += 1
            with open_ledger(url) as ledger:
                report = ledger.verify()
                assert isinstance(ledger, PostgresLedger)
                missing = 0
                for pid, seq, digest in acked:
                    r = ledger.record_at(seq)
                    missing += r is None or r.hash != digest or r.prescription_id != pid
                over = 0
                for document in chunk:
                    state = d.state_of(
                        document.prescription,
                        document.kid,
                        ledger.history(document.prescription.id),
                    )
                    over += sum(ls.dispensed > ls.prescribed for ls in state.lines)
            bad = (not report.ok) or missing or over
            problems += bool(bad)
            print(
                f"fault {fault:2d} ({how}): {new:3d} acknowledged, chain "
                f"{'ok' if report.ok else report.problem}, acknowledged-but-missing {missing}, "
                f"over-dispensed lines {over}"
            )
    finally:
        pg.drop(url)
    print(
        f"\n{faults} faults: {faults - problems}/{faults} clean; {len(acked)} acknowledged dispensings "
        f"all present: {problems == 0}; errors seen by clients (exit 4): {dict(errors)}"
    )
    return 1 if problems else 0


# ----------------------------------------------------------------------------- tampering


TAMPER = {
    "edit-quantity": "UPDATE ledger.records SET body = replace(body, '\"quantity\":1', '\"quantity\":2') WHERE seq = {seq}",
    "edit-time": "UPDATE ledger.records SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = {seq}",
    "edit-kind": "UPDATE ledger.records SET kind = 'consent' WHERE seq = {seq}",
    "edit-hash": "UPDATE ledger.records SET hash = repeat('a', 64) WHERE seq = {seq}",
    "delete": "DELETE FROM ledger.records WHERE seq = {seq}",
    "swap": (
        "UPDATE ledger.records SET pos = pos + 1000 WHERE prescription_id = "
        "(SELECT prescription_id FROM ledger.records WHERE seq = {seq}) AND pos IN ({pos}, {pos} + 1);"
        " UPDATE ledger.records SET pos = CASE pos WHEN {pos} + 1000 THEN {pos} + 1 ELSE {pos} END"
        " WHERE pos IN ({pos} + 1000, {pos} + 1001)"
    ),
    "insert": (
        "INSERT INTO ledger.records SELECT prescription_id, pos + 1000, nextval('ledger.record_seq'),"
        " kind, recorded_at, body, prev_hash, hash, actor, request_id, line, quantity"
        " FROM ledger.records WHERE seq = {seq}"
    ),
}


def tamper(count: int, records: int, seed: int) -> int:
    import psycopg

    pg = server()
    rng = random.Random(seed)
    base = pg.fresh_ledger()
    base_name = base.rsplit("/", 1)[1]
    detected = named = 0
    kinds: collections.Counter[str] = collections.Counter()
    try:
        with open_ledger(base) as ledger:
            docs = prescriptions(records // 3 + 1)
            for document in docs:
                d.dispense(ledger, document, d.Request(PHARMACIST_A, line=1, quantity=1), NOW)
                d.dispense(ledger, document, d.Request(PHARMACIST_A, line=1, quantity=1), NOW)
                if ledger.head()[0] >= records:
                    break
            layout = [(r.seq, r.prescription_id) for r in ledger.records()]
            dispensings = {r.seq for r in ledger.records() if r.kind == "dispensing"}
            positions = {}
            for pid in {p for _, p in layout}:
                for i, r in enumerate(ledger.history(pid).records, start=1):
                    positions[r.seq] = (pid, i, len(ledger.history(pid).records))
        print(
            f"ledger of {len(layout)} records in {len(positions) and len({p for _, p in layout})} chains"
        )
        with pg.admin() as admin:
            admin.execute(f'ALTER DATABASE "{base_name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (base_name,),
            )
        for n in range(1, count + 1):
            kind = rng.choice(sorted(TAMPER))
            choices = sorted(positions.items())
            if kind == "edit-quantity":  # a change that a dispensing's reader would act on
                choices = [c for c in choices if c[0] in dispensings]
            seq, (pid, pos, length) = rng.choice(choices)
            if kind == "swap" and pos == length:
                pos -= 1
                seq = next(s for s, v in positions.items() if v[0] == pid and v[1] == pos)
            copy = f"{base_name}_t{n}"
            with pg.admin() as admin:
                admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{base_name}"')
            url = pg.url(copy)
            try:
                with psycopg.connect(url, autocommit=True) as db:
                    db.execute("SET session_replication_role = replica")
                    db.execute(TAMPER[kind].format(seq=seq, pos=pos).encode())
                with open_ledger(url) as ledger:
                    report = ledger.verify()
            finally:
                with pg.admin() as admin:
                    admin.execute(f'DROP DATABASE "{copy}" WITH (FORCE)')
            kinds[kind] += 1
            ok = not report.ok
            # The first bad record: the victim (or, for a deletion of a chain's last record,
            # the head naming it; for a swap, the first of the two).
            is_named = ok and pid in (report.problem or "")
            detected += ok
            named += is_named
            if not is_named:
                print(
                    f"tampering {n} ({kind} at {seq}): {'detected' if ok else 'MISSED'}: {report.problem}"
                )
    finally:
        with pg.admin() as admin:
            admin.execute(f'ALTER DATABASE "{base_name}" ALLOW_CONNECTIONS true')
        pg.drop(base)
    print(
        f"\n{count} tamperings as the database superuser ({dict(sorted(kinds.items()))}): "
        f"{detected} detected, {named} naming the tampered prescription's first bad record"
    )
    return 0 if detected == named == count else 1
