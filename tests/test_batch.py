"""Batch use: many inputs, CSV/NDJSON on stdin, several processes, stable order, fast start-up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE_FILES, KEYS

CSV = (
    "rx,prescriber.name,prescriber.rpps,prescriber.specialty,prescriber.facility.name,"
    "prescriber.facility.address,patient.family_name,patient.given_name,patient.birth_date,"
    "patient.weight_kg,line.label,line.posology,line.duration_days,line.quantity,line.ald,"
    "line.substitutable,line.ns_reason\n"
    'A,Dr Claire Martin,10003456786,MG,Cabinet,1 rue,Durand,Louise,1956-03-14,"64,5",'
    "AMOXICILLINE 1 g,1 cp matin et soir,7,1,oui,,\n"
    'A,Dr Claire Martin,10003456786,MG,Cabinet,1 rue,Durand,Louise,1956-03-14,"64,5",'
    "LÉVOTHYROXINE 75 µg,1 cp le matin,30,1,non,non,MTE\n"
    "B,Dr Claire Martin,10003456786,MG,Cabinet,1 rue,Petit,Jo,2020-01-01,,X,1/j,-7,1,,,\n"
    "C,Dr Claire Martin,10003456786,MG,Cabinet,1 rue,Petit,Jo,2020-01-01,,X,1/j,7,1,,,\n"
    "C,Dr Claire Martin,10003456786,MG,Cabinet,1 rue,Petit,Jules,2020-01-01,,Y,1/j,7,1,,,\n"
)


def test_csv_rows_group_into_prescriptions(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    result = run_cli(
        "issue", "-", "--key", key_file, "--out-dir", tmp_path / "out", "--json", stdin=CSV.encode()
    )
    summaries = result.json_lines()
    assert [s["status"] for s in summaries] == ["issued", "invalid", "invalid"]
    assert summaries[1]["errors"] == [
        {"field": "lines[1].duration_days", "message": "must be between 1 and 365"}
    ]
    assert "disagree on patient.given_name" in summaries[2]["errors"][0]["message"]
    assert result.code == 3
    document = json.loads(Path(summaries[0]["out"]).read_text("utf-8"))
    lines = document["readable"]["lines"]
    assert [line["ald"] for line in lines] == [True, False]
    assert lines[1]["ns_reason"] == "MTE" and document["readable"]["patient"]["weight_kg"] == 64.5


def test_jobs_keep_input_order_and_results(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    inputs = [*EXAMPLE_FILES, tmp_path / "missing.toml", *EXAMPLE_FILES]
    one = run_cli("issue", *inputs, "--key", key_file, "--out-dir", tmp_path / "one", "--json")
    two = run_cli(
        "issue", *inputs, "--key", key_file, "--out-dir", tmp_path / "two", "--json", "--jobs", "2"
    )
    assert one.code == two.code == 3
    first, second = one.json_lines(), two.json_lines()
    assert [s["input"] for s in first] == [s["input"] for s in second] == [str(p) for p in inputs]
    assert [s["status"] for s in first] == [s["status"] for s in second]
    verified = run_cli(
        "verify", *sorted((tmp_path / "two").iterdir()), "--trust", KEYS / "demo-trust", "--json"
    )
    assert verified.code == 0 and len(verified.json_lines()) == 2 * len(EXAMPLE_FILES)


def test_importing_the_cli_loads_no_heavy_library() -> None:
    """``eprescrire --help`` and ``verify`` must start fast: heavy libraries load on use."""
    code = (
        "import sys, eprescrire.cli\n"
        "heavy = [m for m in ('reportlab', 'segno', 'PIL', 'zxingcpp', 'pypdfium2', 'pyzbar', 'pkcs11', 'psycopg') if m in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_core_imports_neither_typer_nor_rich() -> None:
    code = (
        "import sys\n"
        "import eprescrire.signing, eprescrire.verifying, eprescrire.trust, eprescrire.model\n"
        "print([m for m in ('typer', 'rich') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_version_and_completion(run_cli) -> None:
    from eprescrire import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"eprescrire {__version__}"
    assert "--install-completion" in run_cli("--help").stdout


def test_verify_fast_path_accepts_exactly_the_typer_options() -> None:
    """``verify`` is served without Typer at the counter; both parsers must agree."""
    import typer.main

    from eprescrire.cli import app, verify_parser

    group = typer.main.get_command(app)
    command = group.commands["verify"]  # type: ignore[attr-defined]
    typer_options = {
        opt for param in command.params for opt in param.opts if opt.startswith("-")
    } - {"--help", "-h"}
    fast_options = {opt for action in verify_parser()._actions for opt in action.option_strings}
    assert fast_options == typer_options


def test_fast_path_and_typer_give_the_same_verdicts(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    run_cli("issue", EXAMPLE_FILES[0], "--key", key_file, "--out", tmp_path / "rx.json")
    fast = run_cli(
        "verify",
        tmp_path / "rx.json",
        tmp_path / "none.png",
        "--trust",
        KEYS / "demo-trust",
        "--json",
    )
    # An option Typer must explain (bad --jobs) falls back to Typer and its usage error.
    assert (
        run_cli("verify", tmp_path / "rx.json", "--jobs", "0", "--trust", KEYS / "demo-trust").code
        == 2
    )
    assert run_cli("verify", "--trust").code == 2
    assert fast.code == 3
    assert [v["status"] for v in fast.json_lines()] == ["valid", "unreadable"]
    helped = run_cli("verify", "--help")
    assert helped.code == 0 and "--engine" in helped.stdout


PHARMACIST = "10012345673"


def test_dispense_many_inputs_and_a_csv_batch(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    out = tmp_path / "rx"
    issued = run_cli(
        "issue", *EXAMPLE_FILES, "--key", key_file, "--out-dir", out, "--json"
    ).json_lines()
    docs = [Path(s["out"]) for s in issued]
    ledger = tmp_path / "ledger.sqlite3"
    common = ["--trust", KEYS / "demo-trust", "--ledger", ledger, "--json"]
    first = run_cli(
        "dispense",
        docs[0],
        docs[1],
        tmp_path / "missing.png",
        "--all",
        "--pharmacist",
        PHARMACIST,
        *common,
        "--jobs",
        "2",
    )
    assert [r["status"] for r in first.json_lines()] == ["dispensed", "dispensed", "unreadable"]
    assert first.code == 3
    reference = next(
        d for d, s in zip(docs, issued, strict=True) if s["input"].endswith("reference.toml")
    )
    batch_csv = tmp_path / "day.csv"
    batch_csv.write_text(
        "input,line,quantity,pharmacist,at\n"
        f"{docs[2].name},,,,\n"
        f"{docs[2].name},,,,\n"  # the same paper again: refused
        f"{reference.name},4,1,,\n"
        f"{reference.name},4,5,,\n"  # more than remains: quantity_exceeded
        f"{reference.name},1,1,10012345670,\n",  # mistyped RPPS: that row only
        "utf-8",
    )
    shutil.copy(reference, tmp_path / reference.name)
    shutil.copy(docs[2], tmp_path / docs[2].name)
    result = run_cli("dispense", "--batch", batch_csv, "--pharmacist", PHARMACIST, *common)
    rows = result.json_lines()
    assert [r["status"] for r in rows] == [
        "dispensed",
        "refused",
        "dispensed",
        "refused",
        "unreadable",
    ]
    assert rows[3]["reasons"][0]["code"] == "quantity_exceeded"
    assert "Luhn" in rows[4]["reasons"][0]["message"]
    assert result.code == 1
    assert run_cli("ledger", "verify", "--ledger", ledger).code == 0
