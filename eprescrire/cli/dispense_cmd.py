"""``eprescrire dispense``: parse, call :mod:`eprescrire.services.dispense`, print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common, _views
from eprescrire.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command("dispense")(dispense)


def dispense(
    inputs: list[str] | None = typer.Argument(
        None,
        metavar="INPUT...",
        help="Scans/photos/PDFs, signed JSON, QR text files, or - for QR text on stdin (one code each).",
    ),
    pharmacist: str | None = typer.Option(
        None, "--pharmacist", help="RPPS of the dispensing pharmacist (11 digits, Luhn key)."
    ),
    line: int | None = typer.Option(
        None, "--line", help="Dispense this line only (numbered from 1, as printed)."
    ),
    quantity: int | None = typer.Option(
        None, "--quantity", help="With --line: units to hand over (default: all that is due now)."
    ),
    all_lines: bool = typer.Option(
        False, "--all", help="Dispense everything that is due now on every line."
    ),
    substitute: str | None = typer.Option(
        None,
        "--substitute",
        metavar="CIP13_OR_LABEL",
        help="With --line: the generic handed over instead, by CIP13 (checked against the "
        "prescribed drug's generic group with a drug catalogue) or by label; refused on a "
        "line marked « non substituable ».",
    ),
    pharmacy: str | None = typer.Option(
        None,
        "--pharmacy",
        metavar="FINESS",
        help="FINESS of the pharmacy (9 characters, Luhn key).",
    ),
    batch_file: Path | None = typer.Option(
        None,
        "--batch",
        metavar="FILE.csv",
        help="A day's dispensings, one per row: input,line,quantity,substitute,pharmacist,"
        "pharmacy,handed_over.",
    ),
    handed_over: str | None = typer.Option(
        None,
        "--handed-over",
        metavar="DATETIME",
        help="Record a hand-over that happened earlier (ledger unreachable, paper register): "
        "ISO 8601 date and time, at most 7 days back, not before the prescription's latest "
        "record. Decided at the real time all the same; both times are recorded.",
    ),
    drugs: Path | None = _common.DRUGS_OPTION,
    jobs: int = _common.jobs_option("verify"),
    trust: Path | None = _common.TRUST_OPTION,
    ledger: str | None = _common.LEDGER_OPTION,
    at: str | None = _common.WRITE_AT_OPTION,
    engine: str = _common.ENGINE_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify prescriptions, then record what is handed over in the ledger (refusing what the
    prescription or the law does not allow).

    Several inputs get the same request; --batch FILE.csv gives one request per row. Inputs are
    verified (with --jobs processes) and recorded one after the other, in order; one refused or
    unreadable input does not stop the others. With --json, one object per input:
    {"input", "status": "dispensed"|"refused"|"rejected"|"unreadable", "id", "reasons",
    "dispensed", "dispensing", ...}.

    With a drug catalogue (--drugs, EPRESCRIRE_DRUGS, or drugs.sqlite3 under EPRESCRIRE_HOME),
    a substitute must be the prescribed drug or in its generic group (BDPM CIS_GENER), else it
    is refused (substitution_forbidden). Without one, a CIP13 substitute is recorded with a
    warning that it was not checked.
    """
    from eprescrire import rules
    from eprescrire.services import context, drug_aid
    from eprescrire.services import dispense as service

    _common.refuse_write_clock(
        at, "dispense", "; to record an earlier hand-over, use --handed-over DATETIME"
    )
    context.check_engine(engine)
    when = rules.now()
    stated = None if handed_over is None else service.parse_handed_over(handed_over)
    if batch_file is not None:
        if inputs:
            raise UsageError("give inputs on the command line or --batch FILE.csv, not both")
        if line is not None or quantity is not None or all_lines or substitute is not None:
            raise UsageError("with --batch, lines and quantities come from the CSV rows")
        if stated is not None:
            raise UsageError("with --batch, an earlier hand-over goes in the handed_over column")
        items = service.read_batch(batch_file, pharmacist=pharmacist, pharmacy=pharmacy, at=when)
    else:
        if not inputs:
            raise UsageError("give the prescriptions to dispense, or --batch FILE.csv")
        if pharmacist is None:
            raise UsageError("--pharmacist is required")
        if all_lines and line is not None:
            raise UsageError(
                "--all and --line exclude each other: --all dispenses every line, --line N one"
            )
        if not all_lines and line is None:
            raise UsageError("say what to dispense: --line N [--quantity Q] or --all")
        request = service.request_for(
            pharmacist,
            line=line,
            quantity=quantity,
            substitute=substitute,
            pharmacy=pharmacy,
            handed_over=stated,
        )
        items = tuple(service.DispenseItem(name, request, when) for name in inputs)
    service.check_items(items)
    store = _common.open_trust(trust)
    catalogue = drug_aid.catalogue_for(drugs) if _substitutes(items) else None
    from eprescrire.cli import read_stdin

    stdin = read_stdin() if any(item.input == "-" for item in items) else b""
    codes: list[int] = []
    with (
        _common.open_ledger(ledger, create=True) as book,
        _common.progress(len(items), "Dispensing", enabled=not json_output and not quiet) as step,
    ):
        job = service.DispenseRequest(items, store, book, engine, jobs, stdin, drugs=catalogue)
        for result in service.dispense(job):
            codes.append(result.exit_code)
            _views.report_dispensing(result.to_json(), json_output, quiet)
            step.advance()
    if len(items) > 1 and not quiet:
        done = sum(code == 0 for code in codes)
        from eprescrire import wording

        _common.console().print(
            f"{wording.plural(len(items), 'ordonnance')} : {wording.plural(done, 'délivrée')}, "
            f"{wording.plural(len(items) - done, 'non délivrée', 'non délivrées')}"
        )
    raise typer.Exit(_common.report_exit(codes))


def _substitutes(items: tuple[Any, ...]) -> bool:
    """Does any item hand over a substitute? Only then is the drug catalogue opened."""
    from eprescrire.dispensing import Request

    return any(isinstance(i.request, Request) and i.request.substitute for i in items)
