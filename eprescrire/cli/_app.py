"""The Typer application: every command, registered from its own module."""

from __future__ import annotations

import importlib

import typer

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
