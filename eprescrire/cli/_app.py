"""The Typer application: every command, registered from its own module."""

from __future__ import annotations

import typer

from eprescrire import __version__

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
    from eprescrire.cli import (
        drugs_cmd,
        issue_cmd,
        keys_cmd,
        ledger_cmd,
        render_cmd,
        trust_cmd,
        verify_cmd,
    )

    for module in (keys_cmd, trust_cmd, issue_cmd, render_cmd, verify_cmd, ledger_cmd, drugs_cmd):
        module.register(app)
    from eprescrire.cli import fhir_cmd

    fhir_cmd.register(app)

    from eprescrire.cli import counter_cmd

    counter_cmd.register(app)


_register()
