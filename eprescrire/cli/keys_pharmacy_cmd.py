"""``eprescrire keys pharmacy``: a pharmacy's (or pharmacist's) key and certificate, PKCS#12."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from eprescrire import config
from eprescrire.cli import _common
from eprescrire.errors import KeyFileError, UsageError


def _start(not_before: str | None) -> dt.datetime:
    if not_before:
        return config.parse_moment(not_before).replace(microsecond=0)
    # A few minutes of slack for clocks that disagree with ours.
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)


def _authority(path: Path, file: Path | None, insecure: bool) -> Any:
    from eprescrire import keys

    if str(path).startswith("pkcs11:"):  # the authority's key on a token (PIN: EPRESCRIRE_PIN)
        from eprescrire import tokens

        return tokens.load_credentials(str(path))
    passphrase = config.read_passphrase(
        file, env="EPRESCRIRE_AUTHORITY_PASSPHRASE", prompt=f"Passphrase for {path.name}"
    ) or config.read_passphrase(None)
    return keys.load_pkcs12(path, passphrase, insecure=insecure)


def pharmacy(
    authority_key: Path = typer.Option(
        ..., "--authority", help="The authority's PKCS#12 file, or its pkcs11: URI."
    ),
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
    days: int = typer.Option(1095, "--days", min=1, max=3650, help="Validity in days."),
    not_before: str | None = typer.Option(
        None, "--not-before", help="Start of validity (ISO date), default now."
    ),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", help="Passphrase for the new key (env: EPRESCRIRE_PASSPHRASE)."
    ),
    authority_passphrase_file: Path | None = typer.Option(
        None,
        "--authority-passphrase-file",
        help="Authority passphrase (env: EPRESCRIRE_AUTHORITY_PASSPHRASE, else EPRESCRIRE_PASSPHRASE).",
    ),
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Create pharmacy credentials: a P-256 key and a certificate signed by an authority
    (pharmacy FINESS and/or pharmacist RPPS), as PKCS#12. They sign ledger checkpoints and
    consent records, and log in to a shared ledger (client certificate, CN = role name)."""
    from stdnum import luhn
    from stdnum.exceptions import ValidationError as StdnumError

    from eprescrire import ids, keys, pharmacy

    if finess is None and rpps is None:
        raise UsageError("give --finess (the pharmacy), --rpps (the pharmacist), or both")
    if finess is not None:
        try:
            finess = ids.check_finess(finess)
        except ValueError as e:
            raise UsageError("--finess must be 9 characters with a valid Luhn key") from e
    if rpps is not None:
        try:
            if len(rpps) != 11 or not rpps.isdigit():
                raise StdnumError()
            luhn.validate(rpps)
        except StdnumError as e:
            raise UsageError("--rpps must be 11 digits with a valid Luhn key") from e
    if out.suffix != ".p12":
        raise UsageError("--out must end in .p12")
    cert_path = out.with_suffix(".pem")
    for path in (out, cert_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    issuer = _authority(authority_key, authority_passphrase_file, insecure_key)
    passphrase = config.read_passphrase(passphrase_file, prompt="New passphrase", confirm=True)
    if passphrase is None:
        raise KeyFileError(
            "no passphrase for the new key: set EPRESCRIRE_PASSPHRASE or use --passphrase-file"
        )
    credentials = pharmacy.new_pharmacy(
        issuer,
        name=name,
        finess=finess,
        rpps=rpps,
        role=role,
        not_before=_start(not_before),
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
