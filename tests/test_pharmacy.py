"""Pharmacy credentials (``keys pharmacy``) and the checkpoints only they may sign."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from conftest import KEYS, PASSPHRASE
from eprescrire import keys, pharmacy
from eprescrire.errors import VerificationError
from eprescrire.trust import TrustStore

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_keys_pharmacy_creates_a_pharmacy_certificate(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str]
) -> None:
    authority = tmp_path / "authority.p12"
    authority.write_bytes((KEYS / "demo-authority.p12").read_bytes())
    authority.chmod(0o600)
    out = tmp_path / "officine.p12"
    made = run_cli(
        "keys", "pharmacy", "--authority", authority, "--name", "Pharmacie de la Gare",
        "--finess", "750001232", "--rpps", "10009876540", "--out", out,
    )  # fmt: skip
    assert made.code == 0, made
    assert out.stat().st_mode & 0o777 == 0o600
    credentials = keys.load_pkcs12(out, PASSPHRASE)
    who = pharmacy.identity_of(credentials.certificate)
    assert who is not None
    assert (who.role, who.name, who.finess, who.rpps) == (
        "pharmacy_750001232", "Pharmacie de la Gare", "750001232", "10009876540",
    )  # fmt: skip
    usage = credentials.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usage.value  # logs in to a shared ledger
    assert keys.DOCUMENT_SIGNING_EKU not in usage.value  # never signs prescriptions
    assert keys.rpps_of(credentials.certificate) is None
    # Bad input: one line, its exit code.
    for args, code in (
        (("--finess", "750001233"), 2),
        (("--rpps", "10009876541"), 2),
        ((), 2),
        (("--finess", "750001232", "--role", "Pharmacie!"), 2),
    ):
        result = run_cli(
            "keys", "pharmacy", "--authority", authority, "--name", "X", *args,
            "--out", tmp_path / f"x{len(args)}.p12",
        )  # fmt: skip
        assert result.code == code, (args, result)
        assert "Traceback" not in result.stderr


def test_a_pharmacy_certificate_signs_no_prescription(
    tmp_path: Path, demo_authority: keys.Credentials
) -> None:
    officine = pharmacy.new_pharmacy(
        demo_authority, name="Pharmacie", finess="750001232", rpps=None,
        not_before=NOW - dt.timedelta(days=1), days=30,
    )  # fmt: skip
    store = TrustStore.open(KEYS / "demo-trust")
    with pytest.raises(VerificationError) as caught:
        store.validate(officine.certificate, [], NOW)
    assert caught.value.reason is not None and caught.value.reason.value == "untrusted_chain"
    assert store.validate(officine.certificate, [], NOW, profile="pharmacy")


def _checkpoint(run_cli: Any, ledger: Path, key: Path, out: Path) -> Any:
    return run_cli("ledger", "checkpoint", "--ledger", ledger, "--key", key, "--out", out)


@pytest.fixture()
def ledger(tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path) -> Path:
    rx = tmp_path / "rx.json"
    assert run_cli("issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file,
                   "--out", rx, "-q").code == 0  # fmt: skip
    path = tmp_path / "ledger.sqlite3"
    done = run_cli("dispense", rx, "--all", "--pharmacist", "10009876540", "--ledger", path,
                   "--trust", KEYS / "demo-trust", "-q")  # fmt: skip
    assert done.code == 0, done
    return path


def test_checkpoint_refuses_a_prescribers_key(
    tmp_path: Path, run_cli: Any, ledger: Path, key_file: Path
) -> None:
    made = _checkpoint(run_cli, ledger, key_file, tmp_path / "head.json")
    assert made.code == 2, made
    assert "pharmacy" in made.stderr
    assert not (tmp_path / "head.json").exists()


def test_verify_checkpoint_needs_a_trust_store(
    tmp_path: Path, run_cli: Any, ledger: Path, pharmacy_key_file: Path
) -> None:
    point = tmp_path / "head.json"
    assert _checkpoint(run_cli, ledger, pharmacy_key_file, point).code == 0
    refused = run_cli("ledger", "verify", "--ledger", ledger, "--checkpoint", point)
    assert refused.code == 2, refused
    assert "trust store" in refused.stderr
    checked = run_cli(
        "ledger", "verify", "--ledger", ledger, "--checkpoint", point,
        "--trust", KEYS / "demo-trust", "--json",
    )  # fmt: skip
    assert checked.code == 0, checked
    signer = json.loads(checked.stdout)["checkpoint"]["signer"]
    assert signer["finess"] == "750001232" and signer["rpps"] == "10009876540"


def _forged_checkpoint(ledger: Path, credentials: keys.Credentials, out: Path) -> None:
    from eprescrire.ledger import checkpoint as checkpoints
    from eprescrire.ledger import open_ledger

    with open_ledger(str(ledger), create=False) as book:
        data, _ = checkpoints.write(book, credentials, NOW)
    out.write_bytes(data)


def test_verify_checkpoint_refuses_other_signers(
    tmp_path: Path, run_cli: Any, ledger: Path, demo_credentials: keys.Credentials
) -> None:
    trust = KEYS / "demo-trust"
    # A prescriber's key (trusted for prescriptions) signed it: refused.
    by_prescriber = tmp_path / "prescriber.json"
    _forged_checkpoint(ledger, demo_credentials, by_prescriber)
    # A pharmacy certificate from an authority the trust store does not hold: refused.
    rogue = keys.new_authority("Rogue", not_before=NOW - dt.timedelta(days=1), days=30)
    outsider = pharmacy.new_pharmacy(
        rogue, name="Fausse pharmacie", finess="750001232", rpps=None,
        not_before=NOW - dt.timedelta(days=1), days=30,
    )  # fmt: skip
    by_outsider = tmp_path / "outsider.json"
    _forged_checkpoint(ledger, outsider, by_outsider)
    # A self-signed certificate: refused.
    self_signed = keys.new_authority("Anyone", not_before=NOW - dt.timedelta(days=1), days=30)
    by_anyone = tmp_path / "anyone.json"
    _forged_checkpoint(ledger, self_signed, by_anyone)
    for point in (by_prescriber, by_outsider, by_anyone):
        result = run_cli(
            "ledger", "verify", "--ledger", ledger, "--checkpoint", point, "--trust", trust
        )
        assert result.code == 3, (point.name, result)
        assert "signer not trusted" in result.stderr


def test_demo_pharmacy_is_marked_demo() -> None:
    credentials = keys.load_pkcs12(KEYS / "demo-pharmacy.p12", PASSPHRASE, insecure=True)
    who = pharmacy.identity_of(credentials.certificate)
    assert who is not None and "DEMO" in who.name
    assert "demo-pharmacy.p12" in (KEYS / "README.md").read_text("utf-8")
