"""The ``eprescrire`` command line: parse, call the library, print. Nothing else.

The Typer application (``eprescrire.cli._app``, also ``eprescrire.cli.app``) holds every command. ``verify`` is what a
pharmacist waits for at every scan, so :func:`main` serves a plain ``verify`` invocation (and
``drugs search``, a prescriber's look-up, ``issue``, a hospital's batch of discharges, and
``--version``) without loading Typer at all;
anything else, including ``--help`` and every usage error, goes through the Typer application.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eprescrire import __version__
from eprescrire.errors import Error, ExitCode


def __getattr__(name: str) -> Any:
    if name == "app":
        from eprescrire.cli._app import app

        return app
    raise AttributeError(name)


class _NotFast(Exception):
    """The fast path declines: let the Typer application handle the command line."""


class _QuietParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never print or exit: Typer will explain
        raise _NotFast(message)


def verify_parser() -> argparse.ArgumentParser:
    """The options of ``eprescrire verify`` (kept identical to the Typer command's by a test)."""
    parser = _QuietParser(prog="eprescrire verify", add_help=False, allow_abbrev=False)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--trust", type=Path)
    parser.add_argument("--at")
    parser.add_argument("--engine", default="zxing", choices=("zxing", "zbar"))
    parser.add_argument("--show-jws", action="store_true")
    parser.add_argument("--ledger")
    parser.add_argument("--jobs", "-j", type=int, default=1)
    parser.add_argument("--json", dest="json_output", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    return parser


def issue_parser() -> argparse.ArgumentParser:
    """The options of ``eprescrire issue`` (kept identical to the Typer command's by a test)."""
    parser = _QuietParser(prog="eprescrire issue", add_help=False, allow_abbrev=False)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--key", type=Path, required=True)
    for option in ("--out", "--out-dir", "--pdf", "--qr", "--drugs", "--passphrase-file"):
        parser.add_argument(option, type=Path)
    parser.add_argument("--pin-file", type=Path)
    parser.add_argument("--page", default="A5")
    parser.add_argument("--jobs", "-j", type=int, default=1)
    parser.add_argument("--at")
    parser.add_argument("--json", dest="json_output", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    for flag in ("--with-pdf", "--insecure-key", "--allow-name-mismatch", "--verbose"):
        parser.add_argument(flag, action="store_true")
    return parser


def _fast_issue(args: list[str]) -> int:
    options = vars(issue_parser().parse_intermixed_args(args))
    inputs = options.pop("inputs")
    if not 1 <= options["jobs"] <= 64 or any(i.startswith("-") and i != "-" for i in inputs):
        raise _NotFast()
    del options["verbose"]  # main() reads it
    from eprescrire.cli import _issue

    return _issue.run(inputs, **options)


def drugs_search_parser() -> argparse.ArgumentParser:
    """The options of ``eprescrire drugs search`` (kept identical to the Typer command's)."""
    from eprescrire.cli import _drugs_search

    parser = _QuietParser(prog="eprescrire drugs search", add_help=False, allow_abbrev=False)
    _drugs_search.add_arguments(parser)
    return parser


def _fast_drugs_search(args: list[str]) -> int:
    from eprescrire.cli import _drugs_search

    options = drugs_search_parser().parse_intermixed_args(args)
    low, high = _drugs_search.LIMIT
    if not low <= options.limit <= high or any(t.startswith("-") for t in options.text):
        raise _NotFast()
    return _drugs_search.run(
        options.text,
        limit=options.limit,
        catalogue=options.catalogue,
        json_output=options.json_output,
    )


def _fast(args: list[str]) -> int:
    """Serve ``verify``, ``drugs search``, ``issue`` and ``--version`` without Typer; raise
    _NotFast for anything else."""
    if args == ["--version"]:
        print(f"eprescrire {__version__}")
        return 0
    if args[:2] == ["drugs", "search"] and not any(a in ("-h", "--help") for a in args):
        return _fast_drugs_search(args[2:])
    if args[:1] == ["issue"] and not any(a in ("-h", "--help") for a in args):
        return _fast_issue(args[1:])
    if not args or args[0] != "verify" or any(a in ("-h", "--help") for a in args):
        raise _NotFast()
    options = verify_parser().parse_intermixed_args(args[1:])
    if not 1 <= options.jobs <= 64 or any(i.startswith("-") and i != "-" for i in options.inputs):
        raise _NotFast()
    from eprescrire.cli import _verify

    return _verify.run(
        options.inputs,
        trust=options.trust,
        at=options.at,
        engine=options.engine,
        show_jws=options.show_jws,
        ledger=options.ledger,
        jobs=options.jobs,
        json_output=options.json_output,
        quiet=options.quiet,
        stdin=read_stdin() if "-" in options.inputs else b"",
    )


def read_stdin() -> bytes:
    """Standard input for ``-``: QR text or a signed document, read with a bound (one byte
    more than allowed, so that the verdict can say it is too large)."""
    from eprescrire.verifying import MAX_TEXT_BYTES

    return sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Console entry point: map every error to its exit code and one line on stderr.

    Typer handles usage errors itself (exit 2); our own errors carry their exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args
    try:
        try:
            code = _fast(args)
        except _NotFast:
            from eprescrire.cli._app import app

            app(args=args, prog_name="eprescrire")
            code = 0
        sys.exit(code)
    except Error as e:
        if verbose:
            raise
        print(f"eprescrire: {e.diagnostics()}", file=sys.stderr)
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        print("eprescrire: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away before the end (``| head``): what it did not read cannot be
        # called a success.
        _silence_stdout()
        sys.exit(int(ExitCode.REJECTED))
    except Exception as e:  # an internal bug: one line, the traceback only with --verbose
        if verbose:
            raise
        print(
            f"eprescrire: internal error ({e.__class__.__name__}); rerun with --verbose",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.INTERNAL))
