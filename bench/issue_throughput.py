#!/usr/bin/env python3
"""Issue throughput: N prescriptions to signed JSON + PDF through the CLI, with 1 and 2 jobs,
against a bare loop that only draws the same PDFs (reportlab + segno, via
``eprescrire.render.pdf_bytes`` on documents signed beforehand), measured in the same run.

    python bench/issue_throughput.py [--count 1000] [--repeat 3]

Prints prescriptions per second (median of --repeat runs) and the ratios:
CLI with --jobs 1 / bare drawing loop (target >= 0.8) and --jobs 2 / --jobs 1 (target >= 1.7).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAMILY_NAMES = ["Durand", "Lefèvre", "Moreau", "Bernard", "Petit", "Roux", "Fournier", "Girard"]


def make_inputs(count: int) -> list[dict]:
    """``count`` realistic inputs: the examples in turn, each with another patient name."""
    examples = [
        tomllib.loads(p.read_text("utf-8")) for p in sorted((ROOT / "examples").glob("*.toml"))
    ]
    inputs = []
    for n in range(count):
        data = json.loads(json.dumps(examples[n % len(examples)], default=str))
        data["patient"]["family_name"] = f"{FAMILY_NAMES[n % len(FAMILY_NAMES)]}-{n}"
        data["patient"].pop("ins", None)  # the INS encodes the sex and birth date of one person
        inputs.append(data)
    return inputs


def cli_run(ndjson: bytes, key: Path, jobs: int, workdir: Path) -> float:
    out = workdir / f"out-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire"),
        "issue",
        "-",
        "--key",
        str(key),
        "--out-dir",
        str(out),
        "--with-pdf",
        "--quiet",
        "--jobs",
        str(jobs),
    ]
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}
    start = time.perf_counter()
    subprocess.run(command, input=ndjson, env=env, check=True)
    elapsed = time.perf_counter() - start
    produced = len(list(out.glob("*.pdf")))
    assert produced == ndjson.count(b"\n"), f"{produced} PDFs written"
    return elapsed


def bare_run(documents: list, workdir: Path) -> float:
    from eprescrire import render

    out = workdir / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    start = time.perf_counter()
    for n, document in enumerate(documents):
        (out / f"{n}.pdf").write_bytes(render.pdf_bytes(document, page="A5"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from eprescrire import keys, model, signing

    inputs = make_inputs(args.count)
    ndjson = b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in inputs)
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-bench-"))
    key = workdir / "prescriber.p12"
    shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", key)
    key.chmod(0o600)
    credentials = keys.load_pkcs12(key, b"demo-only")
    now = dt.datetime.now(dt.UTC)
    documents = [signing.sign(model.from_input(d, now=now), credentials) for d in inputs]

    times: dict[str, list[float]] = {"bare": [], "jobs1": [], "jobs2": []}
    for _ in range(args.repeat):  # interleaved, so that machine noise hits all three alike
        times["bare"].append(bare_run(documents, workdir))
        times["jobs1"].append(cli_run(ndjson, key, 1, workdir))
        times["jobs2"].append(cli_run(ndjson, key, 2, workdir))
    shutil.rmtree(workdir, ignore_errors=True)

    rate = {name: args.count / statistics.median(values) for name, values in times.items()}
    print(
        f"issue throughput, {args.count} prescriptions (signed JSON + A5 PDF), "
        f"median of {args.repeat} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'run':<42}{'seconds':>10}{'rx/s':>10}")
    labels = {
        "bare": "bare loop: render.pdf_bytes only",
        "jobs1": "eprescrire issue --with-pdf --jobs 1",
        "jobs2": "eprescrire issue --with-pdf --jobs 2",
    }
    for name, label in labels.items():
        print(f"{label:<42}{statistics.median(times[name]):>10.2f}{rate[name]:>10.1f}")
    print(f"ratio jobs1 / bare loop : {rate['jobs1'] / rate['bare']:.2f}  (target >= 0.8)")
    print(f"speed-up jobs2 / jobs1  : {rate['jobs2'] / rate['jobs1']:.2f}  (target >= 1.7)")


if __name__ == "__main__":
    main()
