"""``eprescrire keys server``: the TLS certificate of a shared ledger's PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common
from eprescrire.cli import _credentials as creds
from eprescrire.errors import KeyFileError


def server(
    authority_key: Path = creds.AUTHORITY_OPTION,
    hosts: list[str] = typer.Option(
        [], "--host", help="A DNS name the sites connect to (repeatable); the first is the CN."
    ),
    addresses: list[str] = typer.Option(
        [], "--ip", help="An IP address the sites connect to (repeatable)."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output prefix: writes PREFIX.crt and PREFIX.key (private, unencrypted, 0600), "
        "for PostgreSQL's ssl_cert_file and ssl_key_file.",
    ),
    days: int = typer.Option(825, "--days", min=1, max=3650, help="Validity in days."),
    not_before: str | None = creds.NOT_BEFORE_OPTION,
    authority_passphrase_file: Path | None = creds.AUTHORITY_PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Create the TLS certificate of a shared ledger's PostgreSQL server, signed by an
    authority: a P-256 key and a serverAuth certificate naming the hosts and addresses the
    sites connect to, which `sslmode=verify-full` checks against `sslrootcert` (the
    authority's certificate). The key is written unencrypted, as PostgreSQL reads it at start."""
    from cryptography.hazmat.primitives import serialization

    from eprescrire import keys

    paths = [out.with_name(out.name + suffix) for suffix in (".crt", ".key")]
    for path in paths:
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    issuer = creds.authority(authority_key, authority_passphrase_file, insecure_key)
    credentials = keys.new_server(
        issuer, hosts=hosts, addresses=addresses, not_before=creds.start(not_before), days=days
    )
    key = credentials.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keys.write_exclusive(paths[1], key, 0o600)
    keys.write_exclusive(paths[0], keys.pem(credentials.certificate), 0o644)
    if not quiet:
        _common.console().print(
            f"server certificate for {', '.join([*hosts, *addresses])} serial "
            f"{credentials.certificate.serial_number:x}: {paths[0]}, {paths[1]} (private, 0600)"
        )


def register(keys_app: typer.Typer) -> None:
    keys_app.command("server")(server)
