"""The README's tour runs as written, start to end, in a scratch directory; the example
scripts run without an activated virtualenv and exit with the status of what they ran."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, KEYS, ROOT

VENV_BIN = Path(sys.executable).parent


def _tour() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A short tour") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the tour's code block"
    return match.group(1)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No activated virtualenv, no eprescrire settings: what a newcomer's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPRESCRIRE_")}
    env.pop("VIRTUAL_ENV", None)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    env.update(PATH=os.pathsep.join(parts), TMPDIR=str(tmp_path), NO_COLOR="1")
    return env


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    before = set(os.listdir(ROOT))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _tour()],
        cwd=ROOT,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "DÉLIVRÉE" in out and "ANNULÉE" in out and "refused as expected (exit 1)" in out
    assert "certificat du prescripteur révoqué" in out
    assert set(os.listdir(ROOT)) == before  # nothing left in the repository
    [scratch] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (scratch / "dr.p12").stat().st_mode & 0o777 == 0o600
    assert len(list((scratch / "out").glob("*.json"))) == 5


def _script(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(EXAMPLES / name), *args],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_counter_example_and_pharmacy_counter_exit_codes(tmp_path: Path) -> None:
    session = _script(tmp_path, "counter.sh")
    assert session.returncode == 0, session.stderr[-3000:]
    assert "counter session exit 3" in session.stderr
    assert session.stdout.count("DÉLIVRÉE") == 3
    # A folder holding one unreadable file: the script exits 3, as dispense did.
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "blank.txt").write_text("nothing here\n")
    counter = _script(tmp_path, "pharmacy-counter.sh", str(scans))
    assert counter.returncode == 3, counter.stderr[-3000:]
    assert "exit 3" in counter.stderr


def test_nightly_export_runs_twice(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    env = {**os.environ, "EPRESCRIRE_PASSPHRASE": "demo-only"}
    key = tmp_path / "dr.p12"
    shutil.copyfile(KEYS / "demo-prescriber.p12", key)
    key.chmod(0o600)
    subprocess.run(
        [VENV_BIN / "eprescrire", "issue", EXAMPLES / "reference.toml", "--key", key, "--out",
         tmp_path / "rx.json"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [VENV_BIN / "eprescrire", "dispense", tmp_path / "rx.json", "--trust", KEYS / "demo-trust",
         "--ledger", ledger, "--all", "--pharmacist", "10012345673"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    out = tmp_path / "exports"
    for _ in range(2):
        run = _script(tmp_path, "nightly-export.sh", str(ledger), str(out))
        assert run.returncode == 0, run.stderr[-2000:]
    assert len(list(out.glob("ledger-*.jsonl"))) == 2


def test_verify_says_an_issue_input_is_one(run_cli, cli_env) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("verify", EXAMPLES / "reference.toml", "--trust", KEYS / "demo-trust")
    assert result.code == 3
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 2 and "eprescrire issue" in lines[1], lines
