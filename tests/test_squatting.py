"""An identifier squatted by another trusted prescriber never blocks the genuine prescription."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS, PASSPHRASE, load_example
from eprescrire import keys, model, signing
from eprescrire.trust import TrustStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PHARMACIST = "10009876540"


@pytest.fixture()
def scene(
    tmp_path: Path,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    demo_authority: keys.Credentials,
    ledger_backend: Any,
) -> dict[str, Any]:
    """Dr Claire Martin's genuine prescription, and Dr Paul Autre's (trusted too) signed under
    the same identifier with other content, dispensed first (on each ledger backend)."""
    trust = tmp_path / "trust"
    shutil.copytree(KEYS / "demo-trust", trust)
    paul = keys.new_prescriber(
        demo_authority, name="Dr Paul Autre", rpps="10012345673", specialty="Médecine générale",
        not_before=NOW - dt.timedelta(days=1), days=30,
    )  # fmt: skip
    TrustStore.open(trust).add_certificate(paul.certificate, now=NOW)
    paul_key = tmp_path / "paul.p12"
    keys.save_pkcs12(paul_key, paul, PASSPHRASE, "paul")
    genuine = tmp_path / "genuine.json"
    assert run_cli("issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file,
                   "--out", genuine, "-q").code == 0  # fmt: skip
    ident = json.loads(genuine.read_text())["id"]
    data = load_example()
    data["prescriber"] |= {"name": "Dr Paul Autre", "rpps": "10012345673"}
    data["lines"] = data["lines"][:1]
    own = model.to_payload(model.from_input(data, now=NOW))
    squatted = model.from_payload(own | {"id": ident})
    squat = tmp_path / "squat.json"
    squat.write_bytes(signing.sign(squatted, paul).to_json_bytes())
    ledger = ledger_backend.location()
    first = run_cli("dispense", squat, "--all", "--pharmacist", PHARMACIST, "--ledger", ledger,
                    "--trust", trust, "--json")  # fmt: skip
    assert first.code == 0, first
    return {"id": ident, "genuine": genuine, "squat": squat, "ledger": ledger, "trust": trust,
            "claire": key_file, "paul": paul_key}  # fmt: skip


def test_the_genuine_prescription_verifies_and_dispenses_with_a_warning(
    run_cli: Any, scene: dict[str, Any]
) -> None:
    verified = run_cli("verify", scene["genuine"], "--trust", scene["trust"], "--ledger",
                       scene["ledger"], "--json")  # fmt: skip
    assert verified.code == 0, verified
    verdict = json.loads(verified.stdout)
    assert verdict["status"] == "valid"
    assert all(line["dispensed"] == 0 for line in verdict["dispensing"]["lines"])
    assert any("different key" in w for w in verdict["warnings"]), verdict["warnings"]
    dispensed = run_cli("dispense", scene["genuine"], "--all", "--pharmacist", PHARMACIST,
                        "--ledger", scene["ledger"], "--trust", scene["trust"], "--json")  # fmt: skip
    assert dispensed.code == 0, dispensed
    shown = json.loads(dispensed.stdout)
    assert shown["status"] == "dispensed" and len(shown["dispensed"]) >= 4
    assert any("different key" in w for w in shown["warnings"])
    human = run_cli("verify", scene["genuine"], "--trust", scene["trust"], "--ledger",
                    scene["ledger"]).stdout  # fmt: skip
    assert "une autre ordonnance, signée par une autre clé" in human


def test_each_signer_sees_their_own_state_and_the_conflict(
    run_cli: Any, scene: dict[str, Any]
) -> None:
    # Before the genuine one reaches the ledger, the ledger knows none of its prescriber's.
    early = run_cli("status", scene["id"], "--ledger", scene["ledger"], "--as-prescriber",
                    "--key", scene["claire"])  # fmt: skip
    assert early.code == 1, early
    assert run_cli("dispense", scene["genuine"], "--line", "1", "--quantity", "1",
                   "--pharmacist", PHARMACIST, "--ledger", scene["ledger"],
                   "--trust", scene["trust"]).code == 0  # fmt: skip
    for who, lines in (("claire", 4), ("paul", 1)):
        shown = run_cli("status", scene["id"], "--ledger", scene["ledger"], "--as-prescriber",
                        "--key", scene[who], "--json")  # fmt: skip
        assert shown.code == 0, (who, shown)
        state = json.loads(shown.stdout)
        assert len(state["lines"]) == lines, who
        assert any("different key" in w for w in state["warnings"]), who
    # The squatter's dispensings are not the genuine prescription's.
    claire = json.loads(run_cli("status", scene["id"], "--ledger", scene["ledger"],
                                "--as-prescriber", "--key", scene["claire"], "--json").stdout)  # fmt: skip
    assert [line["dispensed"] for line in claire["lines"]] == [1, 0, 0, 0]


def test_the_same_signer_still_cannot_record_two_prescriptions_under_one_id(
    run_cli: Any, scene: dict[str, Any], demo_credentials: keys.Credentials, tmp_path: Path
) -> None:
    genuine = signing.load_document(scene["genuine"].read_bytes()).prescription
    other = model.from_payload(model.to_payload(genuine) | {"notes": "une autre version"})
    again = tmp_path / "again.json"
    again.write_bytes(signing.sign(other, demo_credentials).to_json_bytes())
    assert run_cli("dispense", scene["genuine"], "--line", "1", "--quantity", "1",
                   "--pharmacist", PHARMACIST, "--ledger", scene["ledger"],
                   "--trust", scene["trust"]).code == 0  # fmt: skip
    refused = run_cli("dispense", again, "--line", "1", "--quantity", "1", "--pharmacist",
                      PHARMACIST, "--ledger", scene["ledger"], "--trust", scene["trust"],
                      "--json")  # fmt: skip
    assert refused.code == 1, refused
    assert json.loads(refused.stdout)["reasons"][0]["code"] == "conflicting_record"
    verified = run_cli("verify", again, "--ledger", scene["ledger"], "--trust", scene["trust"],
                       "--json")  # fmt: skip
    assert verified.code == 1
    assert [r["code"] for r in json.loads(verified.stdout)["reasons"]] == ["conflicting_record"]


def test_records_written_before_lanes_belong_to_their_signer_only() -> None:
    """A ledger whose dispensings carry no lane (written before lanes existed): they are the
    first signer's, and another signer's lane starts empty rather than inheriting them."""
    from eprescrire.dispensing.lanes import lane
    from eprescrire.ledger import History, Record

    def record(seq: int, kind: str, body: dict[str, Any]) -> Record:
        return Record(seq, kind, "ID", "2026-03-02T09:00:00Z", body, "0" * 64, "1" * 64)

    history = History(
        "ID",
        (record(1, "prescription", {"kid": "A", "jws": "x"}),
         record(2, "dispensing", {"line": 1, "quantity": 4}),
         record(3, "consent", {"share_opposition": True})),
    )  # fmt: skip
    assert lane(history, "A") is history
    assert [r.seq for r in lane(history, "B").records] == [3]  # a consent without lane: all
