"""Where things live (EPRESCRIRE_HOME, trust store, ledger) and how secrets are read.

Secrets never come from the command line: a passphrase is read from an environment variable,
a file, or an interactive prompt.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from eprescrire.errors import EnvironmentProblem, UsageError
from eprescrire.rules import PARIS


def home() -> Path:
    value = os.environ.get("EPRESCRIRE_HOME")
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_data_dir("eprescrire", appauthor=False))


def trust_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    value = os.environ.get("EPRESCRIRE_TRUST")
    return Path(value) if value else home() / "trust"


def ledger_location(option: str | None) -> str:
    if option:
        return option
    value = os.environ.get("EPRESCRIRE_LEDGER")
    return value if value else str(home() / "ledger.sqlite3")


def read_passphrase(
    file: Path | None,
    *,
    env: str = "EPRESCRIRE_PASSPHRASE",
    prompt: str = "Passphrase",
    confirm: bool = False,
) -> bytes | None:
    """The passphrase from ``file``, else ``$env``, else a prompt on a terminal, else None."""
    if file is not None:
        try:
            text = file.read_text("utf-8")
        except OSError as e:
            raise EnvironmentProblem(f"cannot read passphrase file {file}: {e.strerror}") from e
        lines = text.splitlines()
        return (lines[0] if lines else "").encode("utf-8")
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if sys.stdin.isatty() and sys.stderr.isatty():
        import getpass

        first = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass(f"{prompt} (again): ") != first:
            raise UsageError("the passphrases differ")
        return first.encode("utf-8")
    return None


def parse_moment(text: str) -> dt.datetime:
    """``--at``: an ISO 8601 date or date and time; naive values are Paris time."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(12, 0))
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(f"--at: {text!r} is not an ISO 8601 date or date and time") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PARIS)
    if not 1970 <= moment.year <= 2999:
        raise UsageError(f"--at: {text!r} is outside the years 1970 to 2999")
    return moment.astimezone(dt.UTC)
