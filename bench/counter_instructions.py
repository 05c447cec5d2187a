#!/usr/bin/env python3
"""Instructions per typed QR text: ``counter``'s own work against the bare loop, under Valgrind.

CPU and wall times on a shared machine move by tens of percent from one run to the next; the
number of instructions a piece of code executes does not. This bench issues ``--codes``
distinct prescriptions (as ``bench/counter_latency.py``), then runs three child processes under
``valgrind --tool=callgrind`` (needs Valgrind installed): one that only sets up (imports, trust
store, public key, three codes of warm-up for each side), one that then runs the bare loop of
``bench/counter_latency.py`` over every code (``qr.decode`` of the text, the JWS split, one
ES256 check with cryptography), one that runs ``Session.check`` and the NDJSON verdict line
over every code (what ``eprescrire counter --json`` does for each line, without the pipe). The
difference with the first, divided by the number of codes, is the cost of one code.

Instructions are not time: the C code of the ES256 check runs more instructions per cycle than
the interpreter does, so the same ratio in time is higher. They compare two versions of the
Python code, whatever the load.

    .venv/bin/python bench/counter_instructions.py [--codes 200]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

_COLLECTED = re.compile(r"Collected : (\d+)")


def child(mode: str, data_file: str) -> None:
    """The process measured: set up, warm up both sides, then run ``mode`` over every code."""
    from counter_latency import bare_loop

    from eprescrire.services.counter import Session
    from eprescrire.trust import TrustStore
    from eprescrire.verdict import Verdict

    data = json.loads(Path(data_file).read_text())
    texts, pem = data["texts"], data["pem"].encode()
    session = Session(TrustStore.open(ROOT / "keys" / "demo-trust"))
    # The NDJSON line counter --json writes (to_json_text before it wrote bytes).
    line = getattr(Verdict, "to_json_bytes", None) or Verdict.to_json_text

    def counter(items: list[str]) -> None:
        for text in items:
            (verdict,) = session.check(text.encode())
            line(verdict)
            if verdict.status != "valid":
                raise SystemExit(f"session: {verdict.to_json()}")

    counter(texts[:3])
    bare_loop(texts[:3], False, pem)
    if mode == "counter":
        counter(texts)
    elif mode == "bare":
        bare_loop(texts, False, pem)


def instructions(mode: str, data_file: str) -> int:
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            mode,
            data_file,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = _COLLECTED.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"valgrind ({mode}) failed: {run.stderr[-2000:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=200, help="distinct QR texts")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("this bench needs Valgrind (apt-get install valgrind)")

    from counter_latency import issue
    from cryptography.hazmat.primitives import serialization

    from eprescrire import qr

    documents = issue(args.codes)
    texts = [qr.encode(d) for d in documents]  # type: ignore[arg-type]
    if len(set(texts)) != len(texts):
        raise SystemExit("the issued codes are not all distinct")
    pem = documents[0].certificates[0].public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="eprescrire-instructions-") as tmp:
        data_file = str(Path(tmp) / "codes.json")
        Path(data_file).write_text(json.dumps({"texts": texts, "pem": pem.decode()}))
        base = instructions("setup", data_file)
        bare = (instructions("bare", data_file) - base) / len(texts)
        counter = (instructions("counter", data_file) - base) / len(texts)
    print(
        f"{len(texts)} QR texts; instructions per code: Session.check + NDJSON verdict "
        f"{counter / 1e6:.3f} M, bare loop {bare / 1e6:.3f} M; ratio {counter / bare:.3f}; "
        f"counter's own work over the bare loop {(counter - bare) / 1e3:.0f} k"
    )


if __name__ == "__main__":
    main()
