"""Output helpers for the commands, without typer and without rich at import time.

``eprescrire verify`` runs at every scan at the counter: when its output is not a terminal it
prints plain text and never loads rich; on a terminal, rich gives colours (NO_COLOR respected).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, TextIO

# The markup tags the commands use ([bold red], [/], [dim], ...) and rich's escaping rule.
_TAG = re.compile(r"(\\*)(\[(?:/|[a-z#@][^\[\]]*?)\])")
_ESCAPABLE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(text: str) -> str:
    """Untrusted text for the console: control, bidi and invisible characters shown as
    visible escapes (:func:`eprescrire.text.printable`: no fake line, no terminal sequence),
    then escaped for console markup (same rule as ``rich.markup.escape``)."""
    from eprescrire.text import printable

    text = printable(text)

    def double(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        return f"{backslashes}{backslashes}\\{tag}"

    text = _ESCAPABLE.sub(double, text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def strip_markup(text: str) -> str:
    """Remove markup tags; an escaped tag (odd number of backslashes) is kept as text."""

    def plain(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        if len(backslashes) % 2:
            return backslashes[: len(backslashes) // 2] + tag
        return backslashes[: len(backslashes) // 2]

    return _TAG.sub(plain, text)


class PlainConsole:
    """Prints console markup as plain text (what rich prints when not on a terminal)."""

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    @property
    def file(self) -> TextIO:
        return sys.stderr if self.stderr else sys.stdout

    def print(self, text: Any = "") -> None:
        _write(self.file, strip_markup(str(text)) + "\n")


def console(stderr: bool = True, *, rich: bool = False) -> Any:
    """A console for people: rich on a terminal (or when ``rich`` is asked, for tables),
    plain text otherwise. Colours follow NO_COLOR and TTY detection."""
    stream = sys.stderr if stderr else sys.stdout
    if not rich and not stream.isatty():
        return PlainConsole(stderr)
    from rich.console import Console

    # emoji=False: signed text such as ":x:" is printed as written, never as a symbol.
    return Console(
        stderr=stderr,
        no_color=bool(os.environ.get("NO_COLOR")),
        highlight=False,
        soft_wrap=True,
        emoji=False,
    )


def emit_json(value: Any) -> None:
    _write(sys.stdout, json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


def emit_json_text(text: str) -> None:
    """An NDJSON line already serialised (``Verdict.to_json_text``)."""
    _write(sys.stdout, text + "\n")


def _write(stream: TextIO, text: str) -> None:
    """Write and flush; when the reader has gone (``| head``), stop writing but carry on, so
    that the exit code still reports every input."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def report_exit(codes: list[int]) -> int:
    """The exit code of a command over several inputs (SPEC §3, :func:`results.batch_exit`)."""
    from eprescrire.results import batch_exit

    return int(batch_exit(codes))


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
