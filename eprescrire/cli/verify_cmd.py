"""``eprescrire verify``: scans, PDFs, signed JSON or QR text -> verdicts."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    inputs: list[str] = typer.Argument(
        ...,
        help="Scans/photos (PNG, JPEG, TIFF, BMP, WebP), PDFs, signed JSON files, QR text files, or - for QR text on stdin.",
    ),
    trust: Path | None = _common.TRUST_OPTION,
    at: str | None = _common.AT_OPTION,
    engine: str = _common.ENGINE_OPTION,
    show_jws: bool = typer.Option(
        False, "--show-jws", help="Print the verified compact JWS (standard RFC 7515)."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Also consult this dispensing ledger: cancelled, fully dispensed."
    ),
    jobs: int = _common.jobs_option("decode"),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify prescriptions offline against the trust store; say VALID or why not.

    With --json, one verdict object per input (per code for images holding several) on stdout:
    {"input", "status", "id", "reasons", "prescription", "signer", "dispensing", "warnings"}.
    """
    from eprescrire.cli import _verify, read_stdin

    code = _verify.run(
        inputs,
        trust=trust,
        at=at,
        engine=engine,
        show_jws=show_jws,
        ledger=ledger,
        jobs=jobs,
        json_output=json_output,
        quiet=quiet,
        stdin=read_stdin() if "-" in inputs else b"",
    )
    raise typer.Exit(code)
