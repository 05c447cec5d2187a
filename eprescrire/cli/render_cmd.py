"""``eprescrire render`` (signed JSON -> printable PDF) and ``eprescrire qr`` (-> QR image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import Error, ExitCode, InputError, Reason, UsageError, VerificationError

MAX_DOCUMENT_BYTES = 1 << 20


def register(app: typer.Typer) -> None:
    app.command("render")(render)
    app.command("qr")(qr)


def _load(name: Path) -> Any:
    """The signed document in ``name``, its signature checked against its own certificate.

    A file that is missing or is not a signed document is unreadable input (exit 3); a document
    whose signature does not hold is rejected (exit 1): it is never printed.
    """
    from eprescrire import signing

    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError as e:
        raise InputError(f"{name}: no such file") from e
    except IsADirectoryError as e:
        raise InputError(f"{name}: is a directory, not a signed document") from e
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror})") from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{name}: too large for a signed document")
    try:
        return signing.load_document(data)
    except VerificationError as e:
        if e.reason == Reason.SIGNATURE_INVALID:
            raise VerificationError(e.reason, f"{name}: {e}") from e
        raise InputError(f"{name}: not a readable signed document ({e})") from e


def _page(page: str) -> str:
    from eprescrire.render import PAGES

    if page.upper() not in PAGES:
        raise UsageError(f"--page must be A5 or A4, not {page!r}")
    return page.upper()


def render(
    documents: list[Path] = typer.Argument(..., help="Signed JSON documents (from `issue`)."),
    out: Path | None = typer.Option(None, "--out", help="PDF to write (one document only)."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.pdf, one per document."
    ),
    page: str = typer.Option("A5", "--page", help="Page size: A5 or A4."),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Print signed prescriptions as French ordonnances (PDF with the QR code bottom-left).

    Never overwrites a file. Exit 1 if a signature does not hold, 3 if an input is unreadable.
    """
    from eprescrire import render as renderer

    if out is not None and out_dir is not None:
        raise UsageError("use --out or --out-dir, not both")
    if out is None and out_dir is None:
        raise UsageError("give --out FILE.pdf or --out-dir DIR")
    if out is not None and len(documents) > 1:
        raise UsageError("--out takes one document; use --out-dir for several")
    size = _page(page)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create {out_dir}: {e.strerror}") from e
    say = _common.console()
    codes: list[ExitCode] = []
    for name in documents:
        summary: dict[str, Any] = {"input": str(name)}
        try:
            document = _load(name)
            from eprescrire.ids import file_stem

            stem = file_stem(document.prescription.id)  # never a shell-special character
            target = out if out is not None else out_dir / f"{stem}.pdf"  # type: ignore[operator]
            renderer.write_pdf(document, target, page=size)
        except UsageError:
            raise
        except Error as e:
            codes.append(e.exit_code)
            summary.update(status="error", error=e.diagnostics())
            say.print(f"[red]✗[/] {_escape(e.diagnostics())}")
        else:
            codes.append(ExitCode.OK)
            summary.update(status="rendered", id=document.prescription.id, out=str(target))
            if not quiet:
                say.print(f"[green]✓[/] {_escape(str(name))} → {_escape(str(target))}")
        if json_output:
            _common.emit_json(summary)
    raise typer.Exit(int(_overall(codes)))


def qr(
    document: Path = typer.Argument(..., help="Signed JSON document (from `issue`)."),
    out: Path = typer.Option(..., "--out", help="Image to write: FILE.png or FILE.svg."),
    scale: int | None = typer.Option(None, "--scale", help="Pixels per module (default 5)."),
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Write the prescription's QR code alone, as PNG or SVG, with its quiet zone."""
    from eprescrire import render as renderer

    if out.suffix.lower() not in renderer.IMAGE_KINDS:
        raise UsageError(f"{out}: the QR image must be .png or .svg")
    if scale is not None and not 1 <= scale <= renderer.MAX_SCALE:
        raise UsageError(f"--scale must be from 1 to {renderer.MAX_SCALE}")
    loaded = _load(document)
    renderer.write_qr(loaded, out, scale=scale)
    if not quiet:
        _common.console().print(f"[green]✓[/] {_escape(str(document))} → {_escape(str(out))}")


def _overall(codes: list[ExitCode]) -> ExitCode:
    """SPEC §3: 1 if any was rejected, else 3 if any was unreadable, else the worst code."""
    if ExitCode.REJECTED in codes:
        return ExitCode.REJECTED
    return max(codes, default=ExitCode.OK)


def _escape(text: str) -> str:
    from eprescrire.cli._output import escape

    return escape(text)
