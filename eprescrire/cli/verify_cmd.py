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
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify prescriptions offline against the trust store; say VALID or why not."""
    from eprescrire import signing, verifying

    if engine not in ("zxing", "zbar"):
        from eprescrire.errors import UsageError

        raise UsageError("--engine must be zxing or zbar")
    store = _common.open_trust(trust)
    when = _common.moment(at)
    verdicts = []
    book = None
    if ledger is not None:
        from eprescrire.ledger import open_ledger

        book = open_ledger(ledger, create=False)
    for name in inputs:
        for verdict in verifying.verify_input(
            name, store, when, engine=engine, stdin=sys.stdin.buffer
        ):
            if book is not None:
                from eprescrire import dispensing

                dispensing.annotate(verdict, book, when)
            verdicts.append(verdict)
            if json_output:
                _common.emit_json(verdict.to_json())
            if not quiet:
                show_verdict(verdict, to_stderr=json_output)
            if show_jws and verdict.token and not json_output:
                print(verdict.token)
    raise typer.Exit(int(signing.overall_exit(verdicts)))


_LABELS = {
    "valid": ("green", "VALIDE"),
    "rejected": ("red", "REJETÉE"),
    "unreadable": ("yellow", "ILLISIBLE"),
}


def show_verdict(verdict: Any, *, to_stderr: bool) -> None:
    """The human verdict: what was signed, never the unsigned readable copy."""
    from rich.markup import escape

    from eprescrire import ids, model, rules

    out = _common.console(stderr=to_stderr)
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
    weight = f", {p.patient.weight_kg} kg" if p.patient.weight_kg is not None else ""
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
