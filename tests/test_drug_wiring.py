"""The drug catalogue in the commands: ``issue`` checks lines before signing, ``dispense
--substitute`` stays in the generic group, ``ledger export --format fhir``; all through the CLI,
with the small BDPM fixture (tests/assets/bdpm)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fhirclient.models import bundle as fhir_bundle

from conftest import ASSETS, KEYS, load_example
from eprescrire.drugs.catalogue import import_directory
from eprescrire.fhir import codes

PHARMACIST = "10012345673"
TRUST = KEYS / "demo-trust"
SKENAN, SKENAN_14 = "61227030", "3400933323523"
DOLIPRANE, DOLIPRANE_8 = "60234100", "3400935955838"
GLUCOPHAGE_1000, GLUCOPHAGE_1000_30 = "61052830", "3400935601711"
METFORMINE_BIOGARAN_30 = "3400939718330"
STILNOX = "63179285"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drugs") / "drugs.sqlite3"
    import_directory(ASSETS / "bdpm", path, source_date=dt.date(2021, 1, 15))
    return path


def rx_input(tmp_path: Path, name: str, *lines: dict[str, Any]) -> Path:
    """The reference prescription with these lines, as a JSON input file."""
    data = load_example()
    data["lines"] = [
        {"posology": "1 comprimé par jour", "duration_days": 14, "quantity": 1} | line
        for line in lines
    ]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, default=str), "utf-8")
    return path


def issue(run_cli: Any, key_file: Path, source: Path, *extra: Any) -> Any:
    out = source.with_suffix(".signed.json")
    return run_cli("issue", source, "--key", key_file, "--out", out, "--json", *extra)


# --------------------------------------------------------------------------------------------
# issue


def test_a_narcotic_not_marked_narcotic_is_refused_naming_the_field(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path, catalogue: Path
) -> None:
    source = rx_input(
        tmp_path, "skenan", {"label": "Skenan 10 mg", "quantity": 28, "unit": "gélules"}
    )
    result = issue(run_cli, key_file, source, "--drugs", catalogue)
    assert result.code == 3, result
    (shown,) = result.json_lines()
    assert shown["status"] == "invalid"
    assert [r["field"] for r in shown["reasons"]] == ["lines[1].narcotic"]
    assert "stupéfiants" in shown["reasons"][0]["message"]
    assert not source.with_suffix(".signed.json").exists()
    human = run_cli(
        "issue", source, "--key", key_file, "--out", tmp_path / "h.json", "--drugs", catalogue
    )
    assert human.code == 3 and "lines[1].narcotic:" in human.stderr
    # Marked narcotic, it is signed, with its codes filled from the label.
    marked = rx_input(
        tmp_path,
        "marked",
        {"label": "Skenan 10 mg", "quantity": 28, "unit": "gélules", "narcotic": True},
    )
    signed = issue(run_cli, key_file, marked, "--drugs", catalogue)
    assert signed.code == 0, signed
    (shown,) = signed.json_lines()
    assert [(n["field"], n["code"]) for n in shown["filled"]] == [
        ("lines[1].cis", "filled"),
        ("lines[1].cip13", "filled"),
    ]
    verified = run_cli("verify", marked.with_suffix(".signed.json"), "--trust", TRUST, "--json")
    line = verified.json_lines()[0]["prescription"]["lines"][0]
    assert (line["cis"], line["cip13"]) == (SKENAN, SKENAN_14)


def test_a_cip13_of_another_cis_is_refused(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path, catalogue: Path
) -> None:
    source = rx_input(
        tmp_path, "mismatch", {"label": "Doliprane 1000 mg", "cis": DOLIPRANE, "cip13": SKENAN_14}
    )
    result = issue(run_cli, key_file, source, "--drugs", catalogue)
    assert result.code == 3, result
    (shown,) = result.json_lines()
    assert [r["field"] for r in shown["reasons"]] == ["lines[1].cip13"]
    assert f"CIS {SKENAN}" in shown["reasons"][0]["message"]
    unknown = rx_input(tmp_path, "unknown", {"label": "Doliprane", "cip13": "3400930000000"})
    refused = issue(run_cli, key_file, unknown, "--drugs", catalogue)
    assert refused.code == 3 and "lines[1].cip13" in refused.stdout


def test_condition_limits_and_warnings(
    run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path, catalogue: Path
) -> None:
    too_long = rx_input(tmp_path, "long", {"label": "Stilnox 10 mg", "duration_days": 35})
    result = issue(run_cli, key_file, too_long, "--drugs", catalogue)
    assert result.code == 3
    assert [r["field"] for r in result.json_lines()[0]["reasons"]] == ["lines[1].duration_days"]
    source = rx_input(
        tmp_path,
        "warned",
        {"label": "Glucophage 850 mg", "cip13": "3400955923305"},
        {"label": "Stilnox 10 mg", "cis": STILNOX},
        {"label": "Skenan LP 10 mg"},
    )
    signed = issue(run_cli, key_file, source, "--drugs", catalogue)
    assert signed.code == 0, signed
    warnings = [(w["field"], w["code"]) for w in signed.json_lines()[0]["warnings"]]
    assert ("lines[1].cip13", "withdrawn") in warnings
    assert ("lines[2].cis", "list_i") in warnings
    assert ("lines[3].label", "unknown_label") in warnings  # « LP » is not « L.P. »: not checked
    human = run_cli(
        "issue", source, "--key", key_file, "--out", tmp_path / "human.json", "--drugs", catalogue
    )
    assert human.code == 0
    assert "! lines[1].cip13: presentation withdrawn" in human.stderr
    assert "! lines[2].cis: liste I" in human.stderr


def test_which_catalogue(
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    tmp_path: Path,
    catalogue: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skenan = rx_input(tmp_path, "skenan", {"label": "Skenan", "cis": SKENAN, "quantity": 28})
    # No catalogue anywhere: issued as always, nothing checked.
    monkeypatch.delenv("EPRESCRIRE_DRUGS", raising=False)
    plain = run_cli("issue", skenan, "--key", key_file, "--out", tmp_path / "p.json", "--json")
    assert plain.code == 0 and plain.json_lines()[0]["warnings"] == []
    # EPRESCRIRE_DRUGS names it.
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(catalogue))
    assert run_cli("issue", skenan, "--key", key_file, "--out", tmp_path / "e.json").code == 3
    # A catalogue named but absent: exit 4, before anything is signed.
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(tmp_path / "none.sqlite3"))
    missing = run_cli("issue", skenan, "--key", key_file, "--out", tmp_path / "m.json")
    assert missing.code == 4 and "drugs import" in missing.stderr
    assert not (tmp_path / "m.json").exists()
    # drugs.sqlite3 under EPRESCRIRE_HOME, made by `drugs import`.
    monkeypatch.delenv("EPRESCRIRE_DRUGS")
    assert run_cli("drugs", "import", ASSETS / "bdpm", "--quiet").code == 0
    assert (Path(cli_env["EPRESCRIRE_HOME"]) / "drugs.sqlite3").is_file()
    home = run_cli("issue", skenan, "--key", key_file, "--out", tmp_path / "h.json", "--json")
    assert home.code == 3 and "lines[1].narcotic" in home.stdout
    # Several inputs in forked workers: each opens the catalogue itself.
    doliprane = rx_input(tmp_path, "dol", {"label": "Doliprane 1000 mg", "cip13": DOLIPRANE_8})
    batch = run_cli(
        "issue", skenan, doliprane, "--key", key_file, "--out-dir", tmp_path / "b", "-j", "2",
        "--json",
    )  # fmt: skip
    assert batch.code == 3
    assert [r["status"] for r in batch.json_lines()] == ["invalid", "issued"]
    assert batch.json_lines()[1]["filled"][0]["field"] == "lines[1].cis"


# --------------------------------------------------------------------------------------------
# dispense --substitute


@pytest.fixture()
def metformin_rx(run_cli: Any, cli_env: Any, key_file: Path, tmp_path: Path) -> Path:
    source = rx_input(
        tmp_path,
        "metformin",
        {"label": "Glucophage 1000 mg", "cis": GLUCOPHAGE_1000, "duration_days": 30},
        {
            "label": "Glucophage 1000 mg",
            "cis": GLUCOPHAGE_1000,
            "duration_days": 30,
            "substitutable": False,
            "ns_reason": "MTE",
        },
    )
    out = tmp_path / "metformin.signed.json"
    result = run_cli("issue", source, "--key", key_file, "--out", out)
    assert result.code == 0, result
    return out


def dispense(run_cli: Any, rx: Path, ledger: Path, line: int, substitute: str, *extra: Any) -> Any:
    return run_cli(
        "dispense", rx, "--trust", TRUST, "--ledger", ledger, "--line", line,
        "--substitute", substitute, "--pharmacist", PHARMACIST, "--json", *extra,
    )  # fmt: skip


def test_a_substitute_outside_the_generic_group_is_refused(
    run_cli: Any, metformin_rx: Path, tmp_path: Path, catalogue: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    refused = dispense(run_cli, metformin_rx, ledger, 1, DOLIPRANE_8, "--drugs", catalogue)
    assert refused.code == 1, refused
    (shown,) = refused.json_lines()
    assert shown["status"] == "refused"
    assert [r["code"] for r in shown["reasons"]] == ["substitution_forbidden"]
    assert "groupe générique" in shown["reasons"][0]["message"]
    assert shown["dispensed"] == [] and shown["dispensing"]["lines"][0]["dispensed"] == 0
    human = run_cli(
        "dispense", metformin_rx, "--trust", TRUST, "--ledger", ledger, "--line", "1",
        "--substitute", DOLIPRANE_8, "--pharmacist", PHARMACIST, "--drugs", catalogue,
    )  # fmt: skip
    assert human.code == 1 and "substitution interdite" in human.stdout
    # Non-substitutable: refused whatever the substitute, as without a catalogue.
    forbidden = dispense(
        run_cli, metformin_rx, ledger, 2, METFORMINE_BIOGARAN_30, "--drugs", catalogue
    )
    assert forbidden.code == 1
    assert forbidden.json_lines()[0]["reasons"][0]["code"] == "substitution_forbidden"
    # In the group: handed over and recorded with its CIP13.
    allowed = dispense(
        run_cli, metformin_rx, ledger, 1, METFORMINE_BIOGARAN_30, "--drugs", catalogue
    )
    assert allowed.code == 0, allowed
    (shown,) = allowed.json_lines()
    assert shown["dispensed"][0]["generic"] == METFORMINE_BIOGARAN_30
    assert shown["dispensed"][0]["substituted"] is True
    records = run_cli("ledger", "export", "--ledger", ledger).json_lines()
    assert [r["kind"] for r in records] == ["prescription", "dispensing"]


def test_substitutes_by_label_and_without_a_catalogue(
    run_cli: Any, metformin_rx: Path, tmp_path: Path, catalogue: Path
) -> None:
    # A label naming one drug is checked like its CIP13.
    refused = dispense(
        run_cli, metformin_rx, tmp_path / "a.db", 1, "Doliprane", "--drugs", catalogue
    )
    assert refused.code == 1 and "substitution_forbidden" in refused.stdout
    same = dispense(
        run_cli, metformin_rx, tmp_path / "b.db", 1, "Metformine Biogaran", "--drugs", catalogue
    )
    assert same.code == 0, same
    # A label naming nothing: recorded, with a warning that it was not checked.
    vague = dispense(run_cli, metformin_rx, tmp_path / "c.db", 1, "générique", "--drugs", catalogue)
    assert vague.code == 0
    assert "non vérifié" in vague.json_lines()[0]["warnings"][-1]
    # No catalogue: a CIP13 is recorded with a warning, a label as it always was.
    unchecked = dispense(run_cli, metformin_rx, tmp_path / "d.db", 1, DOLIPRANE_8)
    assert unchecked.code == 0
    assert "non vérifié" in unchecked.json_lines()[0]["warnings"][-1]
    label = dispense(run_cli, metformin_rx, tmp_path / "e.db", 1, "METFORMINE BIOGARAN 1000 mg")
    assert label.code == 0 and label.json_lines()[0]["warnings"] == []


def test_the_batch_substitute_column_is_checked(
    run_cli: Any, metformin_rx: Path, tmp_path: Path, catalogue: Path
) -> None:
    rows = tmp_path / "day.csv"
    rows.write_text(
        "input,line,quantity,substitute\n"
        f"{metformin_rx},1,1,{DOLIPRANE_8}\n"
        f"{metformin_rx},1,1,{METFORMINE_BIOGARAN_30}\n",
        "utf-8",
    )
    result = run_cli(
        "dispense", "--batch", rows, "--trust", TRUST, "--ledger", tmp_path / "l.db",
        "--pharmacist", PHARMACIST, "--drugs", catalogue, "--json",
    )  # fmt: skip
    assert result.code == 1
    assert [r["status"] for r in result.json_lines()] == ["refused", "dispensed"]


def test_verify_and_plain_dispensing_never_open_the_catalogue(
    run_cli: Any, metformin_rx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(tmp_path / "absent.sqlite3"))
    assert run_cli("verify", metformin_rx, "--trust", TRUST).code == 0
    plain = run_cli(
        "dispense", metformin_rx, "--trust", TRUST, "--ledger", tmp_path / "l.db", "--all",
        "--pharmacist", PHARMACIST,
    )  # fmt: skip
    assert plain.code == 0, plain
    substituted = dispense(run_cli, metformin_rx, tmp_path / "m.db", 1, DOLIPRANE_8)
    assert substituted.code == 4 and "drugs import" in substituted.stderr


# --------------------------------------------------------------------------------------------
# ledger export --format fhir


def test_ledger_export_as_fhir(
    run_cli: Any, metformin_rx: Path, tmp_path: Path, catalogue: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    assert dispense(run_cli, metformin_rx, ledger, 1, METFORMINE_BIOGARAN_30).code == 0
    plain = run_cli(
        "dispense", metformin_rx, "--trust", TRUST, "--ledger", ledger, "--line", "2",
        "--pharmacist", PHARMACIST,
    )  # fmt: skip
    assert plain.code == 0, plain
    result = run_cli("ledger", "export", "--ledger", ledger, "--format", "fhir")
    assert result.code == 0, result
    (bundle,) = result.json_lines()
    parsed = fhir_bundle.Bundle(bundle, strict=True)  # fhirclient's R4 models
    assert parsed.as_json() == bundle
    dispenses = [e["resource"] for e in bundle["entry"]]
    assert [d["resourceType"] for d in dispenses] == ["MedicationDispense"] * 2
    first, second = dispenses
    assert first["medicationCodeableConcept"]["coding"] == [
        {"system": codes.CIP, "code": METFORMINE_BIOGARAN_30}
    ]
    assert first["substitution"]["wasSubstituted"] is True
    assert second["substitution"]["wasSubstituted"] is False
    assert second["authorizingPrescription"][0]["identifier"]["system"] == codes.PRESCRIPTION_LINE
    assert first["performer"][0]["actor"]["identifier"] == {
        "system": codes.IDNATPS,
        "value": "8" + PHARMACIST,
    }
    assert first["subject"]["identifier"]["system"] == codes.INS_NIR
    # --after: only later dispensings, their prescription still found; --out: a 0600 file.
    seqs = [r["seq"] for r in run_cli("ledger", "export", "--ledger", ledger).json_lines()]
    later = run_cli("ledger", "export", "--ledger", ledger, "--format", "fhir", "--after", seqs[1])
    (only,) = later.json_lines()
    assert [e["resource"]["identifier"] for e in only["entry"]] == [second["identifier"]]
    out = tmp_path / "dispenses.fhir.json"
    written = run_cli("ledger", "export", "--ledger", ledger, "--format", "fhir", "--out", out)
    assert written.code == 0 and json.loads(out.read_text("utf-8")) == bundle
    assert out.stat().st_mode & 0o777 == 0o600
    bad = run_cli("ledger", "export", "--ledger", ledger, "--format", "xml")
    assert bad.code == 2 and "jsonl, csv or fhir" in bad.stderr


# --------------------------------------------------------------------------------------------
# drugs search without Typer


def test_drugs_search_fast_path_accepts_exactly_the_typer_options() -> None:
    import typer.main

    from eprescrire.cli import app, drugs_search_parser

    drugs = typer.main.get_command(app).commands["drugs"]  # type: ignore[attr-defined]
    command = drugs.commands["search"]
    typer_options = {
        opt for param in command.params for opt in param.opts if opt.startswith("-")
    } - {"--help", "-h"}
    fast_options = {
        opt for action in drugs_search_parser()._actions for opt in action.option_strings
    }
    assert fast_options == typer_options


def test_drugs_search_fast_path_loads_no_typer_and_agrees_with_it(
    run_cli: Any, catalogue: Path
) -> None:
    import subprocess
    import sys

    from typer.testing import CliRunner

    from eprescrire.cli import app

    code = (
        "import sys\n"
        "from eprescrire.cli import main\n"
        "try:\n"
        f"    main(['drugs', 'search', 'metformine', '--catalogue', {str(catalogue)!r}])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('typer' in sys.modules, 'rich' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.splitlines()[-1] == "False False"
    assert "METFORMINE BIOGARAN" in ran.stdout
    for args in (["metformine", "1000"], ["-n", "1", "doliprane", "--json"], ["nothing"]):
        fast = run_cli("drugs", "search", *args, "--catalogue", catalogue)
        typer = CliRunner().invoke(app, ["drugs", "search", *args, "--catalogue", str(catalogue)])
        assert fast.code == typer.exit_code == 0
        assert fast.stdout == typer.stdout
    # What the fast path declines, Typer explains.
    assert run_cli("drugs", "search", "x", "--limit", "0", "--catalogue", catalogue).code == 2
    assert run_cli("drugs", "search", "--catalogue", catalogue).code == 2
    missing = run_cli("drugs", "search", "x", "--catalogue", catalogue.parent / "none.sqlite3")
    assert missing.code == 4 and "drugs import" in missing.stderr
