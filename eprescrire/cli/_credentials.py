"""What the commands that make credentials share (``keys prescriber``, ``keys pharmacy``,
``keys revoke``): the options, the authority's key, the new key's passphrase, the outputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from eprescrire import config
from eprescrire.errors import KeyFileError, UsageError

AUTHORITY_OPTION = typer.Option(
    ..., "--authority", help="The authority's PKCS#12 file, or its pkcs11: URI."
)
AUTHORITY_PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--authority-passphrase-file",
    help="Authority passphrase (env: EPRESCRIRE_AUTHORITY_PASSPHRASE, else EPRESCRIRE_PASSPHRASE).",
)
NEW_PASSPHRASE_FILE_OPTION = typer.Option(
    None, "--passphrase-file", help="Passphrase for the new key (env: EPRESCRIRE_PASSPHRASE)."
)
DAYS_OPTION = typer.Option(1095, "--days", min=1, max=3650, help="Validity in days.")
NOT_BEFORE_OPTION = typer.Option(
    None, "--not-before", help="Start of validity (ISO date), default now."
)


def start(not_before: str | None) -> dt.datetime:
    """When a new certificate's validity starts: ``--not-before``, else now."""
    if not_before:
        return config.parse_moment(not_before).replace(microsecond=0)
    # A few minutes of slack for clocks that disagree with ours.
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)


def new_passphrase(file: Path | None) -> bytes:
    """The passphrase of a new PKCS#12 file: the file, EPRESCRIRE_PASSPHRASE or a prompt."""
    passphrase = config.read_passphrase(file, prompt="New passphrase", confirm=True)
    if passphrase is None:
        raise KeyFileError(
            "no passphrase for the new key: set EPRESCRIRE_PASSPHRASE or use --passphrase-file"
        )
    return passphrase


def authority(path: Path, file: Path | None, insecure: bool) -> Any:
    """The authority's credentials, from its PKCS#12 file or its token (``pkcs11:`` URI, PIN
    from EPRESCRIRE_PIN)."""
    from eprescrire import keys

    if str(path).startswith("pkcs11:"):
        from eprescrire import tokens

        return tokens.load_credentials(str(path))
    passphrase = config.read_passphrase(
        file, env="EPRESCRIRE_AUTHORITY_PASSPHRASE", prompt=f"Passphrase for {path.name}"
    ) or config.read_passphrase(None)
    return keys.load_pkcs12(path, passphrase, insecure=insecure)


def pkcs12_outputs(out: Path) -> Path:
    """Check that ``out`` (a .p12) and the certificate beside it (.pem) can be created; the
    certificate's path."""
    if out.suffix != ".p12":
        raise UsageError("--out must end in .p12")
    certificate = out.with_suffix(".pem")
    for path in (out, certificate):
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    return certificate


def rpps_option(rpps: str) -> str:
    """``--rpps``: 11 digits with a valid Luhn key."""
    from eprescrire import ids

    try:
        return ids.check_rpps(rpps)
    except ValueError as e:
        raise UsageError("--rpps must be 11 digits with a valid Luhn key") from e
