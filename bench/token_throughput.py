#!/usr/bin/env python3
"""Token throughput: prescriptions signed per second through a PKCS#11 token (SoftHSM2) against
the PKCS#12 file path, measured in the same run.

    python bench/token_throughput.py [--count 300] [--repeat 3] [--with-pdf]
    python bench/token_throughput.py --key 'pkcs11:token=CPS;object=signature' ...

Without ``--key``, makes a SoftHSM2 token in a temporary directory (``SOFTHSM2_CONF``) with an
EC P-256 key and an RSA-2048 key, certified by the demo authority (``keys prescriber --key``).
With ``--key`` (repeatable), measures those keys as they are: set ``EPRESCRIRE_PKCS11_MODULE``
and ``EPRESCRIRE_PIN`` for them. Each run is one ``eprescrire issue - --key K --out-dir D``
over the same NDJSON inputs (signed JSON only, or with ``--with-pdf`` the A5 PDF too); the
runs are interleaved so that machine noise hits all alike. Prints prescriptions per second
(median of --repeat runs) and each ratio to the PKCS#12 run.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT / "bench"))

from issue_throughput import make_inputs  # noqa: E402

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "492817"


def eprescrire() -> str:
    return shutil.which("eprescrire") or str(Path(sys.executable).parent / "eprescrire")


def make_token(workdir: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """A SoftHSM2 token with a certified P-256 key and a certified RSA-2048 key."""
    for tool in ("softhsm2-util", "pkcs11-tool"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: install softhsm2 and opensc (scripts/system-deps.sh)")
    (workdir / "tokens").mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {workdir / 'tokens'}\nobjectstore.backend = file\n")
    env.update(SOFTHSM2_CONF=str(conf), EPRESCRIRE_PKCS11_MODULE=str(SOFTHSM), EPRESCRIRE_PIN=PIN)
    run = {"env": env, "check": True, "capture_output": True}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "BENCH", "--pin", PIN,
         "--so-pin", "83726151"],
        **run,
    )  # fmt: skip
    subprocess.run(
        ["pkcs11-tool", "--module", str(SOFTHSM), "--token-label", "BENCH", "--login",
         "--pin", PIN, "--keypairgen", "--key-type", "rsa:2048", "--label", "rsa", "--id", "02"],
        **run,
    )  # fmt: skip
    authority = workdir / "authority.p12"
    shutil.copyfile(ROOT / "keys" / "demo-authority.p12", authority)
    authority.chmod(0o600)
    keys = []
    for label, name in (("ec", "token EC P-256 (ES256)"), ("rsa", "token RSA-2048 (PS256)")):
        uri = f"pkcs11:token=BENCH;object={label}"
        subprocess.run(
            [eprescrire(), "keys", "prescriber", "--authority", str(authority),
             "--name", "Dr Claire Martin", "--rpps", "10003456786",
             "--specialty", "Médecine générale", "--key", uri,
             "--out", str(workdir / f"{label}.pem"), "--quiet"],
            **run,
        )  # fmt: skip
        keys.append((name, uri))
    return keys


def issue_run(ndjson: bytes, key: str, out: Path, env: dict[str, str], pdf: bool) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [eprescrire(), "issue", "-", "--key", key, "--out-dir", str(out), "--quiet"]
    if pdf:
        command.append("--with-pdf")
    start = time.perf_counter()
    subprocess.run(command, input=ndjson, env=env, check=True)
    elapsed = time.perf_counter() - start
    produced = len(list(out.glob("*.json")))
    assert produced == ndjson.count(b"\n"), f"{produced} documents written"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-pdf", action="store_true", help="also draw each A5 PDF")
    parser.add_argument("--key", action="append", default=[], help="a pkcs11: URI to measure")
    args = parser.parse_args()

    inputs = make_inputs(args.count)
    ndjson = b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in inputs)
    workdir = Path(tempfile.mkdtemp(prefix="eprescrire-token-bench-"))
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}
    try:
        p12 = workdir / "prescriber.p12"
        shutil.copyfile(ROOT / "keys" / "demo-prescriber.p12", p12)
        p12.chmod(0o600)
        runs = [("PKCS#12 file (ES256, baseline)", str(p12))]
        if args.key:
            runs += [(uri, uri) for uri in args.key]
        else:
            runs += make_token(workdir, env)
        times: dict[str, list[float]] = {name: [] for name, _ in runs}
        for _ in range(args.repeat):
            for n, (name, key) in enumerate(runs):
                times[name].append(issue_run(ndjson, key, workdir / f"out-{n}", env, args.with_pdf))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    what = "signed JSON + A5 PDF" if args.with_pdf else "signed JSON"
    print(
        f"issue throughput, {args.count} prescriptions ({what}), --jobs 1, "
        f"median of {args.repeat} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'key':<36}{'seconds':>10}{'rx/s':>10}{'ratio':>8}")
    baseline = args.count / statistics.median(times[runs[0][0]])
    for name, _ in runs:
        seconds = statistics.median(times[name])
        rate = args.count / seconds
        print(f"{name[:35]:<36}{seconds:>10.2f}{rate:>10.1f}{rate / baseline:>8.2f}")


if __name__ == "__main__":
    main()
