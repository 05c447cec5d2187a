#!/usr/bin/env python3
"""Issue throughput: N prescriptions to signed JSON + A5 PDF through the CLI, with 1 and 2
jobs, against the floor for drawing the same pages, measured in the same run, interleaved.

    python bench/issue_throughput.py [--count 1000] [--repeat 3]

Four loops over the same N prescriptions (the examples in turn, each for another patient):

- bare loop: the page of ``bench/bare_page.py`` for each prescription (reportlab canvas +
  segno written from their documentation, no eprescrire code), with the same text and QR
  text, written to a file. The QR texts are made beforehand: the floor draws, it does not sign
  or encode.
- render loop: ``eprescrire.render.pdf_bytes`` in-process on documents signed beforehand,
  written to a file: the project's renderer alone.
- ``eprescrire issue - --with-pdf --jobs 1`` and ``--jobs 2`` (NDJSON on stdin): the whole
  command, process start, validation, signing, JSON and PDF files included.

Prints prescriptions per second (median of --repeat runs) and the ratios: --jobs 1 / bare
loop (target >= 0.8), render loop / bare loop, --jobs 1 / render loop (what the command costs
around the renderer) and --jobs 2 / --jobs 1 (target >= 1.8).
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
sys.path.insert(0, str(ROOT / "bench"))

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


def bare_run(pages: list[tuple[list[tuple[str, str]], str]], workdir: Path) -> float:
    import bare_page

    out = workdir / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    start = time.perf_counter()
    for n, (lines, qr_text) in enumerate(pages):
        (out / f"{n}.pdf").write_bytes(bare_page.draw(lines, qr_text, "A5"))
    return time.perf_counter() - start


def render_run(documents: list, workdir: Path) -> float:
    from eprescrire import render

    out = workdir / "render"
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

    import bare_page

    from eprescrire import keys, model, render, signing

    inputs = make_inputs(args.count)
    ndjson = b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in inputs)
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-bench-"))
    key = workdir / "prescriber.p12"
    shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", key)
    key.chmod(0o600)
    credentials = keys.load_pkcs12(key, b"demo-only")
    now = dt.datetime.now(dt.UTC)
    documents = [signing.sign(model.from_input(d, now=now), credentials) for d in inputs]
    pages = [bare_page.page_inputs(d, doc) for d, doc in zip(inputs, documents, strict=True)]
    bare_page.draw(*pages[0], "A5")  # imports and fonts, as the CLI's first page pays them
    render.pdf_bytes(documents[0], page="A5")

    times: dict[str, list[float]] = {"bare": [], "render": [], "jobs1": [], "jobs2": []}
    for _ in range(args.repeat):  # interleaved, so that machine noise hits all four alike
        times["bare"].append(bare_run(pages, workdir))
        times["render"].append(render_run(documents, workdir))
        times["jobs1"].append(cli_run(ndjson, key, 1, workdir))
        times["jobs2"].append(cli_run(ndjson, key, 2, workdir))
    shutil.rmtree(workdir, ignore_errors=True)

    rate = {name: args.count / statistics.median(values) for name, values in times.items()}
    print(
        f"issue throughput, {args.count} prescriptions (signed JSON + A5 PDF), "
        f"median of {args.repeat} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'run':<62}{'seconds':>9}{'rx/s':>8}  all runs (s)")
    labels = {
        "bare": "bare loop: reportlab + segno page (bare_page.py), no eprescrire",
        "render": "render loop: eprescrire.render.pdf_bytes, in-process",
        "jobs1": "eprescrire issue - --with-pdf --jobs 1",
        "jobs2": "eprescrire issue - --with-pdf --jobs 2",
    }
    for name, label in labels.items():
        runs = " ".join(f"{t:.2f}" for t in times[name])
        print(f"{label:<62}{statistics.median(times[name]):>9.2f}{rate[name]:>8.1f}  {runs}")
    print(f"ratio jobs1 / bare loop   : {rate['jobs1'] / rate['bare']:.2f}  (target >= 0.8)")
    print(f"ratio render / bare loop  : {rate['render'] / rate['bare']:.2f}")
    print(f"ratio jobs1 / render loop : {rate['jobs1'] / rate['render']:.2f}")
    print(f"speed-up jobs2 / jobs1    : {rate['jobs2'] / rate['jobs1']:.2f}  (target >= 1.8)")


if __name__ == "__main__":
    main()
