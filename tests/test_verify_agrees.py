"""``verify`` says what ``dispense`` would decide (SPEC §6): a prescription of which nothing may
be dispensed any more is not VALID, with or without ``--ledger``; the rules are the engine's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from conftest import KEYS

PHARMACIST = "10003456786"
TRUST = KEYS / "demo-trust"

HEAD = """
[prescriber]
name = "Dr Claire Martin"
rpps = "10003456786"
specialty = "Médecine générale"

[prescriber.facility]
name = "Cabinet médical du Parc"
address = "12 rue de la Roquette, 75011 Paris"

[patient]
family_name = "Durand"
given_name = "Louise"
birth_date = 1956-03-14
"""

MORPHINE = """
[[lines]]
label = "SULFATE DE MORPHINE 10 mg, gélule à libération prolongée"
posology = "1 gélule matin et soir"
duration_days = 28
quantity = 2
unit = "boîte de 14"
narcotic = true
"""

TWO_LINES = """
[[lines]]
label = "PARACÉTAMOL 1 g, comprimé"
posology = "1 comprimé 3 fois par jour si douleur"
duration_days = 10
quantity = 1
unit = "boîte de 8"

[[lines]]
label = "AMLODIPINE 5 mg, gélule"
posology = "1 gélule le matin"
duration_days = 30
quantity = 1
unit = "boîte de 30"
"""


def _issue(run_cli: Any, tmp_path: Path, key_file: Path, body: str, issued: dt.date) -> Path:
    source = tmp_path / "rx.toml"
    source.write_text(HEAD + body, "utf-8")
    out = tmp_path / "rx.json"
    result = run_cli(
        "issue", source, "--key", key_file, "--out", out, "--at", issued.isoformat(), "-q"
    )
    assert result.code == 0, result
    return out


def _verify(run_cli: Any, rx: Path, *args: Any) -> Any:
    result = run_cli("verify", rx, "--trust", TRUST, "--json", "-q", *args)
    (verdict,) = result.json_lines()
    return result.code, verdict


def _dispense(run_cli: Any, rx: Path, ledger: Path, *args: Any) -> Any:
    result = run_cli("dispense", rx, "--trust", TRUST, "--ledger", ledger,
                     "--pharmacist", PHARMACIST, "--json", "-q", *args)  # fmt: skip
    return result.code, json.loads(result.stdout)


def test_a_narcotic_past_its_treatment_period_is_not_valid(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = _issue(run_cli, tmp_path, key_file, MORPHINE, dt.date.today() - dt.timedelta(days=30))
    code, verdict = _verify(run_cli, rx)
    assert code == 1 and verdict["status"] == "rejected", verdict
    assert verdict["reasons"][0]["code"] == "narcotic_window"
    assert verdict["prescription"]["lines"][0]["narcotic"] is True  # authentic: still shown
    ledger = tmp_path / "ledger.sqlite3"
    dispensed_code, refused = _dispense(run_cli, rx, ledger, "--all")
    assert dispensed_code == 1 and refused["reasons"][0]["code"] == "narcotic_window"
    code, with_ledger = _verify(run_cli, rx, "--ledger", ledger)
    assert code == 1 and with_ledger["reasons"][0]["code"] == "narcotic_window"


def test_a_narcotic_within_its_period_stays_valid(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = _issue(run_cli, tmp_path, key_file, MORPHINE, dt.date.today() - dt.timedelta(days=1))
    code, verdict = _verify(run_cli, rx)
    assert code == 0 and verdict["status"] == "valid", verdict


def test_nothing_left_to_dispense_after_three_months_is_not_valid(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path, set_clock: Any
) -> None:
    issued = dt.date.today() - dt.timedelta(days=100)
    rx = _issue(run_cli, tmp_path, key_file, TWO_LINES, issued)
    ledger = tmp_path / "ledger.sqlite3"
    now = dt.datetime.now(dt.UTC)
    set_clock(now - dt.timedelta(days=99))
    code, done = _dispense(run_cli, rx, ledger, "--line", "1")
    assert code == 0, done
    code, verdict = _verify(run_cli, rx, "--ledger", ledger)
    assert code == 0 and verdict["status"] == "valid"  # line 2 may still be dispensed then
    set_clock(now)
    code, verdict = _verify(run_cli, rx, "--ledger", ledger)
    assert code == 1 and verdict["status"] == "rejected", verdict
    assert verdict["reasons"][0]["code"] == "expired"
    assert "line 2" in verdict["reasons"][0]["message"]
    code, refused = _dispense(run_cli, rx, ledger, "--all")
    assert code == 1 and refused["reasons"][0]["code"] == "expired"
    code, verdict = _verify(run_cli, rx)  # without the ledger: never dispensed, expired
    assert code == 1 and verdict["reasons"][0]["code"] == "expired"


def test_a_renewal_still_to_come_keeps_the_prescription_valid(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path, set_clock: Any
) -> None:
    rx = _issue(
        run_cli, tmp_path, key_file, TWO_LINES.replace("duration_days = 30", "duration_days = 30\nrenewals = 2"),
        dt.date.today() - dt.timedelta(days=1),
    )  # fmt: skip
    ledger = tmp_path / "ledger.sqlite3"
    assert _dispense(run_cli, rx, ledger, "--all")[0] == 0
    code, verdict = _verify(run_cli, rx, "--ledger", ledger)
    assert code == 0, verdict  # nothing due today, but renewals later: VALID
    assert verdict["dispensing"]["lines"][1]["available_now"] == 0
