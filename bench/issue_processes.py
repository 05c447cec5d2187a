#!/usr/bin/env python3
"""Where the CPU of ``issue --with-pdf --jobs N`` goes, process by process.

    python bench/issue_processes.py [--count 200] [--jobs 2] [--repeat 3] [--tree OLD]

Runs ``eprescrire issue - --with-pdf --jobs N`` on N prescriptions (the inputs of
``issue_throughput.py``) and samples ``/proc/PID/stat`` of the command and of each process it
forks every 10 ms: for each process, its CPU time (user + system) and the time it existed,
and the difference, the time it spent off a core (waiting for work, or for a core). Also the
total CPU of the command and its processes, exact (``getrusage`` of the reaped children; the
sampled figures miss at most the last 10 ms of each process). ``--tree OLD`` (a checkout, e.g.
``git archive`` of an older commit) runs that checkout's ``eprescrire`` (``PYTHONPATH``)
alternately with this one. The load average and the CPU the rest of the machine used during
each run (from /proc/stat) are printed: on a shared machine only runs where that is near
zero say much about wall time; CPU figures are steadier.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _children(parent: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[0] == parent:
                found.append(int(name))
    return found


def _machine() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def run(command: list[str], ndjson: bytes, env: dict[str, str], jobs: int) -> dict:
    """One run: wall time, exact total CPU, others' CPU, and per process (CPU, lifetime)."""
    before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_machine = _machine()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, env=env)
    assert process.stdin is not None
    process.stdin.write(ndjson)
    process.stdin.close()
    seen: dict[int, list[float]] = {}  # pid -> [first seen, last seen, CPU]
    while process.poll() is None:
        now = time.perf_counter() - start
        pids = [process.pid, *(p for p in seen if p != process.pid)]
        if len(seen) < jobs + 1:  # look for the forked processes until all are there
            pids = [process.pid, *_children(process.pid)]
        for pid in pids:
            stat = _stat(pid)
            if stat is None:
                continue
            entry = seen.setdefault(pid, [now, now, 0.0])
            entry[1], entry[2] = now, stat[1]
        time.sleep(0.01)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"the command exited {process.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after_machine = _machine()
    total = (after.ru_utime - before_cpu.ru_utime) + (after.ru_stime - before_cpu.ru_stime)
    busy = ((after_machine[0] - before_machine[0]) - (after_machine[1] - before_machine[1])) / TICK
    processes = [
        {
            "role": "command" if pid == process.pid else "forked",
            "cpu": cpu,
            "alive": last - first,
            "off_cpu": max(0.0, last - first - cpu),
        }
        for pid, (first, last, cpu) in seen.items()
    ]
    return {"wall": wall, "cpu": total, "others": max(0.0, busy - total), "processes": processes}


def main() -> None:
    from issue_throughput import make_inputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="another checkout to measure alike")
    args = parser.parse_args()

    import compileall

    compileall.compile_dir(ROOT / "eprescrire", quiet=1)  # as a wheel install does
    trees: list[Path | None] = [None]
    if args.tree is not None:
        compileall.compile_dir(args.tree / "eprescrire", quiet=1)
        trees.append(args.tree.resolve())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ndjson = b"".join(
        json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in make_inputs(args.count)
    )
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-processes-"))
    key = workdir / "prescriber.p12"
    shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", key)
    key.chmod(0o600)
    exe = shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire")
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}
    print(f"issue - --with-pdf --jobs {args.jobs}, {args.count} prescriptions")
    for _ in range(args.repeat):
        for tree in trees:
            out = workdir / "out"
            shutil.rmtree(out, ignore_errors=True)
            command = [exe, "issue", "-", "--key", str(key), "--out-dir", str(out)]
            command += ["--with-pdf", "--quiet", "--jobs", str(args.jobs)]
            tree_env = env if tree is None else {**env, "PYTHONPATH": str(tree)}
            result = run(command, ndjson, tree_env, args.jobs)
            name = "this tree" if tree is None else tree.name
            print(
                f"{name}: wall {result['wall']:.2f} s, CPU {result['cpu']:.2f} s "
                f"({result['cpu'] / result['wall']:.2f} cores), others "
                f"{result['others']:.2f} CPU s"
            )
            for process in result["processes"]:
                print(
                    f"    {process['role']:<8} CPU {process['cpu']:5.2f} s  alive "
                    f"{process['alive']:5.2f} s  off a core {process['off_cpu']:5.2f} s"
                )
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
