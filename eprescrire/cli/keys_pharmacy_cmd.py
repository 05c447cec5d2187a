"""``eprescrire keys pharmacy``: a pharmacy's (or pharmacist's) key and certificate, PKCS#12."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common
from eprescrire.cli import _credentials as creds
from eprescrire.errors import UsageError


def pharmacy(
    authority_key: Path = creds.AUTHORITY_OPTION,
    name: str = typer.Option(
        ..., "--name", help="The pharmacy's (or pharmacist's) name, as shown to people."
    ),
    finess: str | None = typer.Option(
        None, "--finess", help="FINESS of the pharmacy (9 characters, Luhn key)."
    ),
    rpps: str | None = typer.Option(
        None, "--rpps", help="RPPS of the pharmacist (11 digits, Luhn key)."
    ),
    role: str | None = typer.Option(
        None,
        "--role",
        help="Common name of the certificate: the role name a shared ledger logs it in as "
        "(default pharmacy_FINESS, else pharmacist_RPPS).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="PKCS#12 file to create (.p12); the certificate goes beside it as .pem."
    ),
    days: int = creds.DAYS_OPTION,
    not_before: str | None = creds.NOT_BEFORE_OPTION,
    passphrase_file: Path | None = creds.NEW_PASSPHRASE_FILE_OPTION,
    authority_passphrase_file: Path | None = creds.AUTHORITY_PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Create pharmacy credentials: a P-256 key and a certificate signed by an authority
    (pharmacy FINESS and/or pharmacist RPPS), as PKCS#12. They sign ledger checkpoints and
    consent records, and log in to a shared ledger (client certificate, CN = role name)."""
    from eprescrire import ids, keys, pharmacy

    if finess is None and rpps is None:
        raise UsageError("give --finess (the pharmacy), --rpps (the pharmacist), or both")
    if finess is not None:
        try:
            finess = ids.check_finess(finess)
        except ValueError as e:
            raise UsageError("--finess must be 9 characters with a valid Luhn key") from e
    if rpps is not None:
        rpps = creds.rpps_option(rpps)
    cert_path = creds.pkcs12_outputs(out)
    issuer = creds.authority(authority_key, authority_passphrase_file, insecure_key)
    passphrase = creds.new_passphrase(passphrase_file)
    credentials = pharmacy.new_pharmacy(
        issuer,
        name=name,
        finess=finess,
        rpps=rpps,
        role=role,
        not_before=creds.start(not_before),
        days=days,
    )
    keys.save_pkcs12(out, credentials, passphrase, name)
    keys.write_exclusive(cert_path, keys.pem(credentials.certificate), 0o644)
    if not quiet:
        who = pharmacy.identity_of(credentials.certificate)
        assert who is not None
        _common.console().print(
            f"pharmacy [bold]{who.describe()}[/] role {who.role} kid {credentials.kid} serial "
            f"{credentials.certificate.serial_number:x}: {out} (private, 0600), {cert_path}"
        )


def register(keys_app: typer.Typer) -> None:
    keys_app.command("pharmacy")(pharmacy)
