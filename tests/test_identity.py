"""Who signed: the certificate's identity shown and checked; expired certificates refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import KEYS, PASSPHRASE, load_example
from eprescrire import identity, keys, model, signing
from eprescrire.errors import ValidationError
from eprescrire.trust import TrustStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _prescriber(
    authority: keys.Credentials, start: dt.datetime, days: int, name: str = "Dr Claire Martin"
) -> keys.Credentials:
    return keys.new_prescriber(
        authority,
        name=name,
        rpps="10003456786",
        specialty="Médecine générale",
        not_before=start,
        days=days,
    )


def _save(tmp_path: Path, credentials: keys.Credentials, name: str = "k.p12") -> Path:
    path = tmp_path / name
    keys.save_pkcs12(path, credentials, PASSPHRASE, "test")
    return path


def _input(tmp_path: Path, issued: dt.datetime | None = None, name: str | None = None) -> Path:
    import tomli_w

    data = load_example()
    if issued is not None:
        data["issued"] = issued.isoformat()
    if name is not None:
        data["prescriber"]["name"] = name
    path = tmp_path / "rx.toml"
    path.write_text(tomli_w.dumps(data), "utf-8")
    return path


# --------------------------------------------------------------------------------------------
# An expired (or not yet valid) certificate signs nothing, whatever the stated date


def test_issue_refuses_an_expired_certificate_even_back_dated(
    tmp_path: Path, demo_authority: keys.Credentials, run_cli, cli_env
) -> None:
    ended = _prescriber(demo_authority, NOW - dt.timedelta(days=400), 300)
    key = _save(tmp_path, ended)
    back_dated = ended.certificate.not_valid_after_utc - dt.timedelta(days=10)
    result = run_cli(
        "issue",
        _input(tmp_path, back_dated),
        "--key",
        key,
        "--out",
        tmp_path / "rx.json",
        "--json",
    )
    assert result.code == 3, result
    (shown,) = result.json_lines()
    assert shown["status"] == "invalid"
    assert any("expired" in r["message"] for r in shown["reasons"])
    assert not (tmp_path / "rx.json").exists()


def test_issue_refuses_a_certificate_not_yet_valid(
    tmp_path: Path, demo_authority: keys.Credentials, run_cli, cli_env
) -> None:
    later = _prescriber(demo_authority, NOW + dt.timedelta(days=30), 300)
    key = _save(tmp_path, later)
    stated = NOW + dt.timedelta(days=31)
    result = run_cli(
        "issue",
        _input(tmp_path, stated),
        "--key",
        key,
        "--out",
        tmp_path / "rx.json",
        "--at",
        (NOW + dt.timedelta(days=32)).isoformat(),
    )
    assert result.code == 3, result
    assert "not valid before" in result.stderr + result.stdout


def test_sign_checks_the_real_clock(demo_authority: keys.Credentials) -> None:
    ended = _prescriber(demo_authority, NOW - dt.timedelta(days=400), 300)
    issued = ended.certificate.not_valid_after_utc - dt.timedelta(days=1)
    prescription = model.from_input(
        load_example() | {"issued": issued.isoformat()}, now=issued + dt.timedelta(hours=1)
    )
    with pytest.raises(ValidationError, match="expired"):
        signing.sign(prescription, ended)
    # Only at a real time inside the validity does the same key sign.
    assert signing.sign(prescription, ended, now=issued).token


def test_verify_warns_when_the_certificate_expired_since_the_stated_signing_time(
    tmp_path: Path, demo_authority: keys.Credentials, run_cli, cli_env
) -> None:
    ended = _prescriber(demo_authority, NOW - dt.timedelta(days=60), 50)
    issued = ended.certificate.not_valid_after_utc - dt.timedelta(days=2)
    prescription = model.from_input(
        load_example() | {"issued": issued.isoformat()}, now=issued + dt.timedelta(hours=1)
    )
    document = signing.sign(prescription, ended, now=issued)
    trust = tmp_path / "trust"
    import shutil

    shutil.copytree(KEYS / "demo-trust", trust)
    TrustStore.open(trust).add_certificate(ended.certificate, now=issued)
    rx = tmp_path / "rx.json"
    rx.write_bytes(document.to_json_bytes())
    result = run_cli("verify", rx, "--trust", trust, "--json")
    assert result.code == 0, result
    (verdict,) = result.json_lines()
    assert any("expired" in w and "stated by the signer" in w for w in verdict["warnings"]), (
        verdict["warnings"]
    )
    human = run_cli("verify", rx, "--trust", trust)
    assert "expiré" in human.stdout and "déclarée par le signataire" in human.stdout


# --------------------------------------------------------------------------------------------
# The name shown is the certificate's


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Dr Claire Martin", "Dr Claire Martin", True),
        ("Dr Claire Martin", "claire martin", True),
        ("Dr Claire Martin", "Docteur MARTIN Claire", True),
        ("Dr Hélène Lefèvre-Durand", "Dr Helene LEFEVRE DURAND", True),
        ("Dr Claire Martin", "Pr Jean Dupont", False),
        ("Dr Claire Martin", "Dr Claire Martine", False),
        ("Dr Claire Martin", "Dr Claire", False),
        ("Dr", "Dr", False),
    ],
)
def test_names_compare_without_case_accents_titles_or_order(a: str, b: str, same: bool) -> None:
    assert identity.same_name(a, b) is same


def test_issue_refuses_a_name_that_is_not_the_certificates(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    source = _input(tmp_path, name="Pr Jean Dupont")
    result = run_cli("issue", source, "--key", key_file, "--out", tmp_path / "rx.json", "--json")
    assert result.code == 3, result
    (shown,) = result.json_lines()
    assert [r["field"] for r in shown["reasons"]] == ["prescriber.name"]
    assert "Dr Claire Martin" in shown["reasons"][0]["message"]
    # Told so explicitly, it signs; the verdict then warns.
    result = run_cli(
        "issue",
        source,
        "--key",
        key_file,
        "--out",
        tmp_path / "rx.json",
        "--allow-name-mismatch",
    )
    assert result.code == 0, result
    verdict = run_cli("verify", tmp_path / "rx.json", "--trust", KEYS / "demo-trust", "--json")
    assert verdict.code == 0
    (shown,) = verdict.json_lines()
    assert shown["signer"]["name"] == "Dr Claire Martin"
    assert shown["signer"]["rpps"] == "10003456786"
    assert any("Pr Jean Dupont" in w and "certificate" in w for w in shown["warnings"])


def test_issue_accepts_the_certificates_name_spelt_otherwise(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    source = _input(tmp_path, name="MARTIN Claire")
    result = run_cli("issue", source, "--key", key_file, "--out", tmp_path / "rx.json")
    assert result.code == 0, result


def test_human_verdict_shows_the_certificates_identity(
    tmp_path: Path, demo_credentials: keys.Credentials, run_cli, cli_env
) -> None:
    data = load_example()
    data["prescriber"]["name"] = "Pr Jean Dupont"
    data["prescriber"]["specialty"] = "Oncologie"
    prescription = model.from_input(data, now=NOW)
    document = signing.sign(prescription, demo_credentials, allow_name_mismatch=True)
    rx = tmp_path / "rx.json"
    rx.write_bytes(document.to_json_bytes())
    result = run_cli("verify", rx, "--trust", KEYS / "demo-trust")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    (signer_line,) = [line for line in lines if "Prescripteur" in line]
    assert "Dr Claire Martin" in signer_line and "10003456786" in signer_line
    assert "Dupont" not in signer_line and "Oncologie" not in signer_line
    assert any("n'est pas celui du certificat" in line for line in lines), lines
    assert (
        json.loads(run_cli("verify", rx, "--trust", KEYS / "demo-trust", "--json").stdout)[
            "signer"
        ]["name"]
        == "Dr Claire Martin"
    )
