"""The work of ``eprescrire verify``, without typer: the counter's fast path calls it directly.

Nothing here is imported when eprescrire starts; heavy libraries load only when an input needs
them (an image needs Pillow and zxing-cpp, a signed JSON file does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eprescrire.cli import _output
from eprescrire.cli._output import escape


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


def run(
    inputs: list[str],
    *,
    trust: Path | None = None,
    at: str | None = None,
    engine: str = "zxing",
    show_jws: bool = False,
    ledger: str | None = None,
    jobs: int = 1,
    json_output: bool = False,
    quiet: bool = False,
    stdin: bytes = b"",
) -> int:
    """Verify every input and print verdicts; return the exit code (SPEC §3)."""
    from eprescrire import batch, signing
    from eprescrire.errors import UsageError

    if engine not in ("zxing", "zbar"):
        raise UsageError("--engine must be zxing or zbar")
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    store = _output.open_trust(trust)
    when = _output.moment(at)
    book = None
    unreachable = None
    if ledger is not None:
        from eprescrire.ledger import LedgerError, open_ledger

        try:
            book = open_ledger(ledger, create=False)
        except LedgerError as e:
            # The signature verdict stands on its own; only the dispensing state is unknown.
            unreachable = f"ledger unavailable, dispensing state unknown: {e}"
    batch.share(trust=store, verify={"at": when, "engine": engine, "stdin": stdin})
    verdicts = []
    with _output.progress(len(inputs), "Verifying", enabled=not json_output and not quiet) as step:
        for results in batch.run(_verify_one, inputs, min(jobs, len(inputs)), chunksize=1):
            for verdict in results:
                if book is not None:
                    from eprescrire import dispensing
                    from eprescrire.ledger import LedgerError

                    try:
                        dispensing.annotate(verdict, book, when)
                    except LedgerError as e:
                        unreachable = f"ledger unavailable, dispensing state unknown: {e}"
                        book = None
                if unreachable is not None:
                    verdict.warnings.append(unreachable)
                verdicts.append(verdict)
                if json_output:
                    _output.emit_json(verdict.to_json())
                if not quiet:
                    show_verdict(verdict, to_stderr=json_output, out=step)
                if show_jws and verdict.authentic and verdict.token and not json_output:
                    print(verdict.token)
            step.advance()
    if len(verdicts) > 1 and not quiet:
        counts = {
            s: sum(v.status == s for v in verdicts) for s in ("valid", "rejected", "unreadable")
        }
        _output.console().print(
            f"{len(verdicts)} verified: {counts['valid']} valid, {counts['rejected']} rejected, "
            f"{counts['unreadable']} unreadable"
        )
    return int(signing.overall_exit(verdicts))


_LABELS = {
    "valid": ("green", "VALIDE"),
    "rejected": ("red", "REJETÉE"),
    "unreadable": ("yellow", "ILLISIBLE"),
}


def show_verdict(verdict: Any, *, to_stderr: bool, out: Any = None) -> None:
    """The human verdict: what was signed, never the unsigned readable copy."""
    from eprescrire import ids, rules

    console = _output.console(stderr=to_stderr)
    # While a progress bar runs, lines go through it so that the bar stays at the bottom.
    out = out if out is not None and out.active else console
    colour, label = _LABELS[verdict.status]
    ident = f" {ids.grouped(verdict.id)}" if verdict.id and verdict.authentic else ""
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
