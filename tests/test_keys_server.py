"""``keys server``: the TLS certificate of a shared ledger's PostgreSQL server (the TLS login
tests of tests/test_ledger_postgres.py serve one made by the same code, checked by the sites'
``sslmode=verify-full``)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

ROOT = Path(__file__).resolve().parent.parent
AUTHORITY = ROOT / "keys" / "demo-authority.p12"


def test_server_certificate_names_the_hosts_and_keeps_its_key_private(
    tmp_path: Path, run_cli, cli_env
) -> None:
    prefix = tmp_path / "ledger-server"
    made = run_cli(
        "keys", "server", "--authority", AUTHORITY, "--insecure-key",
        "--host", "Ledger.Example.org", "--host", "localhost", "--ip", "127.0.0.1",
        "--out", prefix,
    )  # fmt: skip
    assert made.code == 0, made.stderr
    crt, key = Path(f"{prefix}.crt"), Path(f"{prefix}.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(crt.stat().st_mode) == 0o644
    assert "PRIVATE" not in made.stdout + made.stderr
    certificate = x509.load_pem_x509_certificate(crt.read_bytes())
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert private.public_key() == certificate.public_key()
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["ledger.example.org", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    authority = x509.load_pem_x509_certificate((ROOT / "keys" / "demo-authority.pem").read_bytes())
    certificate.verify_directly_issued_by(authority)
    again = run_cli(
        "keys", "server", "--authority", AUTHORITY, "--insecure-key", "--host", "x",
        "--out", prefix,
    )  # fmt: skip
    assert again.code == 4 and "already exists" in again.stderr


def test_server_certificate_refuses_bad_names(tmp_path: Path, run_cli, cli_env) -> None:
    def make(*names: str) -> object:
        return run_cli(
            "keys", "server", "--authority", AUTHORITY, "--insecure-key", *names,
            "--out", tmp_path / "s",
        )  # fmt: skip

    for names, message in [
        ((), "at least one host"),
        (("--host", "bad host"), "is not a DNS name"),
        (("--host", "a..b"), "is not a DNS name"),
        (("--ip", "300.1.1.1"), "is not an IP address"),
    ]:
        result = make(*names)
        assert result.code == 2, (names, result)  # type: ignore[attr-defined]
        assert message in result.stderr  # type: ignore[attr-defined]
        assert not any(tmp_path.iterdir())
