#!/usr/bin/env python3
"""Verify throughput: N scans (150 dpi A4 pages of real issued prescriptions) through
``eprescrire verify --json`` with 1 and 2 jobs, against a bare decode loop with the same
libraries (Pillow open + zxing-cpp decode, no verification at all), in the same run.

    python bench/verify_throughput.py [--count 1000] [--distinct 40] [--repeat 3]

``--distinct`` different prescriptions are issued, rendered and rasterised; the N files are
copies of them, in turn. Prints verdicts per second (median of --repeat runs) and the ratio
CLI --jobs 1 / bare loop (target >= 0.8).
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


def make_scans(directory: Path, count: int, distinct: int) -> list[Path]:
    import pypdfium2

    from eprescrire import keys, model, render, signing

    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    examples = [
        tomllib.loads(p.read_text("utf-8")) for p in sorted((ROOT / "examples").glob("*.toml"))
    ]
    originals = []
    for n in range(distinct):
        data = json.loads(json.dumps(examples[n % len(examples)], default=str))
        data["patient"]["family_name"] = f"Patient-{n}"
        data["patient"].pop("ins", None)
        document = signing.sign(model.from_input(data, now=dt.datetime.now(dt.UTC)), credentials)
        page = pypdfium2.PdfDocument(render.pdf_bytes(document, page="A4"))[0]
        path = directory / f"original-{n:03d}.png"
        page.render(scale=150 / 72, grayscale=True).to_pil().save(path)
        originals.append(path)
    scans = []
    for n in range(count):
        target = directory / f"scan-{n:04d}.png"
        shutil.copyfile(originals[n % distinct], target)
        scans.append(target)
    for path in originals:
        path.unlink()
    return scans


def bare_loop(scans: list[Path]) -> float:
    import zxingcpp
    from PIL import Image

    start = time.perf_counter()
    for path in scans:
        with Image.open(path) as image:
            codes = zxingcpp.read_barcodes(
                image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode
            )
        assert codes and codes[0].text.startswith("RX1:")
    return time.perf_counter() - start


def cli_run(scans: list[Path], jobs: int) -> float:
    command = [
        shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire"),
        "verify",
        *map(str, scans),
        "--trust",
        str(ROOT / "keys" / "demo-trust"),
        "--json",
        "--quiet",
        "--jobs",
        str(jobs),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and len(verdicts) == len(scans), result.stderr[-500:]
    assert all(v["status"] == "valid" for v in verdicts)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="eprescrire-scans-"))
    try:
        scans = make_scans(directory, args.count, min(args.distinct, args.count))
        bare_loop(scans[:20])  # warm the file cache
        times: dict[str, list[float]] = {"bare": [], "jobs1": [], "jobs2": []}
        for _ in range(args.repeat):
            times["bare"].append(bare_loop(scans))
            times["jobs1"].append(cli_run(scans, 1))
            times["jobs2"].append(cli_run(scans, 2))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rate = {name: args.count / statistics.median(values) for name, values in times.items()}
    print(
        f"verify throughput, {args.count} scans (150 dpi A4 PNG), median of {args.repeat} runs, "
        f"{os.cpu_count()} CPUs"
    )
    labels = {
        "bare": "bare loop: Pillow + zxing-cpp decode only",
        "jobs1": "eprescrire verify --json --jobs 1",
        "jobs2": "eprescrire verify --json --jobs 2",
    }
    print(f"{'run':<44}{'seconds':>10}{'scans/s':>10}")
    for name, label in labels.items():
        print(f"{label:<44}{statistics.median(times[name]):>10.2f}{rate[name]:>10.1f}")
    print(f"ratio jobs1 / bare loop : {rate['jobs1'] / rate['bare']:.2f}  (target >= 0.8)")
    print(f"speed-up jobs2 / jobs1  : {rate['jobs2'] / rate['jobs1']:.2f}")


if __name__ == "__main__":
    main()
