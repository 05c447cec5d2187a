"""The ``eprescrire`` command line: parse, call the library, print. Nothing else.

Each area registers its commands from its own module; heavy libraries (reportlab, segno, PIL,
zxing-cpp) are imported inside the commands that use them, so ``verify`` and ``--help`` start
fast.
"""

from __future__ import annotations

import sys

import typer

from eprescrire import __version__
from eprescrire.errors import Error, ExitCode

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
    from eprescrire.cli import issue_cmd, keys_cmd, trust_cmd, verify_cmd

    for module in (keys_cmd, trust_cmd, issue_cmd, verify_cmd):
        module.register(app)
    for optional in ("render_cmd", "ledger_cmd"):
        try:
            module = __import__(f"eprescrire.cli.{optional}", fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != f"eprescrire.cli.{optional}":
                raise
            continue
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: map every error to its exit code and one line on stderr.

    Typer/click handle usage errors themselves (exit 2); our own errors carry their exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args
    try:
        app(args=args, prog_name="eprescrire")
    except Error as e:
        if verbose:
            raise
        print(f"eprescrire: {e.diagnostics()}", file=sys.stderr)
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        print("eprescrire: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # an internal bug: one line, the traceback only with --verbose
        if verbose:
            raise
        print(
            f"eprescrire: internal error ({e.__class__.__name__}); rerun with --verbose",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.INTERNAL))
