"""``eprescrire issue``: validated input -> signed JSON (+ PDF / QR image)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import Error, ExitCode, InputError, UsageError, ValidationError


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)


def _sources(inputs: list[str]) -> list[tuple[str, Any]]:
    """(name, parsed input or InputError) for each input, in order. ``-`` reads NDJSON (one
    JSON object per line) or CSV (a header line first) from stdin; a directory is every
    .toml/.json/.csv file in it, sorted by name."""
    from eprescrire import canonical
    from eprescrire import inputs as loader

    items: list[tuple[str, Any]] = []
    for name in inputs:
        if name == "-":
            text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
            if text.lstrip().startswith("{") or not text.strip():
                for number, line in enumerate(text.splitlines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        items.append((f"-:{number}", canonical.loads(line)))
                    except canonical.StrictJSONError as e:
                        items.append((f"-:{number}", InputError(f"-:{number}: invalid JSON: {e}")))
            else:
                try:
                    items.extend(loader.parse_csv(text, "-"))
                except InputError as e:
                    items.append(("-", e))
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".toml", ".json", ".csv"))
            if not files:
                items.append((name, InputError(f"{name}: no .toml, .json or .csv input in it")))
        else:
            files = [path]
        for file in files:
            try:
                if file.suffix == ".csv":
                    items.extend(loader.parse_csv(file.read_text("utf-8"), str(file)))
                else:
                    items.append((str(file), loader.read_input(file)))
            except (InputError, OSError, UnicodeDecodeError) as e:
                message = str(e) if isinstance(e, InputError) else f"{file}: cannot read ({e})"
                items.append((str(file), InputError(message)))
    return items


def _issue_one(item: tuple[str, Any]) -> dict[str, Any]:
    """Issue one input (in a worker process or in-process); never raises for bad input."""
    from eprescrire import batch, model, render, signing

    name, data = item
    options = batch.shared("issue")
    summary: dict[str, Any] = {"input": name}
    try:
        if isinstance(data, InputError):
            raise data
        prescription = model.from_input(data, now=options["now"], source=name)
        document = signing.sign(prescription, batch.shared("credentials"))
        out, out_dir = options["out"], options["out_dir"]
        target = out if out is not None else out_dir / f"{prescription.id}.json"
        _common.write_new(target, document.to_json_bytes())
        summary.update(status="issued", id=prescription.id, out=str(target))
        printable = render.Printable(document)  # one QR encoding for the PDF and the image
        if options["pdf"] is not None or (options["with_pdf"] and out_dir is not None):
            pdf_target = options["pdf"] or out_dir / f"{prescription.id}.pdf"
            render.write_pdf(printable, pdf_target, page=options["page"])
            summary["pdf"] = str(pdf_target)
        if options["qr"] is not None:
            render.write_qr(printable, options["qr"])
            summary["qr"] = str(options["qr"])
    except ValidationError as e:
        summary.update(
            status="invalid",
            errors=[{"field": f.field, "message": f.message} for f in e.errors],
        )
        summary["_exit"] = int(ExitCode.UNREADABLE)
    except Error as e:
        summary.update(status="invalid", errors=[{"field": "", "message": str(e)}])
        summary["_exit"] = int(e.exit_code)
    return summary


def issue(
    inputs: list[str] = typer.Argument(
        ...,
        help="Prescription inputs (.toml/.json/.csv), directories, or - (NDJSON or CSV on stdin).",
    ),
    key: Path = typer.Option(..., "--key", help="Prescriber PKCS#12 file."),
    out: Path | None = typer.Option(None, "--out", help="Signed JSON output (one input only)."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.json (and ID.pdf with --with-pdf)."
    ),
    pdf: Path | None = typer.Option(
        None, "--pdf", help="Also write the printable ordonnance PDF here (one input)."
    ),
    qr: Path | None = typer.Option(
        None, "--qr", help="Also write the QR image here, .png or .svg (one input)."
    ),
    with_pdf: bool = typer.Option(
        False, "--with-pdf", help="With --out-dir: also write ID.pdf for each input."
    ),
    page: str = typer.Option("A5", "--page", help="PDF page size: A5 or A4."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Processes to use."),
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Validate and sign prescriptions; write the signed JSON documents (and PDFs).

    Output names in --out-dir are ID.json / ID.pdf; an existing file is never overwritten.
    With --json, one summary object per input on stdout:
    {"input", "status": "issued"|"invalid", "id", "out", "pdf", "qr", "errors"}.
    """
    from eprescrire import batch

    if out is not None and out_dir is not None:
        raise UsageError("use --out or --out-dir, not both")
    if out is None and out_dir is None:
        raise UsageError("give --out FILE or --out-dir DIR")
    if page not in ("A5", "A4"):
        raise UsageError("--page must be A5 or A4")
    sources = _sources(inputs)
    if len(sources) > 1 and (out is not None or pdf is not None or qr is not None):
        raise UsageError("--out, --pdf and --qr take one input; use --out-dir for several")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    credentials = _common.load_credentials(key, passphrase_file, insecure_key)
    batch.share(
        credentials=credentials,
        issue={
            "now": _common.moment(at),
            "out": out,
            "out_dir": out_dir,
            "pdf": pdf,
            "qr": qr,
            "with_pdf": with_pdf,
            "page": page,
        },
    )
    say = _common.console()
    codes: list[int] = []
    issued = 0
    with _common.progress(len(sources), "Issuing", enabled=not json_output and not quiet) as step:
        for summary in batch.run(_issue_one, sources, min(jobs, max(1, len(sources)))):
            code = summary.pop("_exit", 0)
            codes.append(code)
            if summary["status"] == "issued":
                issued += 1
            if json_output:
                _common.emit_json(summary)
            if summary["status"] == "issued":
                if not quiet and not json_output:
                    extra = "".join(f", {summary[k]}" for k in ("pdf", "qr") if k in summary)
                    step.log(f"[green]✓[/] {summary['input']} → {summary['out']}{extra}")
            elif not (quiet and json_output):
                step.log(f"[red]✗[/] {summary['input']}: {len(summary['errors'])} problem(s)")
                for error in summary["errors"]:
                    field = f"{error['field']}: " if error["field"] else ""
                    step.log(f"    {field}{error['message']}")
            step.advance()
    if len(sources) > 1 and not quiet:
        say.print(f"{issued} issued, {len(sources) - issued} not issued")
    raise typer.Exit(_common.batch_exit(codes))
