"""``eprescrire verify``: scans, PDFs, signed JSON or QR text -> verdicts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import Reason


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def _verify_one(name: str) -> list[Any]:
    """Verdicts for one input (in a worker process or in-process)."""
    import io

    from eprescrire import batch, verifying

    options = batch.shared("verify")
    stdin = io.BytesIO(options["stdin"]) if name == "-" else None
    return list(
        verifying.verify_input(
            name, batch.shared("trust"), options["at"], engine=options["engine"], stdin=stdin
        )
    )


def verify(
    inputs: list[str] = typer.Argument(
        ...,
        help="Scans/photos (PNG, JPEG, TIFF, BMP, WebP), PDFs, signed JSON files, QR text files, or - for QR text on stdin.",
    ),
    trust: Path | None = _common.TRUST_OPTION,
    at: str | None = _common.AT_OPTION,
    engine: str = typer.Option(
        "zxing", "--engine", help="QR decoding engine for images: zxing or zbar."
    ),
    show_jws: bool = typer.Option(
        False, "--show-jws", help="Print the verified compact JWS (standard RFC 7515)."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Also consult this dispensing ledger: cancelled, fully dispensed."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Processes to decode with."),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify prescriptions offline against the trust store; say VALID or why not.

    With --json, one verdict object per input (per code for images holding several) on stdout:
    {"input", "status", "id", "reasons", "prescription", "signer", "dispensing", "warnings"}.
    """
    from eprescrire import batch, signing

    if engine not in ("zxing", "zbar"):
        from eprescrire.errors import UsageError

        raise UsageError("--engine must be zxing or zbar")
    store = _common.open_trust(trust)
    when = _common.moment(at)
    book = None
    if ledger is not None:
        from eprescrire.ledger import open_ledger

        book = open_ledger(ledger, create=False)
    stdin = sys.stdin.buffer.read() if "-" in inputs else b""
    batch.share(trust=store, verify={"at": when, "engine": engine, "stdin": stdin})
    verdicts = []
    with _common.progress(len(inputs), "Verifying", enabled=not json_output and not quiet) as step:
        for results in batch.run(_verify_one, inputs, min(jobs, len(inputs)), chunksize=1):
            for verdict in results:
                if book is not None:
                    from eprescrire import dispensing

                    dispensing.annotate(verdict, book, when)
                verdicts.append(verdict)
                if json_output:
                    _common.emit_json(verdict.to_json())
                if not quiet:
                    show_verdict(verdict, to_stderr=json_output, out=step)
                if show_jws and verdict.token and not json_output:
                    print(verdict.token)
            step.advance()
    if len(verdicts) > 1 and not quiet:
        counts = {
            s: sum(v.status == s for v in verdicts) for s in ("valid", "rejected", "unreadable")
        }
        _common.console().print(
            f"{len(verdicts)} verified: {counts['valid']} valid, {counts['rejected']} rejected, "
            f"{counts['unreadable']} unreadable"
        )
    raise typer.Exit(int(signing.overall_exit(verdicts)))


_LABELS = {
    "valid": ("green", "VALIDE"),
    "rejected": ("red", "REJETÉE"),
    "unreadable": ("yellow", "ILLISIBLE"),
}


def show_verdict(verdict: Any, *, to_stderr: bool, out: Any = None) -> None:
    """The human verdict: what was signed, never the unsigned readable copy."""
    from rich.markup import escape

    from eprescrire import ids, model, rules

    console = _common.console(stderr=to_stderr)
    # While a progress bar runs, lines go through it so that the bar stays at the bottom.
    out = out if out is not None and out.active else console
    colour, label = _LABELS[verdict.status]
    ident = f" {ids.grouped(verdict.id)}" if verdict.id else ""
    out.print(f"[bold {colour}]{label}[/]{ident}  [dim]{escape(verdict.input)}[/]")
    for reason in verdict.reasons:
        out.print(f"  [{colour}]✗ {reason.code.value}[/]: {escape(reason.message)}")
    for warning in verdict.warnings:
        out.print(f"  [yellow]! {escape(warning)}[/]")
    if not verdict.authentic:
        return
    p = verdict.prescription
    issued = p.issued_at.astimezone(rules.PARIS)
    out.print(
        f"  Prescripteur : {escape(p.prescriber.name)} — {escape(p.prescriber.specialty)} — RPPS {p.prescriber.rpps}"
    )
    weight = (
        f", {str(p.patient.weight_kg).replace('.', ',')} kg"
        if p.patient.weight_kg is not None
        else ""
    )
    out.print(
        f"  Patient      : {escape(p.patient.family_name.upper())} {escape(p.patient.given_name)}, "
        f"né(e) le {p.patient.birth_date:%d/%m/%Y}{weight}"
    )
    out.print(
        f"  Date         : {issued:%d/%m/%Y %H:%M} — 1re délivrance avant le "
        f"{rules.first_dispensing_deadline(p.issued_at):%d/%m/%Y}"
    )
    for number, line in enumerate(p.lines, start=1):
        flags = []
        if line.ald:
            flags.append("ALD")
        if line.narcotic:
            flags.append("stupéfiant")
        if not line.substitutable:
            flags.append(f"NS {line.ns_reason}")
        if line.renewals:
            flags.append(f"à renouveler {line.renewals} fois")
        suffix = f" [{', '.join(flags)}]" if flags else ""
        unit = f" {escape(line.unit)}" if line.unit else ""
        out.print(
            f"  {number}. {escape(line.label)} — {escape(line.posology)} — {line.duration_days} j — "
            f"qté {line.quantity}{unit}{escape(suffix)}"
        )
    if p.share_opposition:
        out.print(
            "  [dim]Le patient s'oppose au partage des données de délivrance avec le prescripteur.[/]"
        )
    if verdict.dispensing:
        lines = verdict.dispensing.get("lines", [])
        done = ", ".join(
            f"{item['line']}: {item['dispensed']}/{item['prescribed']}"
            for item in lines
            if "dispensed" in item
        )
        out.print(f"  Délivrance   : {escape(done)}")
    _ = model, Reason
