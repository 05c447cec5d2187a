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
    None, "--trust", help="Trust store directory (env: EPRESCRIRE_TRUST).", show_default=False
)
AT_OPTION = typer.Option(None, "--at", help="Check as of this ISO 8601 date/time (default: now).")
PASSPHRASE_FILE_OPTION = typer.Option(
    None,
    "--passphrase-file",
    help="Read the key passphrase from the first line of this file (env: EPRESCRIRE_PASSPHRASE).",
)
INSECURE_KEY_OPTION = typer.Option(
    False, "--insecure-key", help="Accept a key file readable by others or unencrypted."
)
VERBOSE_OPTION = typer.Option(False, "--verbose", help="Show tracebacks of internal errors.")
LEDGER_OPTION = typer.Option(None, "--ledger", help="Ledger path or URL (env: EPRESCRIRE_LEDGER).")


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


def batch_exit(codes: list[int]) -> int:
    """SPEC §3 over a batch: 1 if any was rejected, else 3 if any unreadable, else the worst."""
    if not codes:
        return 0
    if 1 in codes:
        return 1
    if 3 in codes:
        return 3
    return max(codes)


class _Step:
    """What a command calls per item; a rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, progress: Any, task: Any, out: Any) -> None:
        self._progress = progress
        self._task = task
        self._out = out

    @property
    def active(self) -> bool:
        return self._progress is not None

    def print(self, message: str) -> None:
        self.log(message)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def log(self, message: str) -> None:
        (self._progress.console if self._progress is not None else self._out).print(message)


class progress:
    """A progress bar on stderr for batches, only on a terminal, never with --json/--quiet."""

    def __init__(self, total: int, label: str, *, enabled: bool) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled and total > 1 and sys.stderr.isatty()
        self._progress: Any = None

    def __enter__(self) -> _Step:
        out = console()
        if not self.enabled:
            return _Step(None, None, out)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=out,
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task(self.label, total=self.total)
        return _Step(self._progress, task, out)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
