#!/usr/bin/env python3
"""The speed-up of ``issue --jobs 2`` over ``--jobs 1``, measured only when the machine is idle.

    python bench/issue_speedup.py [--count 200] [--minutes 5] [--idle 0.9] [--tree OLD]

A speed-up from a second process is a wall-clock figure and needs the second core free; on a
shared machine it is measured in pairs (``--jobs 1`` then ``--jobs 2``, the same N
prescriptions to signed JSON + A5 PDF), each pair started only when both cores were at least
``--idle`` idle over the last 2 seconds. Each pair prints both wall times, the CPU of each
command (its processes included) and the CPU the rest of the machine used meanwhile (from
/proc/stat, less ours); at the end, the medians and the median of the pairs' speed-ups.

``--tree OLD`` (a checkout, e.g. ``git archive`` of an older commit) also measures that
checkout's pair right after each pair of this one, its ``eprescrire`` imported from there
(``PYTHONPATH``): the two speed-ups come from the same idle moments.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _busy() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    from issue_throughput import make_inputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--idle", type=float, default=0.9)
    parser.add_argument("--tree", type=Path, help="another checkout to measure alike")
    args = parser.parse_args()
    import compileall

    compileall.compile_dir(ROOT / "eprescrire", quiet=1)  # as a wheel install does
    if args.tree is not None:
        compileall.compile_dir(args.tree / "eprescrire", quiet=1)
    hz, cpus = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
    ndjson = b"".join(
        json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in make_inputs(args.count)
    )
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-speedup-"))
    key = workdir / "prescriber.p12"
    shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", key)
    key.chmod(0o600)
    exe = shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire")
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}

    def run(jobs: int, tree: Path | None = None) -> tuple[float, float, float]:
        out = workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        command = [exe, "issue", "-", "--key", str(key), "--out-dir", str(out), "--with-pdf"]
        ours, before, start = _children_cpu(), _busy(), time.perf_counter()
        subprocess.run(
            [*command, "--quiet", "--jobs", str(jobs)],
            input=ndjson,
            env=env if tree is None else {**env, "PYTHONPATH": str(tree.resolve())},
            check=True,
        )
        wall, after = time.perf_counter() - start, _busy()
        ours = _children_cpu() - ours
        busy = ((after[0] - before[0]) - (after[1] - before[1])) / hz
        return wall, ours, max(0.0, busy - ours)

    pairs = []
    old_pairs = []
    deadline = time.time() + 60 * args.minutes
    print(f"{args.count} prescriptions; pairs started when >= {args.idle:.0%} idle")
    while time.time() < deadline:
        before = _busy()
        time.sleep(2)
        after = _busy()
        idle = (after[1] - before[1]) / max(1, after[0] - before[0])
        if idle < args.idle:
            continue
        one, two = run(1), run(2)
        pairs.append((one, two))
        line = (
            f"{time.strftime('%H:%M:%S')} idle {idle:.2f} | jobs1 {one[0]:.2f} s CPU {one[1]:.2f} "
            f"others {one[2]:.2f} | jobs2 {two[0]:.2f} s CPU {two[1]:.2f} others {two[2]:.2f} "
            f"| speed-up {one[0] / two[0]:.2f}"
        )
        if args.tree is not None:
            old_one, old_two = run(1, args.tree), run(2, args.tree)
            old_pairs.append((old_one, old_two))
            line += (
                f" || {args.tree.name}: jobs1 {old_one[0]:.2f} s jobs2 {old_two[0]:.2f} s CPU "
                f"{old_two[1]:.2f} others {old_two[2]:.2f} | speed-up {old_one[0] / old_two[0]:.2f}"
            )
        print(line, flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    if not pairs:
        print("the machine was never idle enough: no pair measured")
        return
    for name, measured in (("this tree", pairs), (str(args.tree), old_pairs)):
        if not measured:
            continue
        med = statistics.median
        one_wall, two_wall = med(p[0][0] for p in measured), med(p[1][0] for p in measured)
        print(
            f"{name}: {len(measured)} pairs ({cpus} CPUs): jobs1 median {one_wall:.2f} s (CPU "
            f"{med(p[0][1] for p in measured):.2f}), jobs2 median {two_wall:.2f} s (CPU "
            f"{med(p[1][1] for p in measured):.2f}); speed-up of the medians "
            f"{one_wall / two_wall:.2f}, median of the pairs' speed-ups "
            f"{med(p[0][0] / p[1][0] for p in measured):.2f} (target >= 1.8); other work used "
            f"a median {med(p[1][2] for p in measured):.2f} CPU s during each jobs2 run"
        )


if __name__ == "__main__":
    main()
