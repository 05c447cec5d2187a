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

For the QR texts, two more measures:

- the same bare loop in a long-lived child process of its own (this script run with
  ``--bare-child``), fed through a pipe exactly as the counter is (one line written, its answer
  line read, then the next). Its answer is a short fixed line, so it pays less on the pipe than
  the counter does. Its ratio to the bare loop in the bench's process is the cost of the process
  boundary alone, which any program reading codes on its standard input pays; the ratio of the
  counter to it compares two such programs;
- ``Session.check`` and the NDJSON line in the bench's process: the counter's own work, without
  the CLI and the pipe.

The four measures of QR texts take turns by blocks of ten codes, in an order that rotates, so
that each sees the same machine: on a shared machine, speed changes from one second to the next
by more than the differences measured.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SCAN_DPI = 150
#: QR texts each measure handles in turn before the next takes over.
BLOCK = 10


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


def counter_command() -> list[str]:
    """``eprescrire counter`` as a pharmacy runs it for other software (the console script)."""
    cli = shutil.which("eprescrire", path=str(Path(sys.executable).parent)) or "eprescrire"
    return [cli, "counter", "--trust", str(ROOT / "keys" / "demo-trust"), "--json", "--quiet"]


class Piped:
    """A long-lived process fed one line at a time through a pipe (CR LF after each, as a
    scanner may end them). Each line is timed from its write to the reading of its answer
    line, which must say ``"status": "valid"`` (parsed after the clock stops)."""

    def __init__(self, command: list[str], env: dict[str, str], label: str) -> None:
        self.label = label
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.cpu_after_first: float | None = None
        self.lines_after_first = 0

    def ask(self, lines: list[str]) -> list[float]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        times = []
        for line in lines:
            start = time.perf_counter()
            stdin.write(line.encode() + b"\r\n")
            stdin.flush()
            answer = stdout.readline()
            times.append(time.perf_counter() - start)
            verdict = json.loads(answer)
            if verdict["status"] != "valid":
                raise SystemExit(f"{self.label}: {verdict}")
            if self.cpu_after_first is None:
                self.cpu_after_first = _cpu_seconds(self.process.pid)
            else:
                self.lines_after_first += 1
        return times

    def close(self) -> float | None:
        """End the process; its CPU seconds per line after the first (None if unknown)."""
        cpu_end = _cpu_seconds(self.process.pid)
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
        if self.process.returncode != 0:
            message = self.process.stderr.read().decode()
            raise SystemExit(f"{self.label} exited {self.process.returncode}: {message}")
        if cpu_end is None or self.cpu_after_first is None or not self.lines_after_first:
            return None
        return (cpu_end - self.cpu_after_first) / self.lines_after_first


def bare_check(pem: bytes, images: bool) -> Callable[[str], None]:
    """The bare work on one item (a QR text, or an image path when ``images``), libraries used
    directly: raises when the code is not read or its signature does not hold."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from eprescrire import qr

    key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    if images:
        import zxingcpp
        from PIL import Image

    def check(item: str) -> None:
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

    return check


def bare_loop(items: list[str], images: bool, pem: bytes) -> list[float]:
    """QR text or image path -> seconds per item, libraries used directly."""
    return timed(bare_check(pem, images), items)


def timed(check: Callable[[str], None], items: list[str]) -> list[float]:
    """Seconds ``check`` takes on each item."""
    times = []
    for item in items:
        start = time.perf_counter()
        check(item)
        times.append(time.perf_counter() - start)
    return times


def bare_child(pem_file: str) -> None:
    """The bare loop over QR texts read from stdin, one per line as they arrive (CR, LF or
    CR LF ends a line), answering each with one short line: ``--bare-child``."""
    check = bare_check(Path(pem_file).read_bytes(), False)
    answer = b'{"status":"valid"}\n'
    pending = b""
    while chunk := os.read(0, 65536):
        *complete, pending = (pending + chunk).replace(b"\r", b"\n").split(b"\n")
        for line in complete:
            if line:
                check(line.decode("ascii"))
                os.write(1, answer)


def session_loop(texts: list[str], session: Any = None) -> list[float]:
    """Seconds per QR text for ``counter``'s own work in this process, without the CLI and the
    pipe: ``Session.check`` (decode, verification, the rules) and the JSON verdict. A new
    session unless one is given (:func:`new_session`)."""
    from eprescrire.verdict import Verdict

    # The NDJSON line counter --json writes (to_json_text before it wrote bytes).
    line = getattr(Verdict, "to_json_bytes", None) or Verdict.to_json_text

    session = session or new_session()
    times = []
    for text in texts:
        start = time.perf_counter()
        (verdict,) = session.check(text.encode())
        line(verdict)
        times.append(time.perf_counter() - start)
        if verdict.status != "valid":
            raise SystemExit(f"session: {verdict.to_json()}")
    return times


def new_session() -> Any:
    """A counter session over the demo trust store, in this process."""
    from eprescrire.services.counter import Session
    from eprescrire.trust import TrustStore

    return Session(TrustStore.open(ROOT / "keys" / "demo-trust"))


def text_round(
    texts: list[str],
    pem: bytes,
    pem_file: Path,
    env: dict[str, str],
    results: dict[str, list[float]],
    cpu_text: list[float],
    cpu_bare: list[float],
) -> None:
    """One round over the QR texts: the four measures take turns by blocks of BLOCK codes, in
    an order that rotates, so that each sees the same machine (load, frequency, caches)."""
    counter = Piped(counter_command(), env, "counter")
    child = Piped([sys.executable, __file__, "--bare-child", str(pem_file)], env, "bare")
    results["first"] += counter.ask(texts[:1])  # the imports: reported apart
    child.ask(texts[:1])
    session = new_session()
    session_loop(texts[:1], session)
    check = bare_check(pem, False)
    check(texts[0])

    def bare(block: list[str]) -> list[float]:
        cpu_start = time.process_time()
        times = timed(check, block)
        cpu_bare.append((time.process_time() - cpu_start) / len(block))
        return times

    measures = [
        ("ct", counter.ask),
        ("bt", bare),
        ("pt", child.ask),
        ("st", lambda block: session_loop(block, session)),
    ]
    for number, start in enumerate(range(1, len(texts), BLOCK)):
        block = texts[start : start + BLOCK]
        turn = number % len(measures)
        for kind, measure in measures[turn:] + measures[:turn]:
            results[kind] += measure(block)
    cpu = counter.close()
    if cpu is not None:
        cpu_text.append(cpu)
    child.close()


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
    parser.add_argument("--bare-child", metavar="PEM", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(args.bare_child)
        return

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
        pem_file = directory / "signer.pem"
        pem_file.write_bytes(pem)
        kinds = ("ct", "bt", "pt", "st", "ci", "bi", "first")
        results: dict[str, list[float]] = {k: [] for k in kinds}
        cpu_text: list[float] = []
        cpu_bare: list[float] = []
        for _ in range(args.rounds):
            text_round(texts, pem, pem_file, env, results, cpu_text, cpu_bare)
            images = Piped(counter_command(), env, "counter")
            results["first"] += images.ask(scans[:1])
            results["ci"] += images.ask(scans[1:])
            images.close()
            results["bi"] += bare_loop(scans, True, pem)
    print(summary("counter, QR text typed by a scanner", results["ct"]))
    print(summary("bare loop: qr.decode + ES256 verify", results["bt"]))
    print(summary("bare loop in a child, through a pipe", results["pt"]))
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
    ratio_boundary = statistics.median(results["pt"]) / statistics.median(results["bt"])
    print(f"ratio bare child through a pipe / bare:      {ratio_boundary:.2f}   (the boundary)")
    ratio_piped = statistics.median(results["ct"]) / statistics.median(results["pt"])
    print(f"ratio counter / bare child, both piped:      {ratio_piped:.2f}")
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
