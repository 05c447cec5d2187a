"""Lines that state units (``units_per_box``): dispensed in units, so that a narcotic presented
late gets the units for the days that remain; carried by the QR code (old codes unchanged) and
FHIR; ``dispense --all`` reports every line it left out, and why."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS
from eprescrire import dispensing as d
from eprescrire import model
from eprescrire.errors import ValidationError
from eprescrire.ledger import History, Record
from eprescrire.rules import PARIS

RPPS = "10003456786"
KID = "AAAAAAAAAAA"


def paris(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text if "T" in text else text + "T12:00")
    return moment.replace(tzinfo=PARIS).astimezone(dt.UTC)


def _prescription(**line: Any) -> model.Prescription:
    data = {
        "issued": paris("2026-01-01T10:00").isoformat(),
        "prescriber": {
            "name": "Dr Claire Martin",
            "rpps": RPPS,
            "specialty": "Médecine générale",
            "facility": {"name": "Cabinet", "address": "12 rue de la Roquette, 75011 Paris"},
        },
        "patient": {"family_name": "Durand", "given_name": "Louise", "birth_date": "1956-03-14"},
        "lines": [
            {
                "label": "SULFATE DE MORPHINE 10 mg, gélule",
                "posology": "1 gélule par jour",
                "duration_days": 28,
                "quantity": 2,
                "unit": "boîte de 14",
                "narcotic": True,
                **line,
            }
        ],
    }
    return model.from_input(data, now=paris("2026-12-31"))


def _attempt(p: model.Prescription, when: str, records: list[Record], **request: Any) -> Any:
    state = d.state_of(p, KID, History(p.id, tuple(records)))
    try:
        new = d.plan(state, d.Request(pharmacist=RPPS, **request), paris(when))
    except d.Refused as e:
        return e.code.value, e.message
    for item in new:
        records.append(Record(len(records) + 1, item.kind, p.id, "t", item.body, "", ""))
    return sum(item.body["quantity"] for item in new)


def test_a_late_narcotic_in_boxes_can_give_nothing_but_in_units_gives_the_days_left() -> None:
    boxes = _prescription()
    code, message = _attempt(boxes, "2026-01-27", [], line=1)
    assert code == "narcotic_window" and "less than one unit" in message
    units = _prescription(units_per_box=14)
    assert units.lines[0].units_per_dispensing == 28
    # Day 26 of 28: only the 2 remaining days, as 2 gélules.
    assert _attempt(units, "2026-01-27", [], line=1) == 2
    assert _attempt(units, "2026-01-27", [], line=1, quantity=3)[0] == "narcotic_window"


def test_units_count_within_the_three_day_window_and_the_state_says_so() -> None:
    p = _prescription(units_per_box=14)
    records: list[Record] = []
    assert _attempt(p, "2026-01-02", records, line=1, quantity=10) == 10
    assert _attempt(p, "2026-01-02", records, line=1) == 18
    state = d.state_of(p, KID, History(p.id, tuple(records)))
    shown = d.view(state, paris("2026-01-02"))
    assert shown["lines"][0]["prescribed"] == 28 and shown["lines"][0]["counted_in"] == "units"
    assert state.fully_dispensed


@pytest.mark.parametrize("value", [0, 1000, "14", True])
def test_units_per_box_is_checked(value: Any) -> None:
    with pytest.raises(ValidationError) as e:
        _prescription(units_per_box=value)
    assert "units_per_box" in str(e.value.errors[0].field)


def test_old_prescriptions_keep_their_signed_bytes_and_qr_number_block() -> None:
    from eprescrire import qr

    p = _prescription()
    assert b"units_per_box" not in model.signed_bytes(p)
    with_units = _prescription(units_per_box=14)
    assert b'"units_per_box":14' in model.signed_bytes(with_units)
    # The units extension is most significant: without it the number block is as before
    # (test_qr's golden vector); with it, it grows.
    assert len(qr._compact(with_units).numbers) > len(qr._compact(p).numbers)


def test_dispense_all_reports_every_line_it_skipped(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = tmp_path / "rx.json"
    assert run_cli("issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file,
                   "--out", rx, "-q").code == 0  # fmt: skip
    ledger = tmp_path / "ledger.sqlite3"
    common = ["--trust", KEYS / "demo-trust", "--ledger", ledger, "--pharmacist", RPPS]
    assert run_cli("dispense", rx, *common, "--line", "4", "-q").code == 0
    assert run_cli("dispense", rx, *common, "--line", "1", "-q").code == 0
    result = run_cli("dispense", rx, *common, "--all", "--json")
    assert result.code == 0, result
    body = json.loads(result.stdout)
    assert [item["line"] for item in body["dispensed"]] == [2, 3]
    skipped = {item["line"]: item["code"] for item in body["skipped"]}
    assert skipped == {1: "renewal_not_due", 4: "quantity_exceeded"}
    assert "ligne 1 non délivrée" in result.stderr and "ligne 4 non délivrée" in result.stderr
