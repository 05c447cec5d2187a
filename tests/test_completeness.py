"""``issue`` warns about what a prescription lacks without being refused."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path

from conftest import EXAMPLES, load_example
from eprescrire import completeness, model

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _warned(data: dict) -> set[str]:
    return {w["code"] for w in completeness.warnings(model.from_input(data, now=NOW))}


def test_complete_prescription_has_no_warning() -> None:
    assert _warned(load_example("chronic-ald.toml")) == set()


def test_child_without_weight_sex_and_phone() -> None:
    data = copy.deepcopy(load_example("paediatric.toml"))
    assert _warned(data) == {"missing_phone"}, "the example gives no prescriber phone"
    del data["patient"]["weight_kg"]
    del data["patient"]["sex"]
    data["prescriber"]["facility"]["phone"] = "01 43 55 12 34"
    assert _warned(data) == {"missing_weight", "missing_sex"}
    adult = copy.deepcopy(data)
    adult["lines"][0]["substitutable"] = True  # EFG is for a child under 6
    del adult["lines"][0]["ns_reason"]
    adult["patient"]["birth_date"] = dt.date(2008, 11, 20)  # 18 on the issue date
    assert _warned(adult) == {"missing_sex"}
    adult["patient"]["birth_date"] = dt.date(2008, 11, 21)  # 17, one day short
    assert _warned(adult) == {"missing_weight", "missing_sex"}


def test_issue_shows_warnings_in_text_and_json(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    data = tomllib.loads((EXAMPLES / "paediatric.toml").read_text("utf-8"))
    text = (EXAMPLES / "paediatric.toml").read_text("utf-8").replace("weight_kg = 16.5\n", "")
    child = tmp_path / "child.toml"
    child.write_text(text, "utf-8")
    assert "weight_kg" in data["patient"]
    human = run_cli("issue", child, "--key", key_file, "--out", tmp_path / "a.json")
    assert human.code == 0, human
    assert "! patient.weight_kg: the patient is a child (4 years old)" in " ".join(
        human.stderr.split() + human.stdout.split()
    )
    machine = run_cli("issue", child, "--key", key_file, "--out", tmp_path / "b.json", "--json")
    assert machine.code == 0, machine
    (summary,) = machine.json_lines()
    assert summary["status"] == "issued"
    assert [w["code"] for w in summary["warnings"]] == ["missing_weight", "missing_phone"]
    assert all(set(w) == {"code", "message", "field"} for w in summary["warnings"])
