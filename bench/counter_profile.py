#!/usr/bin/env python3
"""Where ``counter``'s time goes for a typed QR text: a CPU-time profile of its own work.

Issues ``--codes`` distinct prescriptions (the reference prescription, each with its own
identifier), then runs ``Session.check`` and the NDJSON verdict (what ``eprescrire counter
--json`` does for each line) over their QR texts, in this process, under cProfile with the
process CPU clock; and, for comparison in the same run, the CPU time per code of the same work
without the profiler and of the bare loop of ``bench/counter_latency.py`` (``qr.decode`` of the
text, the JWS split, one ES256 verify with the public key loaded once).

    .venv/bin/python bench/counter_profile.py [--codes 200] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=200, help="distinct QR texts")
    parser.add_argument("--top", type=int, default=25, help="functions shown")
    parser.add_argument("--rounds", type=int, default=5, help="unprofiled rounds (median)")
    args = parser.parse_args()

    from counter_latency import bare_loop, issue
    from cryptography.hazmat.primitives import serialization

    from eprescrire import qr
    from eprescrire.services.counter import Session
    from eprescrire.trust import TrustStore

    documents = issue(args.codes)
    texts = [qr.encode(d) for d in documents]  # type: ignore[arg-type]
    if len(set(texts)) != len(texts):
        raise SystemExit("the issued codes are not all distinct")
    pem = documents[0].certificates[0].public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    session = Session(TrustStore.open(ROOT / "keys" / "demo-trust"))

    def counter_work() -> None:
        for text in texts:
            (verdict,) = session.check(text.encode())
            line = (
                verdict.to_json_bytes()  # what counter --json writes
                if hasattr(verdict, "to_json_bytes")
                else json.dumps(verdict.to_json(), ensure_ascii=False, separators=(",", ":"))
            )
            if verdict.status != "valid" or not line:
                raise SystemExit(f"session: {verdict.to_json()}")

    counter_work()  # warm: the trust store's caches, the QR dictionary
    bare_loop(texts[:5], False, pem)
    session_cpu, bare_cpu = [], []
    for _ in range(args.rounds):  # interleaved: both see the same machine load
        start = time.process_time()
        counter_work()
        session_cpu.append((time.process_time() - start) / len(texts))
        start = time.process_time()
        bare_loop(texts, False, pem)
        bare_cpu.append((time.process_time() - start) / len(texts))
    session_median, bare_median = statistics.median(session_cpu), statistics.median(bare_cpu)
    print(
        f"{len(texts)} QR texts; CPU per code (median of {args.rounds} rounds): "
        f"Session.check + NDJSON verdict {session_median * 1000:.3f} ms, "
        f"bare loop {bare_median * 1000:.3f} ms, ratio {session_median / bare_median:.2f}"
    )
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    counter_work()
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
