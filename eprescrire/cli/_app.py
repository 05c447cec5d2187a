"""The Typer application: every command, registered from its own module."""

from __future__ import annotations

import importlib

import typer
import typer.core

from eprescrire import __version__

#: The command modules under eprescrire.cli, each with ``register(app)``: the one place where
#: a command group joins the application.
COMMAND_MODULES = (
    "keys_cmd",
    "trust_cmd",
    "issue_cmd",
    "render_cmd",
    "verify_cmd",
    "dispense_cmd",
    "prescription_cmd",
    "ledger_cmd",
    "shared_ledger_cmd",
    "drugs_cmd",
    "fhir_cmd",
    "counter_cmd",
)

_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _plain_type(param: typer.core._TyperParameter, ctx: typer.Context) -> str | None:
    """The value column of ``--help`` as a person reads it (``PATH``, ``INTEGER``, ``a|b``, the
    option's metavar; nothing for a flag or an argument, whose name says it) instead of Typer's
    Python annotations (``<bool>``, ``<list[Path]>``)."""
    if isinstance(param, typer.core.TyperArgument):
        return None
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return param.metavar
    label = param.display_type(ctx).strip("<>").removesuffix(" range")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    words = [_TYPE_WORDS.get(word, word.upper()) for word in label.split("|")]
    shown = "|".join(words) if len(words) == 1 or all(w.isupper() for w in words) else label
    return f"{shown}..." if param.nargs != 1 else shown


typer.core.TyperOption.display_type_rich = _plain_type  # type: ignore[method-assign,assignment]
typer.core.TyperArgument.display_type_rich = _plain_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="eprescrire",
    help="Secure electronic prescriptions: issue, print, verify offline, dispense once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"eprescrire {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Secure electronic prescriptions: issue, print, verify offline, dispense once."""


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"eprescrire.cli.{name}").register(app)


_register()
