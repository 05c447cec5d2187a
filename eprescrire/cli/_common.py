"""Options and output helpers shared by the commands."""

from __future__ import annotations

from typing import Any

import typer

from eprescrire.errors import UsageError

JSON_OPTION = typer.Option(
    False, "--json", help="Machine output on stdout: one JSON object per input (NDJSON)."
)
QUIET_OPTION = typer.Option(
    False, "--quiet", "-q", help="Print nothing but errors (and --json output)."
)
#: --quiet for the commands without --json.
QUIET_PLAIN_OPTION = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")
TRUST_OPTION = typer.Option(
    None, "--trust", help="Trust store directory (env: EPRESCRIRE_TRUST).", show_default=False
)
AT_OPTION = typer.Option(None, "--at", help="Check as of this ISO 8601 date/time (default: now).")
#: ``--at`` on a command that writes to the ledger: accepted by the parser only to be refused
#: with a clear message (a write decides and records at the real time).
WRITE_AT_OPTION = typer.Option(
    None, "--at", hidden=True, help="Refused: a write decides and records at the real time."
)


def refuse_write_clock(at: str | None, command: str, instead: str = "") -> None:
    """``--at`` never moves the clock of a write. Raises UsageError when it is given."""
    if at is not None:
        raise UsageError(
            f"--at never moves the clock of a write: {command} decides and records at the "
            f"real time{instead}"
        )


PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--passphrase-file",
    help="Read the key passphrase from the first line of this file (env: EPRESCRIRE_PASSPHRASE).",
)
PIN_FILE_OPTION = typer.Option(
    None,
    "--pin-file",
    help="With --key pkcs11:…, read the token PIN from the first line of this file (env: EPRESCRIRE_PIN).",
)
INSECURE_KEY_OPTION = typer.Option(
    False, "--insecure-key", help="Accept a key file readable by others or unencrypted."
)
VERBOSE_OPTION = typer.Option(False, "--verbose", help="Show tracebacks of internal errors.")
LEDGER_OPTION = typer.Option(None, "--ledger", help="Ledger path or URL (env: EPRESCRIRE_LEDGER).")
ENGINE_OPTION = typer.Option(
    "zxing",
    "--engine",
    help="QR decoding engine for images: zxing (reads the most damaged, blurred and "
    "low-resolution scans) or zbar (a second opinion; needs libzbar0).",
)
PAGE_OPTION = typer.Option("A5", "--page", help="PDF page size: A5 or A4.")
DRUGS_OPTION = typer.Option(
    None,
    "--drugs",
    metavar="CATALOGUE",
    help="Drug catalogue to check against (env: EPRESCRIRE_DRUGS; default: drugs.sqlite3 "
    "under EPRESCRIRE_HOME when `drugs import` made one; none: no check).",
    show_default=False,
)


def jobs_option(what: str) -> Any:
    """``--jobs/-j``: how many processes to ``what`` with."""
    return typer.Option(1, "--jobs", "-j", min=1, max=64, help=f"Processes to {what} with.")


from eprescrire.cli._output import (  # noqa: E402  re-exported for the commands
    console,
    emit_json,
    escape,
    progress,
    report_exit,
)
from eprescrire.services.context import (  # noqa: E402
    load_credentials,
    moment,
    open_trust,
)


def open_ledger(location: str | None, *, create: bool) -> Any:
    """The ledger at ``location`` (``--ledger``), else EPRESCRIRE_LEDGER, else the default one;
    when ``--ledger`` was not given, one line on stderr says which ledger is used (not with
    --quiet), so that nobody records into a ledger they did not mean."""
    from eprescrire.services import context

    if location is None and not _quiet():
        console().print(escape(f"eprescrire: ledger {ledger_origin()}"))
    return context.open_ledger(location, create=create)


def ledger_origin() -> str:
    """Which ledger is used without --ledger, and why (a URL's password never shown)."""
    import os

    from eprescrire import config

    where = config.ledger_location(None)
    if "://" in where:
        from eprescrire.ledger.postgres import redact

        where = redact(where)
    if os.environ.get("EPRESCRIRE_LEDGER"):
        return f"{where} (from EPRESCRIRE_LEDGER)"
    return f"{where} (the default; choose with --ledger or EPRESCRIRE_LEDGER)"


def _quiet() -> bool:
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("quiet"))


__all__ = [
    "AT_OPTION",
    "DRUGS_OPTION",
    "ENGINE_OPTION",
    "INSECURE_KEY_OPTION",
    "JSON_OPTION",
    "LEDGER_OPTION",
    "PAGE_OPTION",
    "PASSPHRASE_FILE_OPTION",
    "PIN_FILE_OPTION",
    "QUIET_OPTION",
    "QUIET_PLAIN_OPTION",
    "TRUST_OPTION",
    "VERBOSE_OPTION",
    "console",
    "emit_json",
    "escape",
    "jobs_option",
    "load_credentials",
    "moment",
    "open_ledger",
    "open_trust",
    "progress",
    "report_exit",
]
