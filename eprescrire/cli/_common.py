"""Options and output helpers shared by the commands."""

from __future__ import annotations

from typing import Any

import typer

JSON_OPTION = typer.Option(
    False, "--json", help="Machine output on stdout: one JSON object per input (NDJSON)."
)
QUIET_OPTION = typer.Option(
    False, "--quiet", "-q", help="Print nothing but errors (and --json output)."
)
TRUST_OPTION = typer.Option(
    None, "--trust", help="Trust store directory (env: EPRESCRIRE_TRUST).", show_default=False
)
AT_OPTION = typer.Option(None, "--at", help="Check as of this ISO 8601 date/time (default: now).")
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
    "zxing", "--engine", help="QR decoding engine for images: zxing or zbar."
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
    open_ledger,
    open_trust,
)

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
