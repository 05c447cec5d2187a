#!/usr/bin/env python3
"""Per-code latency inside ``eprescrire counter`` against a bare in-process loop.

Issues ``--codes`` distinct prescriptions (the reference prescription, each with its own
identifier) with the demo prescriber, and renders ``--images`` of them as A4 PDFs rasterised at
150 dpi (``scan-N.png``, what a flatbed scanner gives). Then, in the same run, for each kind of
line (the QR text a 2D scanner types; an image path):

- ``eprescrire counter --trust keys/demo-trust --json`` (the installed console script) is fed
  one line at a time through a pipe; the latency of a code is the time from writing its line to
  reading its verdict line (NDJSON; the bench parses it after the clock stops, to check it).
  The first line, which pays the imports, is reported apart.
- a bare in-process loop written from the libraries directly: for an image, Pillow opens it and
  zxing-cpp decodes the QR code; then what any verifier of the code must do with its text:
  :func:`eprescrire.qr.decode` (Base45, DEFLATE with the preset dictionary, the signed bytes
  rebuilt from the compact form: no other library reads RX1), the compact JWS split and its
  signature base64url-decoded, and one ES256 check with cryptography over the signing input
  taken from that JWS (the public key loaded once): the floor of any Python verifier. Nothing
  is precomputed from the issued documents but the signer's public key.

Prints medians (and quartiles) of each, and their ratio (target <= 1.2). The one-shot
``verify scan.png`` against a bare script is ``bench/verify_latency.py``.

    .venv/bin/python bench/counter_latency.py [--codes 200] [--images 50] [--rounds 3]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SCAN_DPI = 150


def issue(count: int) -> list[object]:
    from eprescrire import inputs, keys, model, signing

    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    data = inputs.read_input(ROOT / "examples" / "reference.toml")
    now = dt.datetime.now(dt.UTC)
    return [signing.sign(model.from_input(data, now=now), credentials) for _ in range(count)]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU seconds per line of the sessions (first line excluded), filled by counter_session.
SESSION_CPU: list[float] = []


def counter_session(lines: list[str], env: dict[str, str]) -> list[float]:
    """Latency of each line inside one counter session (write -> verdict read)."""
    cli = shutil.which("eprescrire", path=str(Path(sys.executable).parent)) or "eprescrire"
    process = subprocess.Popen(
        [cli, "counter", "--trust", str(ROOT / "keys" / "demo-trust"), "--json", "--quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    times = []
    cpu_after_first = None
    for line in lines:
        start = time.perf_counter()
        process.stdin.write(line.encode() + b"\r\n")
        process.stdin.flush()
        line_read = process.stdout.readline()
        times.append(time.perf_counter() - start)
        verdict = json.loads(line_read)
        if verdict["status"] != "valid":
            raise SystemExit(f"counter: {verdict}")
        if cpu_after_first is None:
            cpu_after_first = _cpu_seconds(process.pid)
    cpu_end = _cpu_seconds(process.pid)
    if cpu_after_first is not None and cpu_end is not None and len(lines) > 1:
        SESSION_CPU.extend([(cpu_end - cpu_after_first) / (len(lines) - 1)] * (len(lines) - 1))
    process.stdin.close()
    process.wait(timeout=60)
    if process.returncode != 0:
        raise SystemExit(f"counter exited {process.returncode}: {process.stderr.read().decode()}")
    return times


def bare_loop(items: list[str], images: bool, pem: bytes) -> list[float]:
    """QR text or image path -> seconds per item, libraries used directly."""
    import base64

    import zxingcpp
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    from PIL import Image

    from eprescrire import qr

    key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    times = []
    for item in items:
        start = time.perf_counter()
        if images:
            with Image.open(item) as image:
                codes = zxingcpp.read_barcodes(
                    image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode
                )
            text = codes[0].text
        else:
            text = item
        token = qr.decode(text)  # Base45, DEFLATE, the signed bytes: the compact JWS
        signing_input, _, encoded = token.rpartition(".")
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))  # r || s
        der = utils.encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        times.append(time.perf_counter() - start)
    return times


def session_loop(texts: list[str]) -> list[float]:
    """Seconds per QR text for ``counter``'s own work in this process, without the CLI and the
    pipe: ``Session.check`` (decode, verification, the rules) and the JSON verdict."""
    from eprescrire.services.counter import Session
    from eprescrire.trust import TrustStore
    from eprescrire.verdict import Verdict

    # The NDJSON line counter --json writes (to_json_text before it wrote bytes).
    line = getattr(Verdict, "to_json_bytes", None) or Verdict.to_json_text

    session = Session(TrustStore.open(ROOT / "keys" / "demo-trust"))
    times = []
    for text in texts:
        start = time.perf_counter()
        (verdict,) = session.check(text.encode())
        line(verdict)
        times.append(time.perf_counter() - start)
        if verdict.status != "valid":
            raise SystemExit(f"session: {verdict.to_json()}")
    return times


def summary(label: str, times: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (
        f"{label:42} median {statistics.median(times) * 1000:7.2f} ms   "
        f"(q1 {q1 * 1000:.2f}, q3 {q3 * 1000:.2f}, n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=200, help="QR texts typed (>= 200)")
    parser.add_argument("--images", type=int, default=50, help="image paths (>= 50)")
    parser.add_argument("--rounds", type=int, default=3, help="sessions of each kind")
    args = parser.parse_args()

    from cryptography.hazmat.primitives import serialization
    from robustness import rasterise, render_pdf

    from eprescrire import qr

    documents = issue(args.codes)
    pem = documents[0].certificates[0].public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    texts = [qr.encode(d) for d in documents]  # type: ignore[arg-type]
    if len(set(texts)) != len(texts):  # every line a distinct prescription: nothing to cache
        raise SystemExit("the issued codes are not all distinct")
    with tempfile.TemporaryDirectory(prefix="eprescrire-counter-") as tmp:
        directory = Path(tmp)
        scans = []
        for number, document in enumerate(documents[: args.images]):
            pdf, fallback = render_pdf(document)  # type: ignore[arg-type]
            if fallback is not None:
                raise SystemExit("eprescrire.render is not available")
            path = directory / f"scan-{number}.png"
            rasterise(pdf, SCAN_DPI).save(path)
            scans.append(str(path))
        env = {**os.environ, "NO_COLOR": "1", "EPRESCRIRE_HOME": str(directory / "home")}
        env.pop("EPRESCRIRE_TRUST", None)
        # Start-up as installed: bytecode cached (__pycache__ written and read), for both.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        print(
            f"{len(texts)} QR texts ({len(texts[0])} characters each), {len(scans)} scans "
            f"(150 dpi A4 PNG), {args.rounds} rounds; NDJSON verdicts through a pipe"
        )
        results: dict[str, list[float]] = {k: [] for k in ("ct", "bt", "st", "ci", "bi", "first")}
        cpu_text: list[float] = []
        cpu_bare: list[float] = []
        for _ in range(args.rounds):  # interleaved, so that both see the same machine load
            SESSION_CPU.clear()
            times = counter_session(texts, env)
            cpu_text += SESSION_CPU
            results["first"].append(times[0])
            results["ct"] += times[1:]
            cpu_start = time.process_time()
            results["bt"] += bare_loop(texts, False, pem)
            cpu_bare.append((time.process_time() - cpu_start) / len(texts))
            results["st"] += session_loop(texts)
            times = counter_session(scans, env)
            results["first"].append(times[0])
            results["ci"] += times[1:]
            results["bi"] += bare_loop(scans, True, pem)
    print(summary("counter, QR text typed by a scanner", results["ct"]))
    print(summary("bare loop: qr.decode + ES256 verify", results["bt"]))
    print(summary("in process: Session.check + JSON verdict", results["st"]))
    print(summary("counter, image path", results["ci"]))
    print(summary("bare: Pillow+zxing-cpp+qr.decode+ES256", results["bi"]))
    print(summary("counter, first line (imports included)", results["first"]))
    ratio_text = statistics.median(results["ct"]) / statistics.median(results["bt"])
    ratio_image = statistics.median(results["ci"]) / statistics.median(results["bi"])
    print(f"ratio counter / bare, image paths (medians): {ratio_image:.2f}   target <= 1.2")
    print(f"ratio counter / bare, QR texts (medians):    {ratio_text:.2f}   target <= 1.2")
    ratio_session = statistics.median(results["st"]) / statistics.median(results["bt"])
    print(f"ratio in-process session / bare, QR texts:   {ratio_session:.2f}")
    if cpu_text:
        # Wall latency through a pipe includes waking the counter process up, which a loaded
        # machine delays; CPU time per code says what the verification itself costs.
        counter_cpu = statistics.mean(cpu_text)
        bare_cpu = statistics.median(cpu_bare)
        print(
            f"CPU per QR text: counter {counter_cpu * 1000:.2f} ms (process CPU time over the "
            f"session), bare loop {bare_cpu * 1000:.2f} ms; ratio {counter_cpu / bare_cpu:.2f}"
        )


if __name__ == "__main__":
    main()
