"""Every command and option explains itself in --help, in words a person reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from eprescrire.cli._app import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield (*path, name), command
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"issue", "verify", "counter", "trust crl", "keys authority", "ledger export"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"{' '.join(path)} has no help"
    missing = [
        param.opts[0] if param.opts else param.name
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == [], f"{' '.join(path)}: options without help: {missing}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_reads_plainly(path: tuple[str, ...], command: Any, run_cli) -> None:
    result = run_cli(*path, "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    # No Python annotations (<bool>, <list[Path]>) nor machine-sized bounds in the value column.
    assert not re.search(r"<\w+(\[\w+\])?>", text), text
    assert not re.search(r"\d{10,}", text), text
    # A command mentions --json only when it has it.
    has_json = any("--json" in getattr(p, "opts", ()) for p in command.params)
    if not has_json and not getattr(command, "commands", None):
        assert "--json" not in text, f"{' '.join(path)} mentions --json it does not have"
    assert "non-substituable" not in text


def test_flags_show_no_value_and_valued_options_say_what(run_cli) -> None:
    text = run_cli("dispense", "--help").stdout
    assert re.search(r"--all\s{2,}Dispense", text), text
    assert re.search(r"--quantity\s+INTEGER", text), text
    assert re.search(r"--jobs\s+-j\s+INTEGER \[1<=x<=64\]", text), text
    assert re.search(r"--trust\s+PATH", text), text
