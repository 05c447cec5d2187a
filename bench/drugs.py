#!/usr/bin/env python3
"""Drug reference at full size: ``drugs import`` of the BDPM snapshot (time, peak memory) and
``drugs search`` latency, each against a baseline measured in the same run.

    python bench/drugs.py [--bdpm ../shared/bdpm] [--runs 3] [--queries 100]

- import: ``eprescrire drugs import DIR`` in a fresh process, wall time and peak RSS (medians);
  baseline: the same process reading and parsing the five files without building the catalogue,
  and a process that only imports the CLI (memory at rest).
- search: the catalogue's ``search`` in-process over N queries (4 fixed ones, hand-written
  names, substances and prefixes, names and codes drawn from the catalogue with a fixed seed);
  median, 95th percentile and worst; baseline: the same queries as ``LIKE '%word%'`` scans of
  the drug names and substances (what a catalogue without a full-text index would do).
- the wall time of the whole ``eprescrire drugs search TEXT`` command against ``python -c pass``.
- the top result of « metformine 1000 », « doliprane », « skenan »,
  « amoxicilline acide clavulanique enfant ».
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUST_SHOW = ("metformine 1000", "doliprane", "skenan", "amoxicilline acide clavulanique enfant")
HAND_WRITTEN = (
    "paracétamol",
    "Paracetamol 500",
    "amoxicilline",
    "levothyroxine 75",
    "amlodipine 5 mg",
    "ibuprofène 400",
    "oméprazole 20",
    "morphine",
    "sulfate de morphine",
    "zolpidem",
    "glucophage",
    "augmentin enfants",
    "dol",
    "amox",
    "kardegic 75",
    "ventoline",
)

CHILD = """
import resource, sys
from pathlib import Path
mode, directory, target = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "import":
    from eprescrire.cli import main
    try:
        main(["drugs", "import", directory, "--catalogue", target, "--quiet"])
    except SystemExit as e:
        if e.code:
            raise
elif mode == "parse":
    import eprescrire.cli
    from eprescrire.drugs import bdpm
    for name in bdpm.FILES:
        bdpm.read_file(Path(directory) / name, name)
else:
    import eprescrire.cli
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def default_snapshot() -> Path | None:
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "bdpm" / "CIS_bdpm.txt").is_file():
            return base / "shared" / "bdpm"
    return None


def child(mode: str, directory: Path, target: Path) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of one fresh process."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(directory), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    rss, cpu = out.stdout.split()[-2:]
    return wall, int(rss) / 1024, float(cpu)


def queries(catalogue: Path, count: int) -> list[str]:
    db = sqlite3.connect(catalogue)
    names = [n for (n,) in db.execute("SELECT name FROM drug ORDER BY cis")]
    codes = [c for (c,) in db.execute("SELECT cip13 FROM presentation ORDER BY cip13")]
    cis = [c for (c,) in db.execute("SELECT cis FROM drug ORDER BY cis")]
    db.close()
    rng = random.Random(20210115)
    chosen = list(MUST_SHOW) + list(HAND_WRITTEN)
    while len(chosen) < count:
        kind = rng.random()
        if kind < 0.1:
            chosen.append(rng.choice(codes))
        elif kind < 0.15:
            chosen.append(rng.choice(cis))
        else:
            words = rng.choice(names).replace(",", " ").split()
            chosen.append(" ".join(words[: rng.choice((1, 2, 2, 3))]).lower())
    return chosen[:count]


def like_scan(db: sqlite3.Connection, text: str) -> list[str]:
    """Baseline: every word as a LIKE over folded names and substances, no index."""
    from eprescrire.drugs.text import query_words

    words = query_words(text)
    if not words:
        return []
    where = " AND ".join(
        "(d.folded_name LIKE ? OR EXISTS (SELECT 1 FROM component c WHERE c.cis = d.cis"
        " AND lower(c.substance) LIKE ?))"
        for _ in words
    )
    args: list[str] = []
    for w in words:
        args += [f"%{w}%", f"%{w}%"]
    return [r[0] for r in db.execute(f"SELECT d.cis FROM drug d WHERE {where} LIMIT 20", args)]


def timed(function, items: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for item in items:
        start = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bdpm", type=Path, default=default_snapshot())
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    if args.bdpm is None or not (args.bdpm / "CIS_bdpm.txt").is_file():
        sys.exit("no BDPM snapshot: give --bdpm DIR (the five CIS_*.txt files)")
    work = Path(tempfile.mkdtemp(prefix="bench-drugs-"))
    try:
        target = work / "drugs.sqlite3"
        imports, parses, rests = [], [], []
        for _ in range(args.runs):  # interleaved
            imports.append(child("import", args.bdpm, target))
            parses.append(child("parse", args.bdpm, target))
            rests.append(child("rest", args.bdpm, target))
        med = {
            name: tuple(statistics.median(run[i] for run in v) for i in range(3))
            for name, v in (("import", imports), ("parse", parses), ("rest", rests))
        }
        print(f"drugs import {args.bdpm} (median of {args.runs} fresh processes)")
        print(f"{'process':<44}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}")
        labels = {
            "import": "eprescrire drugs import (full catalogue)",
            "parse": "baseline: read + parse the 5 files only",
            "rest": "baseline: python + import eprescrire.cli",
        }
        for name, (wall, peak, cpu) in med.items():
            print(f"{labels[name]:<44}{wall:>8.2f}{cpu:>8.2f}{peak:>10.1f}")
        print(
            f"import / parse-only: time x{med['import'][0] / med['parse'][0]:.2f}, "
            f"CPU x{med['import'][2] / med['parse'][2]:.2f}, "
            f"memory x{med['import'][1] / med['parse'][1]:.2f}; "
            f"catalogue {target.stat().st_size / 2**20:.1f} MiB"
        )

        from eprescrire.drugs.catalogue import open_catalogue

        chosen = queries(target, args.queries)
        with open_catalogue(target) as catalogue:
            for text in chosen[:10]:  # warm the page cache
                catalogue.search(text)
            fts = timed(catalogue.search, chosen)
            db = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
            like = timed(lambda t: like_scan(db, t), chosen)
            db.close()
            print()
            print(f"drugs search, in-process, {len(chosen)} queries")
            print(f"{'method':<36}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
            for name, values in (("catalogue.search (FTS5)", fts), ("baseline: LIKE scan", like)):
                print(
                    f"{name:<36}{statistics.median(values) * 1000:>11.2f}"
                    f"{percentile(values, 0.95) * 1000:>9.2f}{max(values) * 1000:>9.2f}"
                )
            print(
                f"LIKE scan / FTS5 (medians): x{statistics.median(like) / statistics.median(fts):.1f}"
            )
            print()
            print("top result")
            for text in MUST_SHOW:
                hits = catalogue.search(text, limit=1)
                top = f"{hits[0].cis}  {hits[0].name}" if hits else "(none)"
                print(f"  « {text} » -> {top}")

        script = shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "eprescrire drugs search doliprane": [
                script,
                "drugs",
                "search",
                "doliprane",
                "--catalogue",
                str(target),
            ],
            "eprescrire --help (Typer start-up)": [script, "--help"],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(5):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
                walls[name].append(time.perf_counter() - start)
        base = statistics.median(walls["python -c pass"])
        print()
        print("whole command, wall time (median of 5, interleaved)")
        for name, values in walls.items():
            median = statistics.median(values)
            print(f"  {name:<36}{median * 1000:>8.1f} ms  x{median / base:.2f} python")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
