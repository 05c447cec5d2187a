"""``eprescrire issue``: validated input -> signed JSON (+ PDF / QR image)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import ExitCode, InputError, KeyFileError, UsageError, ValidationError


def _sources(inputs: list[str]) -> list[tuple[str, Any]]:
    """(name, parsed input or InputError) for each input; ``-`` reads NDJSON from stdin."""
    from eprescrire import canonical
    from eprescrire import inputs as loader

    items: list[tuple[str, Any]] = []
    for name in inputs:
        if name == "-":
            for number, line in enumerate(sys.stdin.buffer, start=1):
                if not line.strip():
                    continue
                try:
                    items.append((f"-:{number}", canonical.loads(line)))
                except canonical.StrictJSONError as e:
                    items.append(
                        (f"-:{number}", InputError(f"stdin line {number}: invalid JSON: {e}"))
                    )
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".toml", ".json"))
            if not files:
                items.append(
                    (name, InputError(f"{name}: no .toml or .json input in the directory"))
                )
        else:
            files = [path]
        for file in files:
            try:
                items.append((str(file), loader.read_input(file)))
            except InputError as e:
                items.append((str(file), e))
    return items


def issue(
    inputs: list[str] = typer.Argument(
        ..., help="Prescription inputs (.toml/.json), directories, or - for NDJSON on stdin."
    ),
    key: Path = typer.Option(..., "--key", help="Prescriber PKCS#12 file."),
    out: Path | None = typer.Option(None, "--out", help="Signed JSON output (one input only)."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.json (and ID.pdf / ID.png)."
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
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Validate and sign prescriptions; write the signed JSON documents."""
    from eprescrire import model, signing

    if out is not None and out_dir is not None:
        raise UsageError("use --out or --out-dir, not both")
    sources = _sources(inputs)
    if len(sources) > 1 and (out is not None or pdf is not None or qr is not None):
        raise UsageError("--out, --pdf and --qr take one input; use --out-dir for several")
    if out is None and out_dir is None:
        raise UsageError("give --out FILE or --out-dir DIR")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    credentials = _common.load_credentials(key, passphrase_file, insecure_key)
    now = _common.moment(at)
    say = _common.console()
    worst = ExitCode.OK
    issued = 0
    for name, data in sources:
        summary: dict[str, Any] = {"input": name}
        try:
            if isinstance(data, InputError):
                raise data
            prescription = model.from_input(data, now=now, source=name)
            document = signing.sign(prescription, credentials)
            target = out if out is not None else out_dir / f"{prescription.id}.json"  # type: ignore[operator]
            _write_new(target, document.to_json_bytes())
            summary.update(status="issued", id=prescription.id, out=str(target))
            if pdf is not None or (with_pdf and out_dir is not None):
                from eprescrire import render

                pdf_target = pdf or out_dir / f"{prescription.id}.pdf"  # type: ignore[operator]
                render.write_pdf(document, pdf_target, page=page)
                summary["pdf"] = str(pdf_target)
            if qr is not None:
                from eprescrire import render

                render.write_qr(document, qr)
                summary["qr"] = str(qr)
            issued += 1
        except ValidationError as e:
            worst = max(worst, ExitCode.UNREADABLE)
            summary.update(
                status="invalid",
                errors=[{"field": f.field, "message": f.message} for f in e.errors],
            )
            if not json_output or not quiet:
                say.print(f"[red]✗[/] {name}: {len(e.errors)} invalid field(s)")
                for f in e.errors:
                    say.print(f"    {f.field}: {f.message}")
        except KeyFileError:
            raise
        except InputError as e:
            worst = max(worst, ExitCode.UNREADABLE)
            summary.update(status="invalid", errors=[{"field": "", "message": str(e)}])
            say.print(f"[red]✗[/] {e}")
        if json_output:
            _common.emit_json(summary)
        elif summary["status"] == "issued" and not quiet:
            extra = "".join(f", {summary[k]}" for k in ("pdf", "qr") if k in summary)
            say.print(f"[green]✓[/] {name} → {summary['out']}{extra} (id {summary['id']})")
    if len(sources) > 1 and not quiet:
        say.print(f"{issued} issued, {len(sources) - issued} invalid")
    raise typer.Exit(int(worst))


def _write_new(target: Path, data: bytes) -> None:
    """Write a new file; never overwrite silently."""
    try:
        with open(target, "xb") as handle:
            handle.write(data)
    except FileExistsError as e:
        raise InputError(f"{target} already exists; refusing to overwrite it") from e
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror}") from e


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)
