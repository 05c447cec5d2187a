"""``consent`` is recorded by an identified actor who signs it; every change is in ``status``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import KEYS, PASSPHRASE
from eprescrire import keys, pharmacy

TRUST = KEYS / "demo-trust"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


PHARMACIST = "10009876540"  # the demo pharmacy key's pharmacist
PRESCRIBER = "10003456786"  # the demo prescriber
OTHER = "10012345673"


@pytest.fixture()
def rx(
    tmp_path: Path,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    pharmacy_key_file: Path,
    ledger_backend: Any,
) -> dict[str, Any]:
    """A prescription whose patient opposes sharing (signed), dispensed once; on each backend.
    On PostgreSQL each actor logs in as their own role (the pharmacy, the prescriber, another
    prescriber), so the database's own rules apply to each."""
    import tomli_w

    from conftest import load_example

    data = load_example()
    data["share_opposition"] = True
    source = tmp_path / "rx.toml"
    source.write_text(tomli_w.dumps(data), "utf-8")
    out = tmp_path / "rx.json"
    assert run_cli("issue", source, "--key", key_file, "--out", out, "-q").code == 0
    admin = ledger_backend.location()
    ledgers = dict.fromkeys(("pharmacy", "prescriber", "other", "admin"), admin)
    if ledger_backend.backend == "postgresql":
        from tests.postgres_support import server

        pg = server()
        ledgers |= {
            "pharmacy": pg.site(admin, "pharma", "pharmacy", rpps=PHARMACIST).url,
            "prescriber": pg.site(admin, "claire", "prescriber", rpps=PRESCRIBER).url,
            "other": pg.site(admin, "paul", "prescriber", rpps=OTHER).url,
        }
    done = run_cli("dispense", out, "--line", "1", "--quantity", "1", "--pharmacist",
                   PHARMACIST, "--ledger", ledgers["pharmacy"], "--trust", TRUST, "-q")  # fmt: skip
    assert done.code == 0, done
    ident = json.loads(out.read_text())["id"]
    return {"id": ident, "ledger": ledgers["pharmacy"], "ledgers": ledgers,
            "backend": ledger_backend.backend, "key": key_file,
            "pharmacy": pharmacy_key_file}  # fmt: skip


def _consent_bodies(rx: dict[str, Any]) -> list[dict[str, Any]]:
    from eprescrire.ledger import open_ledger

    with open_ledger(rx["ledgers"]["admin"]) as ledger:
        return [r.body for r in ledger.history(rx["id"]).of_kind("consent")]


def _prescriber_view(run_cli: Any, rx: dict[str, Any]) -> dict[str, Any]:
    shown = run_cli("status", rx["id"], "--ledger", rx["ledgers"]["prescriber"],
                    "--as-prescriber", "--key", rx["key"], "--json")  # fmt: skip
    assert shown.code == 0, shown
    return dict(json.loads(shown.stdout))


def test_anonymous_consent_is_refused(run_cli: Any, rx: dict[str, Any]) -> None:
    result = run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledger"])
    assert result.code == 2, result
    assert "withheld" in _prescriber_view(run_cli, rx)  # the patient's opposition stands


def test_pharmacy_consent_is_signed_and_says_who(run_cli: Any, rx: dict[str, Any]) -> None:
    result = run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledger"],
                     "--key", rx["pharmacy"], "--trust", TRUST, "--json")  # fmt: skip
    assert result.code == 0, result
    by = json.loads(result.stdout)["by"]
    assert by["actor"] == "pharmacy" and by["pharmacy"] == "750001232"
    assert by["pharmacist"] == "10009876540" and by["kid"]
    view = _prescriber_view(run_cli, rx)
    assert "withheld" not in view
    (change,) = view["consents"]
    assert change["signed"] is True and change["share_opposition"] is False
    assert change["by"]["name"].startswith("Pharmacie DEMO")
    # The record holds the signature.
    (body,) = _consent_bodies(rx)
    assert body["jws"].count(".") == 2


def test_prescriber_consent_proves_the_prescription_key(
    tmp_path: Path, run_cli: Any, rx: dict[str, Any], demo_authority: keys.Credentials
) -> None:
    ok = run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledgers"]["prescriber"],
                 "--key", rx["key"])  # fmt: skip
    assert ok.code == 0, ok
    # Another trusted prescriber's key did not sign this prescription: refused.
    other = keys.new_prescriber(
        demo_authority, name="Dr Paul Autre", rpps="10012345673", specialty="Médecine générale",
        not_before=NOW - dt.timedelta(days=1), days=30,
    )  # fmt: skip
    other_key = tmp_path / "other.p12"
    keys.save_pkcs12(other_key, other, PASSPHRASE, "other")
    refused = run_cli("consent", rx["id"], "--oppose", "--ledger", rx["ledgers"]["other"],
                      "--key", other_key)  # fmt: skip
    # SQLite: the key does not prove the prescription's (1); PostgreSQL: the database does not
    # even show another prescriber's prescription to this one's role (4).
    assert refused.code == (1 if rx["backend"] == "sqlite" else 4), refused
    assert [c["share_opposition"] for c in _prescriber_view(run_cli, rx)["consents"]] == [False]


def test_untrusted_pharmacy_key_is_refused(
    tmp_path: Path, run_cli: Any, rx: dict[str, Any]
) -> None:
    rogue = keys.new_authority("Rogue", not_before=NOW - dt.timedelta(days=1), days=30)
    fake = pharmacy.new_pharmacy(
        rogue, name="Fausse", finess="750001232", rpps=None,
        not_before=NOW - dt.timedelta(days=1), days=30,
    )  # fmt: skip
    fake_key = tmp_path / "fake.p12"
    keys.save_pkcs12(fake_key, fake, PASSPHRASE, "fake")
    result = run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledger"],
                     "--key", fake_key, "--trust", TRUST)  # fmt: skip
    assert result.code == 4, result
    assert "not trusted" in result.stderr
    assert "withheld" in _prescriber_view(run_cli, rx)


def test_every_change_of_choice_is_in_the_history(run_cli: Any, rx: dict[str, Any]) -> None:
    steps = (("--allow", rx["pharmacy"]), ("--oppose", rx["key"]), ("--allow", rx["pharmacy"]))
    for flag, key in steps:
        extra = ("--trust", TRUST) if key == rx["pharmacy"] else ()
        who = "pharmacy" if key == rx["pharmacy"] else "prescriber"
        done = run_cli("consent", rx["id"], flag, "--ledger", rx["ledgers"][who], "--key", key,
                       *extra)  # fmt: skip
        assert done.code == 0, done
    shown = run_cli("status", rx["id"], "--ledger", rx["ledger"], "--json")
    changes = json.loads(shown.stdout)["consents"]
    assert [(c["share_opposition"], c["by"]["actor"]) for c in changes] == [
        (False, "pharmacy"), (True, "prescriber"), (False, "pharmacy"),
    ]  # fmt: skip
    assert all(c["signed"] and c["at"] for c in changes)
    human = run_cli("status", rx["id"], "--ledger", rx["ledger"]).stdout
    lines = [line for line in human.splitlines() if "consentement" in line]
    assert len(lines) == 3, human
    assert "FINESS 750001232" in lines[0] and "le prescripteur (RPPS 10003456786)" in lines[1]


def test_a_consent_record_edited_in_the_file_shows_unsigned(
    run_cli: Any, rx: dict[str, Any]
) -> None:
    assert run_cli("consent", rx["id"], "--allow", "--ledger", rx["ledger"],
                   "--key", rx["pharmacy"], "--trust", TRUST).code == 0  # fmt: skip
    from eprescrire.consents import check

    (body,) = _consent_bodies(rx)
    edited = body | {"pharmacist": "10003456786"}
    assert check(rx["id"], body) is None
    assert check(rx["id"], edited) == "the record differs from what was signed"
    assert check(rx["id"], {"share_opposition": False}) is not None
