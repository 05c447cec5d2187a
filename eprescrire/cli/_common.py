"""Options and output helpers shared by the commands."""

from __future__ import annotations

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


from eprescrire.cli._output import (  # noqa: E402  re-exported for the commands
    batch_exit,
    console,
    emit_json,
    escape,
    load_credentials,
    moment,
    open_trust,
    progress,
    write_new,
)

__all__ = [
    "AT_OPTION",
    "INSECURE_KEY_OPTION",
    "JSON_OPTION",
    "LEDGER_OPTION",
    "PASSPHRASE_FILE_OPTION",
    "PIN_FILE_OPTION",
    "QUIET_OPTION",
    "TRUST_OPTION",
    "VERBOSE_OPTION",
    "batch_exit",
    "console",
    "emit_json",
    "escape",
    "load_credentials",
    "moment",
    "open_trust",
    "progress",
    "write_new",
]
