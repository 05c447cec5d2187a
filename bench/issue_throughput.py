#!/usr/bin/env python3
"""Issue throughput: N prescriptions to signed JSON + A5 PDF through the CLI, with 1 and 2
jobs, against the floor for drawing the same pages, measured in the same run, interleaved.

    python bench/issue_throughput.py [--count 1000] [--repeat 3] [--key pkcs11:…|softhsm]

Four loops over the same N prescriptions (the examples in turn, each for another patient):

- bare loop: the page of ``bench/bare_page.py`` for each prescription (reportlab canvas +
  segno written from their documentation, no eprescrire code), with the same text and QR
  text, written to a file. The QR texts are made beforehand: the floor draws, it does not sign
  or encode.
- render loop: ``eprescrire.render.pdf_bytes`` in-process on documents signed beforehand,
  written to a file: the project's renderer alone.
- ``eprescrire issue - --with-pdf --jobs 1`` and ``--jobs 2`` (NDJSON on stdin): the whole
  command, process start, validation, signing, JSON and PDF files included.

- with ``--key K`` (repeatable), ``issue - --with-pdf --key K`` too (one job: a token
  session does not survive fork). ``K`` is a ``pkcs11:`` URI (set ``EPRESCRIRE_PKCS11_MODULE``
  and ``EPRESCRIRE_PIN``), or ``softhsm`` for a SoftHSM2 token made in a temporary directory
  with a certified P-256 key (as ``bench/token_throughput.py`` makes it).

The CLI runs from the compiled bytecode of ``eprescrire`` (``compileall`` first, as installing
a wheel does): with ``PYTHONDONTWRITEBYTECODE`` set, an editable checkout would otherwise
compile its modules from source at every start, which no installed CLI does.

Prints prescriptions per second (median of --repeat runs, wall clock) and the CPU time per
prescription (the process's own CPU for the in-process loops, the command and its workers'
for the CLI runs, from ``getrusage(RUSAGE_CHILDREN)``): on a shared machine wall time
includes waiting for a core, CPU time does not. Then the ratios, by wall time and by CPU
time: --jobs 1 / bare loop (target >= 0.8), render loop / bare loop, --jobs 1 / render loop
(what the command costs around the renderer) and --jobs 2 / --jobs 1 (target >= 1.8; a
speed-up is a wall-clock figure: it needs two idle cores). The load average is printed before
and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
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


Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_run(
    ndjson: bytes, key: Path | str, jobs: int, workdir: Path, env: dict[str, str] | None = None
) -> Timing:
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
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only", **(env or {})}
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(command, input=ndjson, env=env, check=True)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    produced = len(list(out.glob("*.pdf")))
    assert produced == ndjson.count(b"\n"), f"{produced} PDFs written"
    return elapsed, cpu


def bare_run(pages: list[tuple[list[tuple[str, str]], str]], workdir: Path) -> Timing:
    import bare_page

    out = workdir / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    cpu, start = time.process_time(), time.perf_counter()
    for n, (lines, qr_text) in enumerate(pages):
        (out / f"{n}.pdf").write_bytes(bare_page.draw(lines, qr_text, "A5"))
    return time.perf_counter() - start, time.process_time() - cpu


def render_run(documents: list, workdir: Path) -> Timing:
    from eprescrire import render

    out = workdir / "render"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    cpu, start = time.process_time(), time.perf_counter()
    for n, document in enumerate(documents):
        (out / f"{n}.pdf").write_bytes(render.pdf_bytes(document, page="A5"))
    return time.perf_counter() - start, time.process_time() - cpu


def token_keys(keys: list[str], workdir: Path) -> tuple[list[str], dict[str, str]]:
    """The --key values as URIs, and the environment they need (``softhsm``: a new token)."""
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}
    uris = []
    for key in keys:
        if key == "softhsm":
            from token_throughput import make_token

            made = make_token(workdir, env)
            uris.append(next(uri for name, uri in made if "EC" in name))
        else:
            uris.append(key)
    return uris, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        help="also issue with this key (pkcs11: URI, or 'softhsm' for a temporary token)",
    )
    args = parser.parse_args()

    import compileall

    import bare_page

    from eprescrire import keys, model, render, signing

    compileall.compile_dir(ROOT / "eprescrire", quiet=1)  # as a wheel install does
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    inputs = make_inputs(args.count)
    ndjson = b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in inputs)
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-bench-"))
    key = workdir / "prescriber.p12"
    shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", key)
    key.chmod(0o600)
    credentials = keys.load_pkcs12(key, b"demo-only")
    uris, token_env = token_keys(args.key, workdir)
    now = dt.datetime.now(dt.UTC)
    documents = [signing.sign(model.from_input(d, now=now), credentials) for d in inputs]
    pages = [bare_page.page_inputs(d, doc) for d, doc in zip(inputs, documents, strict=True)]
    bare_page.draw(*pages[0], "A5")  # imports and fonts, as the CLI's first page pays them
    render.pdf_bytes(documents[0], page="A5")

    labels = {
        "bare": "bare loop: reportlab + segno page (bare_page.py), no eprescrire",
        "render": "render loop: eprescrire.render.pdf_bytes, in-process",
        "jobs1": "eprescrire issue - --with-pdf --jobs 1",
        "jobs2": "eprescrire issue - --with-pdf --jobs 2",
    }
    for n, uri in enumerate(uris):
        labels[f"key{n}"] = f"issue --with-pdf --key {uri}"
    times: dict[str, list[Timing]] = {name: [] for name in labels}
    for _ in range(args.repeat):  # interleaved, so that machine noise hits all alike
        times["bare"].append(bare_run(pages, workdir))
        times["render"].append(render_run(documents, workdir))
        times["jobs1"].append(cli_run(ndjson, key, 1, workdir))
        times["jobs2"].append(cli_run(ndjson, key, 2, workdir))
        for n, uri in enumerate(uris):
            times[f"key{n}"].append(cli_run(ndjson, uri, 1, workdir, token_env))
    shutil.rmtree(workdir, ignore_errors=True)

    wall = {name: statistics.median(t for t, _ in values) for name, values in times.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in times.items()}
    rate = {name: args.count / seconds for name, seconds in wall.items()}
    cpu_rate = {name: args.count / seconds for name, seconds in cpu.items()}
    print(
        f"issue throughput, {args.count} prescriptions (signed JSON + A5 PDF), "
        f"median of {args.repeat} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'run':<62}{'wall s':>8}{'rx/s':>7}{'CPU ms/rx':>11}  all runs wall/CPU (s)")
    for name, label in labels.items():
        runs = " ".join(f"{t:.2f}/{c:.2f}" for t, c in times[name])
        print(
            f"{label:<62}{wall[name]:>8.2f}{rate[name]:>7.1f}"
            f"{cpu[name] / args.count * 1000:>11.1f}  {runs}"
        )

    def ratio(a: str, b: str) -> str:
        return f"wall {rate[a] / rate[b]:.2f}, CPU {cpu_rate[a] / cpu_rate[b]:.2f}"

    print(f"ratio jobs1 / bare loop   : {ratio('jobs1', 'bare')}  (target >= 0.8)")
    print(f"ratio render / bare loop  : {ratio('render', 'bare')}")
    print(f"ratio jobs1 / render loop : {ratio('jobs1', 'render')}")
    print(
        f"speed-up jobs2 / jobs1    : wall {rate['jobs2'] / rate['jobs1']:.2f}  (target >= 1.8); "
        f"CPU per rx jobs2 / jobs1: {cpu['jobs2'] / cpu['jobs1']:.2f}"
    )
    for n, uri in enumerate(uris):
        print(f"ratio {uri} / jobs1 : {ratio(f'key{n}', 'jobs1')}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
