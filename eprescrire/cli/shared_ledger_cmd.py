"""``ledger init`` and ``ledger add-site``: the shared ledger's administration (PostgreSQL);
parse, call :mod:`eprescrire.services.shared_ledger`, print."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common
from eprescrire.cli.ledger_cmd import ledger_app


def register(app: typer.Typer) -> None:
    """The commands join the ``ledger`` group (registered by :mod:`ledger_cmd`)."""


@ledger_app.command("init")
def ledger_init(
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Create or upgrade a shared ledger's schema, group roles and grants (as its administrator)."""
    from eprescrire.services import shared_ledger

    result = shared_ledger.init(ledger)
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        before, after = result.schema_before, result.schema
        what = "already at" if before == after else f"upgraded from {before} to"
        _common.console(stderr=json_output).print(
            f"Shared ledger {result.id}: schema {what} version {after}"
        )


@ledger_app.command("add-site")
def ledger_add_site(
    certificate: Path = typer.Argument(
        ..., help="The site's (or person's) certificate, PEM or DER; its common name is the role."
    ),
    kind: str = typer.Option(..., "--kind", help="pharmacy, prescriber or auditor."),
    finess: str | None = typer.Option(None, "--finess", help="The pharmacy's FINESS number."),
    rpps: str | None = typer.Option(
        None,
        "--rpps",
        help="The person's RPPS (a pharmacist's; a prescriber's is read from the certificate).",
    ),
    role: str | None = typer.Option(
        None, "--role", help="Role name when not the certificate's common name (SCRAM login only)."
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="A file holding the role's password (SCRAM login)."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Add a site to a shared ledger: its login role (client-certificate authentication) in the
    group of its kind, and its identity, which the database checks on every record it writes."""
    from eprescrire.services import shared_ledger

    request = shared_ledger.SiteRequest(certificate, kind, finess, rpps, role, password_file)
    result = shared_ledger.add_site(ledger, request)
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        _common.console(stderr=json_output).print(f"Site {result.role} added ({result.kind})")
