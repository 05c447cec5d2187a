"""``eprescrire trust``: the verifier's trust store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from eprescrire import config
from eprescrire.cli import _common
from eprescrire.errors import UsageError

trust_app = typer.Typer(
    help="Manage the verifier's trust store (authorities, signers, CRLs).", no_args_is_help=True
)


def _store(trust: Path | None, create: bool = False):  # type: ignore[no-untyped-def]
    from eprescrire.trust import TrustStore

    path = config.trust_dir(trust)
    return TrustStore.create(path) if create else TrustStore.open(path)


def _print_entry(entry, action: str) -> None:  # type: ignore[no-untyped-def]
    _common.console().print(
        f"{action} {entry.kind} [bold]{entry.name}[/] ({entry.ident}) {entry.detail}".rstrip()
    )


@trust_app.command("add")
def add(
    files: list[Path] = typer.Argument(
        ..., help="Certificates (authority or prescriber) or CRLs, PEM or DER."
    ),
    trust: Path | None = _common.TRUST_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Add authorities, prescriber certificates or CRLs; creates the store if needed."""
    from cryptography import x509

    store = _store(trust, create=True)
    now = dt.datetime.now(dt.UTC)
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read {file}: {e.strerror}") from e
        if b"X509 CRL" in data:
            from eprescrire.trust import parse_crl

            entry = store.add_crl(parse_crl(data, str(file)))
        else:
            try:
                cert = (
                    x509.load_pem_x509_certificate(data)
                    if b"-----BEGIN" in data
                    else x509.load_der_x509_certificate(data)
                )
            except ValueError as e:
                raise UsageError(f"{file} is neither a certificate nor a CRL") from e
            entry = store.add_certificate(cert, now=now)
        if not quiet:
            _print_entry(entry, "added")


@trust_app.command("list")
def list_(
    trust: Path | None = _common.TRUST_OPTION,
    json_output: bool = _common.JSON_OPTION,
) -> None:
    """List what the trust store holds."""
    store = _store(trust)
    rows = store.entries()
    if json_output:
        for e in rows:
            _common.emit_json(
                {
                    "kind": e.kind,
                    "name": e.name,
                    "id": e.ident,
                    "not_after": e.not_after.isoformat() if e.not_after else None,
                    "detail": e.detail,
                }
            )
        return
    from rich.table import Table

    table = Table("kind", "name")
    # The id is what `trust remove` takes: never cut, never wrapped.
    table.add_column("id", no_wrap=True, min_width=max((len(e.ident) for e in rows), default=2))
    table.add_column("valid until", no_wrap=True)
    table.add_column("detail")
    for e in rows:
        table.add_row(
            e.kind, e.name, e.ident, f"{e.not_after:%Y-%m-%d}" if e.not_after else "", e.detail
        )
    _common.console(stderr=False, rich=True).print(table)


@trust_app.command("remove")
def remove(
    ident: str = typer.Argument(
        ...,
        help="Authority fingerprint or signer kid (see: trust list), or an unambiguous prefix of it.",
    ),
    trust: Path | None = _common.TRUST_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Remove an authority (and its CRL) or a signer."""
    entry = _store(trust).remove(ident)
    if not quiet:
        _print_entry(entry, "removed")


@trust_app.command("crl")
def crl(
    file: Path | None = typer.Argument(None, help="A CRL to install (PEM)."),
    revoke: str | None = typer.Option(
        None, "--revoke", help="Revoke this certificate (file or hex serial) with --authority."
    ),
    authority_key: Path | None = typer.Option(
        None, "--authority", help="Authority PKCS#12 (with --revoke)."
    ),
    crl_file: Path | None = typer.Option(
        None, "--crl", help="Authority CRL file to update (with --revoke)."
    ),
    trust: Path | None = _common.TRUST_OPTION,
    authority_passphrase_file: Path | None = typer.Option(
        None,
        "--authority-passphrase-file",
        help="With --revoke: read the authority's passphrase from the first line of this file "
        "(env: EPRESCRIRE_AUTHORITY_PASSPHRASE, else EPRESCRIRE_PASSPHRASE).",
    ),
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    quiet: bool = _common.QUIET_PLAIN_OPTION,
) -> None:
    """Install a CRL, or (--revoke) revoke a certificate and install the new CRL."""
    if revoke is not None:
        if authority_key is None or crl_file is None:
            raise UsageError("--revoke needs --authority and --crl")
        from eprescrire.cli.keys_cmd import revoke_serial

        revoke_serial(
            revoke,
            authority_key,
            crl_file,
            config.trust_dir(trust),
            authority_passphrase_file,
            insecure_key,
            quiet,
        )
        return
    if file is None:
        raise UsageError("give a CRL file to install, or --revoke")
    from eprescrire.trust import parse_crl

    try:
        data = parse_crl(file.read_bytes(), str(file))
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e.strerror}") from e
    entry = _store(trust).add_crl(data)
    if not quiet:
        _print_entry(entry, "installed")


def register(app: typer.Typer) -> None:
    app.add_typer(trust_app, name="trust")
