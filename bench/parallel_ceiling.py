#!/usr/bin/env python3
"""What a second process can gain on this machine: the honest bare page loop, once alone and
then as two processes at the same time.

    python bench/parallel_ceiling.py [--pages 100] [--repeat 5]

``issue --jobs 2`` is expected to approach twice the throughput of ``--jobs 1``; the ceiling
is what the machine gives two processes doing the same CPU-bound work with no coordination at
all: the reportlab + segno page of ``bench/bare_page.py`` (no eprescrire code), drawn
``--pages`` times by one process, then by each of two processes started together. Prints the
wall times, the speed-up of each repeat (2 x alone / together) and their median, with the load
average before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _draw(pages: int, start: object) -> None:
    import bare_page

    bare_page.register_fonts()
    _, lines, text = bare_page.reference_inputs()
    bare_page.draw(lines, text)  # warm
    start.wait()  # type: ignore[attr-defined]
    for _ in range(pages):
        bare_page.draw(lines, text)


def _run(processes: int, pages: int) -> float:
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes + 1)
    workers = [context.Process(target=_draw, args=(pages, start)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a drawing process exited {worker.exitcode}")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()}")
    ratios = []
    for _ in range(args.repeat):
        alone = _run(1, args.pages)
        together = _run(2, args.pages)
        ratios.append(2 * alone / together)
        print(
            f"one process {args.pages} pages {alone:.2f} s; two processes {args.pages} pages "
            f"each {together:.2f} s; speed-up {ratios[-1]:.2f}"
        )
    print(f"median speed-up of two processes: {statistics.median(ratios):.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
