#!/usr/bin/env python3
"""Start-up: wall time of ``eprescrire --help`` and ``eprescrire --version`` against
``python -c pass`` with the same interpreter, measured in the same run (medians).

    python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "eprescrire --version": [script, "--version"],
        "eprescrire --help": [script, "--help"],
        "eprescrire verify --help": [script, "verify", "--help"],
    }
    for command in commands.values():  # warm the file cache
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(wall(command))
    base = statistics.median(times["python -c pass"])
    print(f"start-up, median of {args.runs} runs (interleaved)")
    print(f"{'command':<28}{'ms':>8}{'x python':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28}{median * 1000:>8.1f}{median / base:>10.2f}")


if __name__ == "__main__":
    main()
