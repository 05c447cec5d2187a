"""The command line: credentials, trust store, issue and verify, exit codes and messages."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, KEYS

PRESCRIBER = [
    "--name",
    "Dr Claire Martin",
    "--rpps",
    "10003456786",
    "--specialty",
    "Médecine générale",
]


@pytest.fixture()
def pki(tmp_path: Path, run_cli, cli_env) -> Path:
    """A fresh authority, trust store and prescriber made through the CLI."""
    assert run_cli("keys", "authority", "--name", "Test CA", "--out", tmp_path / "ca").code == 0
    assert (
        run_cli(
            "trust",
            "add",
            tmp_path / "ca.pem",
            tmp_path / "ca.crl.pem",
            "--trust",
            tmp_path / "trust",
        ).code
        == 0
    )
    result = run_cli(
        "keys",
        "prescriber",
        "--authority",
        tmp_path / "ca.p12",
        *PRESCRIBER,
        "--out",
        tmp_path / "dr.p12",
        "--trust",
        tmp_path / "trust",
    )
    assert result.code == 0, result
    return tmp_path


def test_credentials_are_encrypted_private_and_never_overwritten(pki: Path, run_cli) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    for name in ("ca.p12", "dr.p12"):
        mode = stat.S_IMODE((pki / name).stat().st_mode)
        assert mode == 0o600
        data = (pki / name).read_bytes()
        with pytest.raises(ValueError):
            pkcs12.load_key_and_certificates(data, None)
        key, cert, _ = pkcs12.load_key_and_certificates(data, b"demo-only")
        assert key is not None and cert is not None
    assert _pbkdf2_iterations(pki / "dr.p12") >= 600_000
    before = (pki / "dr.p12").read_bytes()
    again = run_cli(
        "keys", "prescriber", "--authority", pki / "ca.p12", *PRESCRIBER, "--out", pki / "dr.p12"
    )
    assert again.code == 4 and "already exists" in again.stderr
    assert (pki / "dr.p12").read_bytes() == before
    assert "demo-only" not in again.stderr + again.stdout


def _pbkdf2_iterations(path: Path) -> int:
    """Read the PBKDF2 iteration counts out of the PKCS#12 DER with openssl, if present."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    out = subprocess.run(
        [openssl, "pkcs12", "-info", "-in", str(path), "-noout", "-passin", "pass:demo-only"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    import re

    # Both the certificates and the shrouded key bag are encrypted with PBES2.
    counts = [
        int(n) for n in re.findall(r"PBKDF2, AES-256-CBC, Iteration (\d+), PRF hmacWithSHA256", out)
    ]
    assert len(counts) == 2, out
    return min(counts)


def test_authority_certificate_and_crl_are_proper(pki: Path) -> None:
    from cryptography import x509

    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical and basic.value.ca
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    crl = x509.load_pem_x509_crl((pki / "ca.crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key()) and len(list(crl)) == 0
    dr = x509.load_pem_x509_certificate((pki / "dr.pem").read_bytes())
    assert dr.issuer == ca.subject
    assert not dr.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _reference_for(pki: Path, run_cli, name: str = "rx.json"):
    return run_cli(
        "issue", EXAMPLES / "reference.toml", "--key", pki / "dr.p12", "--out", pki / name
    )


def test_issue_verify_revoke(pki: Path, run_cli) -> None:
    issued = _reference_for(pki, run_cli)
    assert issued.code == 0, issued
    verified = run_cli("verify", pki / "rx.json", "--trust", pki / "trust", "--json")
    assert verified.code == 0, verified
    assert verified.json_lines()[0]["status"] == "valid"
    revoked = run_cli(
        "keys",
        "revoke",
        pki / "dr.pem",
        "--authority",
        pki / "ca.p12",
        "--crl",
        pki / "ca.crl.pem",
        "--trust",
        pki / "trust",
    )
    assert revoked.code == 0, revoked
    after = run_cli("verify", pki / "rx.json", "--trust", pki / "trust", "--json")
    assert after.code == 1
    assert [r["code"] for r in after.json_lines()[0]["reasons"]] == ["certificate_revoked"]


def test_trust_list_and_remove(pki: Path, run_cli) -> None:
    listed = run_cli("trust", "list", "--trust", pki / "trust", "--json").json_lines()
    assert sorted(e["kind"] for e in listed) == ["authority", "crl", "signer"]
    signer = next(e for e in listed if e["kind"] == "signer")
    assert run_cli("trust", "remove", "--trust", pki / "trust", "--", signer["id"]).code == 0
    assert run_cli("trust", "remove", "--trust", pki / "trust", "--", signer["id"]).code == 2
    authority = next(e for e in listed if e["kind"] == "authority")
    assert run_cli("trust", "remove", "--trust", pki / "trust", "--", authority["id"]).code == 0
    assert run_cli("trust", "list", "--trust", pki / "trust", "--json").stdout == ""


def test_trust_crl_revoke_spelling(pki: Path, run_cli) -> None:
    _reference_for(pki, run_cli)
    result = run_cli(
        "trust",
        "crl",
        "--revoke",
        pki / "dr.pem",
        "--authority",
        pki / "ca.p12",
        "--crl",
        pki / "ca.crl.pem",
        "--trust",
        pki / "trust",
    )
    assert result.code == 0, result
    assert run_cli("verify", pki / "rx.json", "--trust", pki / "trust").code == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong-passphrase", "wrong passphrase"),
        ("missing", "not found"),
        ("garbage", "wrong passphrase or not a PKCS#12"),
        ("world-readable", "chmod 600"),
        ("no-passphrase", "no passphrase"),
        ("directory", "not a regular file"),
    ],
)
def test_key_problems_exit_4_with_one_line(
    setup: str, message: str, tmp_path: Path, key_file: Path, run_cli, cli_env, monkeypatch
) -> None:
    key = key_file
    if setup == "wrong-passphrase":
        monkeypatch.setenv("EPRESCRIRE_PASSPHRASE", "not-the-one")
    elif setup == "missing":
        key = tmp_path / "absent.p12"
    elif setup == "garbage":
        key.write_bytes(os.urandom(500))
    elif setup == "world-readable":
        key.chmod(0o644)
    elif setup == "no-passphrase":
        monkeypatch.delenv("EPRESCRIRE_PASSPHRASE")
    elif setup == "directory":
        key = tmp_path
    result = run_cli(
        "issue", EXAMPLES / "reference.toml", "--key", key, "--out", tmp_path / "rx.json"
    )
    assert result.code == 4, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rx.json").exists()


def test_insecure_key_flag_accepts_a_readable_key(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    key_file.chmod(0o644)
    result = run_cli(
        "issue",
        EXAMPLES / "reference.toml",
        "--key",
        key_file,
        "--insecure-key",
        "--out",
        tmp_path / "rx.json",
    )
    assert result.code == 0, result


def test_passphrase_file(tmp_path: Path, key_file: Path, run_cli, cli_env, monkeypatch) -> None:
    monkeypatch.delenv("EPRESCRIRE_PASSPHRASE")
    (tmp_path / "pass").write_text("demo-only\n")
    result = run_cli(
        "issue",
        EXAMPLES / "reference.toml",
        "--key",
        key_file,
        "--passphrase-file",
        tmp_path / "pass",
        "--out",
        tmp_path / "rx.json",
    )
    assert result.code == 0, result


def test_invalid_input_exits_3_listing_every_bad_field(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    text = (EXAMPLES / "reference.toml").read_text("utf-8")
    text = text.replace('rpps = "10003456786"', 'rpps = "10003456780"')
    text = text.replace('ins = "256037511234510"', 'ins = "256037511234511"')
    text = text.replace("renewals = 2\nald = true", "renewals = 14\nald = true", 1)
    text = text.replace('ns_reason = "MTE"', 'ns_reason = "LOL"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text, "utf-8")
    result = run_cli("issue", bad, "--key", key_file, "--out", tmp_path / "rx.json", "--json")
    assert result.code == 3, result
    (summary,) = result.json_lines()
    fields = {e["field"] for e in summary["errors"]}
    assert fields == {"prescriber.rpps", "patient.ins", "lines[1].renewals", "lines[2].ns_reason"}
    for field in fields:
        assert field in result.stderr
    assert not (tmp_path / "rx.json").exists()


def test_issue_many_inputs_with_out_dir_and_stdin(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    import tomllib

    ndjson = json.dumps(
        tomllib.loads((EXAMPLES / "antibiotic.toml").read_text("utf-8")), default=str
    )
    out = tmp_path / "out"
    result = run_cli(
        "issue",
        EXAMPLES / "reference.toml",
        EXAMPLES / "narcotic.toml",
        "-",
        tmp_path / "missing.toml",
        "--key",
        key_file,
        "--out-dir",
        out,
        "--json",
        stdin=(ndjson + "\n{broken\n").encode(),
    )
    summaries = result.json_lines()
    assert [s["status"] for s in summaries] == ["issued", "issued", "issued", "invalid", "invalid"]
    assert result.code == 3
    for summary in summaries[:3]:
        assert Path(summary["out"]) == out / f"{summary['id']}.json"
    verified = run_cli("verify", *sorted(out.iterdir()), "--trust", KEYS / "demo-trust", "--json")
    assert verified.code == 0 and len(verified.json_lines()) == 3


def test_issue_never_overwrites(tmp_path: Path, key_file: Path, run_cli, cli_env) -> None:
    target = tmp_path / "rx.json"
    target.write_text("keep me")
    result = run_cli("issue", EXAMPLES / "reference.toml", "--key", key_file, "--out", target)
    assert result.code == 3 and "already exists" in result.stderr
    assert target.read_text() == "keep me"


def test_verify_mixed_inputs_exit_code_follows_the_worst(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    run_cli("issue", EXAMPLES / "reference.toml", "--key", key_file, "--out", tmp_path / "rx.json")
    good = tmp_path / "rx.json"
    assert run_cli("verify", good, tmp_path / "nope.json", "--trust", KEYS / "demo-trust").code == 3
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(good.read_bytes().replace(b'"quantity": 1', b'"quantity": 7', 1))
    result = run_cli(
        "verify", good, tmp_path / "nope.json", tampered, "--trust", KEYS / "demo-trust", "--json"
    )
    assert result.code == 1
    assert [v["status"] for v in result.json_lines()] == ["valid", "unreadable", "rejected"]


def test_verify_as_of_another_time(tmp_path: Path, key_file: Path, run_cli, cli_env) -> None:
    run_cli(
        "issue",
        EXAMPLES / "reference.toml",
        "--key",
        key_file,
        "--out",
        tmp_path / "rx.json",
        "--at",
        "2026-01-10",
    )
    trust = KEYS / "demo-trust"
    assert run_cli("verify", tmp_path / "rx.json", "--trust", trust, "--at", "2026-04-10").code == 0
    late = run_cli("verify", tmp_path / "rx.json", "--trust", trust, "--at", "2026-04-11", "--json")
    assert late.code == 1 and late.json_lines()[0]["reasons"][0]["code"] == "expired"
    early = run_cli(
        "verify", tmp_path / "rx.json", "--trust", trust, "--at", "2026-01-09", "--json"
    )
    assert early.json_lines()[0]["reasons"][0]["code"] == "not_yet_valid"
    assert run_cli("verify", tmp_path / "rx.json", "--trust", trust, "--at", "soon").code == 2


def test_missing_trust_store_is_an_environment_error(tmp_path: Path, run_cli, cli_env) -> None:
    result = run_cli("verify", tmp_path / "x.json", "--trust", tmp_path / "none")
    assert result.code == 4 and "trust store not found" in result.stderr


def test_usage_errors_exit_2(run_cli, cli_env) -> None:
    assert run_cli("issue").code == 2
    assert run_cli("frobnicate").code == 2
    assert run_cli("verify", "x", "--engine", "opencv").code == 2


def test_every_command_has_help(run_cli) -> None:
    for command in (
        ["keys", "authority"],
        ["keys", "prescriber"],
        ["keys", "revoke"],
        ["trust", "add"],
        ["trust", "list"],
        ["trust", "remove"],
        ["trust", "crl"],
        ["issue"],
        ["verify"],
    ):
        result = run_cli(*command, "--help")
        assert result.code == 0 and len(result.stdout) > 200, command


def test_console_script_end_to_end(tmp_path: Path, key_file: Path) -> None:
    """The installed entry point, as a user runs it: exit codes, JSON on stdout, no traceback."""
    script = Path(sys.executable).parent / "eprescrire"
    env = {
        **os.environ,
        "EPRESCRIRE_PASSPHRASE": "demo-only",
        "EPRESCRIRE_HOME": str(tmp_path / "home"),
    }
    issued = subprocess.run(
        [
            str(script),
            "issue",
            str(EXAMPLES / "reference.toml"),
            "--key",
            str(key_file),
            "--out",
            str(tmp_path / "rx.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    verified = subprocess.run(
        [
            str(script),
            "verify",
            str(tmp_path / "rx.json"),
            "--trust",
            str(KEYS / "demo-trust"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert verified.returncode == 0 and json.loads(verified.stdout)["status"] == "valid"
    (tmp_path / "junk.json").write_text('{"format": "eprescrire/1", "jws": 5}')
    junk = subprocess.run(
        [str(script), "verify", str(tmp_path / "junk.json"), "--trust", str(KEYS / "demo-trust")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert junk.returncode == 1 and "Traceback" not in junk.stderr + junk.stdout
