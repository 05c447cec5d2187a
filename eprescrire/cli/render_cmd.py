"""``eprescrire render`` (signed JSON -> printable PDF) and ``eprescrire qr`` (-> QR image)."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common


def register(app: typer.Typer) -> None:
    app.command("render")(render)
    app.command("qr")(qr)


def render(
    documents: list[Path] = typer.Argument(..., help="Signed JSON documents (from `issue`)."),
    out: Path | None = typer.Option(None, "--out", help="PDF to write (one document only)."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.pdf, one per document."
    ),
    page: str = _common.PAGE_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Print signed prescriptions as French ordonnances (PDF with the QR code bottom-left).

    Never overwrites a file (exit 3). Exit 1 if a signature does not hold, 3 if an input is
    unreadable. With --json, one object per document: {"input", "status":
    "rendered"|"rejected"|"unreadable", "reasons", "id", "out"}.
    """
    from eprescrire.services.printing import RenderRequest
    from eprescrire.services.printing import render as render_all

    request = RenderRequest(tuple(documents), out, out_dir, page)
    say = _common.console()
    codes: list[int] = []
    for result in render_all(request):
        codes.append(result.exit_code)
        if result.status == "rendered":
            if not quiet:
                say.print(
                    f"[green]✓[/] {_common.escape(result.input)} → {_common.escape(str(result.out))}"
                )
        else:
            for reason in result.reasons:
                say.print(f"[red]✗[/] {_common.escape(reason['message'])}")
        if json_output:
            _common.emit_json(result.to_json())
    raise typer.Exit(_common.report_exit(codes))


def qr(
    document: Path = typer.Argument(..., help="Signed JSON document (from `issue`)."),
    out: Path = typer.Option(..., "--out", help="Image to write: FILE.png or FILE.svg."),
    scale: int | None = typer.Option(None, "--scale", help="Pixels per module (default 5)."),
    quiet: bool = _common.QUIET_PLAIN_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Write the prescription's QR code alone, as PNG or SVG, with its quiet zone (a new file;
    an existing one is never overwritten: exit 3)."""
    from eprescrire.services.printing import check_qr_options, load_signed, write_qr

    check_qr_options(out, scale)
    write_qr(load_signed(document), out, scale=scale)
    if not quiet:
        _common.console().print(
            f"[green]✓[/] {_common.escape(str(document))} → {_common.escape(str(out))}"
        )
