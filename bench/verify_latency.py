#!/usr/bin/env python3
"""Wall time of ``eprescrire verify scan.png`` against a bare script using the same libraries.

Issues the reference prescription with the demo prescriber, renders its A4 PDF
(``eprescrire.render.pdf_bytes``) and rasterises it at 150 dpi into ``scan.png``, as a
pharmacy's flatbed scanner would. Then, alternating in the same run:

- ``eprescrire verify scan.png --trust keys/demo-trust`` (the installed console script), and
- a bare Python script that opens the PNG with Pillow, decodes the QR code with zxing-cpp,
  rebuilds the compact JWS from the code's text with :func:`eprescrire.qr.decode` (Base45,
  DEFLATE, the signed bytes: what any verifier of the code must do, and no other library
  does), and checks its ES256 signature over the signing input with cryptography: the floor
  any Python verifier pays (interpreter, the three libraries and the RX1 decoder, one decode,
  one signature check).

Prints the median (and quartiles) of each over ``--runs`` process runs, their ratio, an
in-process breakdown of the CLI's work, and where its start-up time goes (``-X importtime``).

    .venv/bin/python bench/verify_latency.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SCAN_DPI = 150

BASELINE = r"""
import base64
import sys
from PIL import Image
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from eprescrire import qr  # the RX1 decoder: no other library reads the compact form

scan, certificate = sys.argv[1:3]
image = Image.open(scan).convert("L")
codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
token = qr.decode(codes[0].text)  # Base45, DEFLATE, the signed bytes: the compact JWS
signing_input, _, encoded = token.rpartition(".")
signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))  # r || s
der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                 int.from_bytes(signature[32:], "big"))
with open(certificate, "rb") as f:
    key = x509.load_pem_x509_certificate(f.read()).public_key()
key.verify(der, signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
print("VALID")
"""


LIBRARY = r"""
import sys
from pathlib import Path

from eprescrire import rules, verifying
from eprescrire.trust import TrustStore

store = TrustStore.open(Path(sys.argv[2]))
verdicts = list(verifying.verify_input(sys.argv[1], store, rules.now()))
sys.exit(0 if verdicts and all(v.status == "valid" for v in verdicts) else 1)
"""


def make_scan(directory: Path) -> tuple[Path, Path, str]:
    """scan.png (150 dpi A4), the signer certificate, the QR text."""
    from cryptography.hazmat.primitives import serialization
    from robustness import issue_corpus, rasterise, render_pdf

    from eprescrire import render

    name, document = issue_corpus(quick=True)[0]
    assert name == "reference"
    pdf, fallback = render_pdf(document)
    if fallback is not None:
        raise SystemExit("eprescrire.render / eprescrire.qr are not available yet")
    scan = directory / "scan.png"
    rasterise(pdf, SCAN_DPI).save(scan)
    certificate = directory / "signer.pem"
    certificate.write_bytes(document.certificates[0].public_bytes(serialization.Encoding.PEM))
    return scan, certificate, render.qr_text(document)


#: CPU seconds (user + system) of each process run by :func:`timed`, by command name.
CPU: dict[str, list[float]] = {}


def timed(command: list[str], env: dict[str, str], name: str = "") -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {process.returncode}:\n{process.stderr.decode()[-2000:]}"
        )
    return elapsed


def summary(label: str, times: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (
        f"{label:34} median {statistics.median(times) * 1000:7.1f} ms   "
        f"(q1 {q1 * 1000:.1f}, q3 {q3 * 1000:.1f}, min {min(times) * 1000:.1f}, "
        f"n={len(times)})"
    )


def breakdown(scan: Path) -> None:
    """In-process cost of each step of verify, after imports (median of 5)."""
    import datetime as dt

    from eprescrire import qr, signing
    from eprescrire import scan as scanning
    from eprescrire.trust import TrustStore

    steps: dict[str, list[float]] = {
        "trust store": [],
        "read_codes": [],
        "qr.decode": [],
        "verify_token": [],
    }
    for _ in range(5):
        t0 = time.perf_counter()
        store = TrustStore.open(ROOT / "keys" / "demo-trust")
        t1 = time.perf_counter()
        (text,) = scanning.read_codes(scan)
        t2 = time.perf_counter()
        token = qr.decode(text)
        t3 = time.perf_counter()
        verdict = signing.verify_token("scan.png", token, store, dt.datetime.now(dt.UTC))
        t4 = time.perf_counter()
        assert verdict.status == "valid", verdict.to_json()
        for key, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[key].append(value)
    print("in-process steps (median of 5, modules already imported):")
    for key, values in steps.items():
        print(f"  {key:14} {statistics.median(values) * 1000:7.1f} ms")


def import_profile(command: list[str], env: dict[str, str], top: int = 12) -> None:
    """The slowest imports of one CLI run (cumulative microseconds, -X importtime)."""
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "eprescrire", *command[1:]],
        capture_output=True,
        env=env,
        check=False,
        text=True,
    )
    rows = []
    for line in process.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), len(match.group(3)), match.group(4)))
    total = sum(c for c, depth, _ in rows if depth == 1)
    print(
        f"imports of one CLI run: {total / 1000:.1f} ms in total (top-level, cumulative); "
        f"slowest top-level packages:"
    )
    tops = sorted((r for r in rows if r[1] == 1), reverse=True)[:top]
    for cumulative, _, module in tops:
        print(f"  {cumulative / 1000:7.1f} ms  {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="process runs of each (>= 10)")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")

    cli = shutil.which("eprescrire", path=str(Path(sys.executable).parent)) or "eprescrire"
    with tempfile.TemporaryDirectory(prefix="eprescrire-latency-") as tmp:
        directory = Path(tmp)
        scan, certificate, text = make_scan(directory)
        baseline = directory / "baseline.py"
        baseline.write_text(BASELINE)
        env = {**os.environ, "NO_COLOR": "1", "EPRESCRIRE_HOME": str(directory / "home")}
        env.pop("EPRESCRIRE_TRUST", None)
        # Start-up as installed: bytecode cached (__pycache__ written and read), for both.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        command = [cli, "verify", str(scan), "--trust", str(ROOT / "keys" / "demo-trust")]
        bare = [sys.executable, str(baseline), str(scan), str(certificate)]
        library_script = directory / "library.py"
        library_script.write_text(LIBRARY)
        trust = str(ROOT / "keys" / "demo-trust")
        library = [sys.executable, str(library_script), str(scan), trust]

        from PIL import Image

        with Image.open(scan) as image:
            size = image.size
        print(
            f"scan.png: {size[0]}×{size[1]} px ({SCAN_DPI} dpi A4), {scan.stat().st_size} bytes;"
            f" QR text {len(text)} characters"
        )
        timed(command, env), timed(bare, env), timed(library, env)  # warm the page cache
        cli_times, bare_times, library_times = [], [], []
        for _ in range(args.runs):  # interleaved, so all see the same machine load
            cli_times.append(timed(command, env, "cli"))
            bare_times.append(timed(bare, env, "bare"))
            library_times.append(timed(library, env, "library"))
        print(summary("eprescrire verify scan.png", cli_times))
        print(summary("bare Pillow+zxing+qr.decode+ES256", bare_times))
        print(summary("library verify_input, no CLI", library_times))
        floor = statistics.median(bare_times)
        ratio = statistics.median(cli_times) / floor
        print(f"ratio CLI / bare (medians): {ratio:.2f}   target <= 1.5")
        print(f"ratio library / bare:       {statistics.median(library_times) / floor:.2f}")
        # Wall time on a shared machine includes waiting for a core; CPU time does not.
        cpu = {name: statistics.median(CPU[name]) for name in ("cli", "bare", "library")}
        print(
            f"CPU per run (user + system, medians): CLI {cpu['cli'] * 1000:.1f} ms, bare "
            f"{cpu['bare'] * 1000:.1f} ms, library {cpu['library'] * 1000:.1f} ms; ratio CLI / "
            f"bare {cpu['cli'] / cpu['bare']:.2f}"
        )
        print()
        breakdown(scan)
        print()
        import_profile(command, env)


if __name__ == "__main__":
    main()
