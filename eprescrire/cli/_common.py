"""Options and output helpers shared by the commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire import config, rules

JSON_OPTION = typer.Option(
    False, "--json", help="Machine output on stdout: one JSON object per input (NDJSON)."
)
QUIET_OPTION = typer.Option(
    False, "--quiet", "-q", help="Print nothing but errors (and --json output)."
)
TRUST_OPTION = typer.Option(
    None, "--trust", help="Trust store directory [env: EPRESCRIRE_TRUST].", show_default=False
)
AT_OPTION = typer.Option(None, "--at", help="Check as of this ISO 8601 date/time (default: now).")
PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--passphrase-file",
    help="Read the key passphrase from the first line of this file [env: EPRESCRIRE_PASSPHRASE].",
)
INSECURE_KEY_OPTION = typer.Option(
    False, "--insecure-key", help="Accept a key file readable by others or unencrypted."
)
VERBOSE_OPTION = typer.Option(False, "--verbose", help="Show tracebacks of internal errors.")
LEDGER_OPTION = typer.Option(None, "--ledger", help="Ledger path or URL [env: EPRESCRIRE_LEDGER].")


def moment(at: str | None) -> dt.datetime:
    return config.parse_moment(at) if at else rules.now()


def console(stderr: bool = True) -> Any:
    """A rich console; colours follow NO_COLOR and TTY detection."""
    from rich.console import Console

    return Console(
        stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True
    )


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def load_credentials(key: Path, passphrase_file: Path | None, insecure: bool) -> Any:
    from eprescrire import keys

    passphrase = config.read_passphrase(passphrase_file, prompt=f"Passphrase for {key.name}")
    return keys.load_pkcs12(key, passphrase, insecure=insecure)


def open_trust(trust: Path | None) -> Any:
    from eprescrire.trust import TrustStore

    return TrustStore.open(config.trust_dir(trust))
