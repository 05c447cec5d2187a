"""The work of ``eprescrire verify``, without typer: the counter's fast path calls it directly.

Nothing here is imported when eprescrire starts; heavy libraries load only when an input needs
them (an image needs Pillow and zxing-cpp, a signed JSON file does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eprescrire.cli import _output
from eprescrire.cli._output import escape


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
    from eprescrire.services import context
    from eprescrire.services.verification import VerifyRequest, verify

    context.check_engine(engine)
    store = context.open_trust(trust)
    when = context.moment(at)
    book = None
    unreachable = None
    if ledger is not None:
        from eprescrire.ledger import LedgerError

        try:
            book = context.open_ledger(ledger, create=False)
        except LedgerError as e:
            # The signature verdict stands on its own; only the dispensing state is unknown.
            unreachable = f"ledger unavailable, dispensing state unknown: {e}"
    request = VerifyRequest(tuple(inputs), store, when, engine, book, jobs, stdin, unreachable)
    verdicts = []
    with _output.progress(len(inputs), "Verifying", enabled=not json_output and not quiet) as step:
        for results in verify(request):
            for verdict in results:
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
        from eprescrire import wording

        _output.console().print(wording.summary(counts))
    return _output.report_exit([v.exit_code for v in verdicts])


_COLOURS = {"valid": "green", "rejected": "red", "unreadable": "yellow"}


def show_verdict(verdict: Any, *, to_stderr: bool, out: Any = None) -> None:
    """The human verdict: what was signed, never the unsigned readable copy."""
    from eprescrire import ids, rules, wording

    console = _output.console(stderr=to_stderr)
    # While a progress bar runs, lines go through it so that the bar stays at the bottom.
    out = out if out is not None and out.active else console
    colour, label = _COLOURS[verdict.status], wording.status(verdict.status)
    ident = f" {ids.grouped(verdict.id)}" if verdict.id and verdict.authentic else ""
    out.print(f"[bold {colour}]{label}[/]{ident}  [dim]{escape(verdict.input)}[/]")
    for reason in verdict.reasons:
        out.print(f"  [{colour}]✗ {escape(wording.reason(reason.code.value, reason.message))}[/]")
    for warning in verdict.warnings:
        out.print(f"  [yellow]! {escape(wording.reason_detail(warning))}[/]")
    if not verdict.authentic:
        return
    p = verdict.prescription
    issued = p.issued_at.astimezone(rules.PARIS)
    out.print(f"  Prescripteur : {escape(wording.signer(verdict.signer, p.prescriber))}")
    weight = (
        f", {str(p.patient.weight_kg).replace('.', ',')} kg"
        if p.patient.weight_kg is not None
        else ""
    )
    out.print(
        f"  Patient      : {escape(p.patient.family_name.upper())} {escape(p.patient.given_name)}, "
        f"{wording.born(p.patient.sex)} le {p.patient.birth_date:%d/%m/%Y}{weight}"
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
        if line.pack_months:
            flags.append(f"conditionnement {line.pack_months} mois")
        if line.contraceptive:
            flags.append("contraceptif")
        suffix = f" [{', '.join(flags)}]" if flags else ""
        out.print(
            f"  {number}. {escape(line.label)} — {escape(line.posology)} — "
            f"{wording.plural(line.duration_days, 'jour')} — "
            f"{escape(wording.quantity(line.quantity, line.unit))}{escape(suffix)}"
        )
    if p.share_opposition:
        out.print(f"  [dim]{wording.opposition(p.patient.sex)}[/]")
    if verdict.dispensing:
        out.print(f"  Délivrance   : {escape(wording.dispensing_summary(verdict.dispensing))}")
