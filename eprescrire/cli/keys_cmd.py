"""``eprescrire keys``: authorities, prescriber credentials, revocation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from eprescrire.cli import _common
from eprescrire.cli import _credentials as creds
from eprescrire.errors import KeyFileError, UsageError

keys_app = typer.Typer(
    help="Create authorities, prescriber and pharmacy credentials, a ledger server's TLS certificate; revoke them.",
    no_args_is_help=True,
)


@keys_app.command("authority")
def authority(
    name: str = typer.Option(..., "--name", help="Common name of the authority."),
    out: Path = typer.Option(
        ..., "--out", help="Output prefix: writes PREFIX.pem, PREFIX.p12, PREFIX.crl.pem."
    ),
    organization: str | None = typer.Option(None, "--organization", help="Organisation name."),
    days: int = typer.Option(3650, "--days", min=1, max=36500, help="Validity in days."),
    not_before: str | None = typer.Option(
        None, "--not-before", help="Start of validity (ISO date), default now."
    ),
    crl_days: int = typer.Option(
        30, "--crl-days", min=1, max=3650, help="Validity of the CRL in days."
    ),
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    token_key: str | None = typer.Option(
        None,
        "--key",
        help="Keep the authority's key on a PKCS#11 token: pkcs11:token=…;object=LABEL. "
        "Writes PREFIX.pem and PREFIX.crl.pem (no .p12); the certificate also goes on the token.",
    ),
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Create a certification authority: P-256 key, self-signed certificate, empty signed CRL."""
    from eprescrire import keys

    if token_key is not None:
        from eprescrire.cli import _tokens

        _tokens.authority_on_token(
            token_key,
            pin_file=pin_file,
            out=out,
            name=name,
            organization=organization,
            not_before=creds.start(not_before),
            days=days,
            crl_days=crl_days,
            quiet=quiet,
        )
        return
    passphrase = creds.new_passphrase(passphrase_file)
    paths = [out.with_name(out.name + suffix) for suffix in (".p12", ".pem", ".crl.pem")]
    for path in paths:
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    start = creds.start(not_before)
    credentials = keys.new_authority(name, organization=organization, not_before=start, days=days)
    crl = keys.new_crl(
        credentials,
        now=max(start, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)),
        days=crl_days,
    )
    keys.save_pkcs12(paths[0], credentials, passphrase, name)
    keys.write_exclusive(paths[1], keys.pem(credentials.certificate), 0o644)
    from cryptography.hazmat.primitives import serialization

    keys.write_exclusive(paths[2], crl.public_bytes(serialization.Encoding.PEM), 0o644)
    if not quiet:
        _common.console().print(
            f"authority [bold]{name}[/] (fingerprint {keys.fingerprint(credentials.certificate)[:8].hex()}): "
            f"{paths[0]} (private, 0600), {paths[1]}, {paths[2]}"
        )


@keys_app.command("prescriber")
def prescriber(
    authority_key: Path = creds.AUTHORITY_OPTION,
    name: str = typer.Option(..., "--name", help="Prescriber's name as printed (Dr …)."),
    rpps: str = typer.Option(..., "--rpps", help="RPPS number (11 digits, Luhn key)."),
    specialty: str = typer.Option(..., "--specialty", help="Specialty (Médecine générale, …)."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="PKCS#12 file to create (.p12); the certificate goes beside it as .pem. "
        "With --key pkcs11:…, the certificate file to create (.pem).",
    ),
    token_key: str | None = typer.Option(
        None,
        "--key",
        help="Keep the key on a PKCS#11 token: pkcs11:token=…;object=LABEL (RFC 7512). "
        "Uses the key pair with that label, or creates a non-extractable P-256 one.",
    ),
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    days: int = creds.DAYS_OPTION,
    not_before: str | None = creds.NOT_BEFORE_OPTION,
    trust: Path | None = typer.Option(
        None, "--trust", help="Also register the certificate in this trust store."
    ),
    passphrase_file: Path | None = creds.NEW_PASSPHRASE_FILE_OPTION,
    authority_passphrase_file: Path | None = creds.AUTHORITY_PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Create a prescriber's P-256 key and certificate, signed by an authority, as PKCS#12."""
    from eprescrire import keys

    rpps = creds.rpps_option(rpps)
    if token_key is not None:
        from eprescrire.cli import _tokens

        _tokens.prescriber_on_token(
            token_key,
            pin_file=pin_file,
            out=out,
            issuer=creds.authority(authority_key, authority_passphrase_file, insecure_key),
            name=name,
            rpps=rpps,
            specialty=specialty,
            not_before=creds.start(not_before),
            days=days,
            trust=trust,
            quiet=quiet,
        )
        return
    cert_path = creds.pkcs12_outputs(out)
    issuer = creds.authority(authority_key, authority_passphrase_file, insecure_key)
    passphrase = creds.new_passphrase(passphrase_file)
    credentials = keys.new_prescriber(
        issuer,
        name=name,
        rpps=rpps,
        specialty=specialty,
        not_before=creds.start(not_before),
        days=days,
    )
    keys.save_pkcs12(out, credentials, passphrase, name)
    keys.write_exclusive(cert_path, keys.pem(credentials.certificate), 0o644)
    if trust is not None:
        from eprescrire.trust import TrustStore

        TrustStore.open(trust).add_certificate(credentials.certificate, now=dt.datetime.now(dt.UTC))
    if not quiet:
        _common.console().print(
            f"prescriber [bold]{name}[/] RPPS {rpps} kid {credentials.kid} serial "
            f"{credentials.certificate.serial_number:x}: {out} (private, 0600), {cert_path}"
        )


@keys_app.command("revoke")
def revoke(
    certificate: str = typer.Argument(
        ..., help="Certificate file (.pem) or serial number (hex) to revoke."
    ),
    authority_key: Path = creds.AUTHORITY_OPTION,
    crl: Path = typer.Option(
        ..., "--crl", help="The authority's current CRL; replaced by the new one."
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="Also install the new CRL in this trust store."
    ),
    authority_passphrase_file: Path | None = creds.AUTHORITY_PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Revoke a prescriber certificate: sign a new CRL listing it."""
    revoke_serial(
        certificate, authority_key, crl, trust, authority_passphrase_file, insecure_key, quiet
    )


def revoke_serial(
    certificate: str,
    authority_key: Path,
    crl_path: Path,
    trust: Path | None,
    passphrase_file: Path | None,
    insecure: bool,
    quiet: bool,
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from eprescrire import keys
    from eprescrire.trust import TrustStore, _write_atomic

    target = Path(certificate)
    if target.exists():
        try:
            serial = x509.load_pem_x509_certificate(target.read_bytes()).serial_number
        except ValueError as e:
            raise UsageError(f"{target} is not a PEM certificate") from e
    else:
        try:
            serial = int(certificate.replace(":", ""), 16)
        except ValueError as e:
            raise UsageError(
                f"{certificate!r} is neither a certificate file nor a hex serial"
            ) from e
    try:
        current = x509.load_pem_x509_crl(crl_path.read_bytes())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read CRL {crl_path}") from e
    issuer = creds.authority(authority_key, passphrase_file, insecure)
    updated = keys.revoke(issuer, current, serial, now=dt.datetime.now(dt.UTC))
    _write_atomic(crl_path, updated.public_bytes(serialization.Encoding.PEM))
    if trust is not None:
        TrustStore.open(trust).add_crl(updated)
    if not quiet:
        _common.console().print(
            f"revoked serial {serial:x}; CRL {crl_path} now lists {len(list(updated))}"
        )


def register(app: typer.Typer) -> None:
    from eprescrire.cli import keys_pharmacy_cmd, keys_server_cmd

    keys_pharmacy_cmd.register(keys_app)
    keys_server_cmd.register(keys_app)
    app.add_typer(keys_app, name="keys")
