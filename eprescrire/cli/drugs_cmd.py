"""``eprescrire drugs import|update|search|show|info``: the BDPM drug reference.

Parse, call :mod:`eprescrire.drugs`, print. Exit codes: 0 done, 2 usage, 3 missing or bad BDPM
files / unknown code, 4 no catalogue (run ``drugs import``), unreadable catalogue, or a failed
download. Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import UsageError

drugs_app = typer.Typer(
    name="drugs",
    help="The BDPM drug reference: import or update the catalogue, search it, show a drug.",
    no_args_is_help=True,
)

CATALOGUE_OPTION = typer.Option(
    None,
    "--catalogue",
    help="Catalogue file (env: EPRESCRIRE_DRUGS; default: drugs.sqlite3 under EPRESCRIRE_HOME).",
    show_default=False,
)
STRICT_OPTION = typer.Option(
    False, "--strict", help="Refuse the files if any row is malformed (default: skip and report)."
)
SHOWN_PROBLEMS = 20


def register(app: typer.Typer) -> None:
    app.add_typer(drugs_app, name="drugs")


def _out(json_output: bool) -> Any:
    return _common.console(stderr=json_output)


def _open(catalogue: Path | None) -> Any:
    from eprescrire.drugs import catalogue_path
    from eprescrire.drugs.catalogue import open_catalogue

    return open_catalogue(catalogue_path(catalogue))


def _report(report: Any, json_output: bool, quiet: bool) -> None:
    from eprescrire.drugs.interface import info_to_json

    if json_output:
        _common.emit_json(
            {
                **info_to_json(report.info),
                "problems": [
                    {"file": p.file, "line": p.line, "message": p.message, "skipped": p.skipped}
                    for p in report.problems
                ],
                "orphans": report.orphans,
            }
        )
    out = _out(json_output)
    for problem in report.problems[:SHOWN_PROBLEMS]:
        # Malformed rows are shown even with --quiet: they are what an operator must see.
        _common.console().print(f"[yellow]{_common.escape(str(problem))}[/]")
    if len(report.problems) > SHOWN_PROBLEMS:
        _common.console().print(
            f"[yellow]... and {len(report.problems) - SHOWN_PROBLEMS} more malformed row(s)[/]"
        )
    if quiet:
        return
    info = report.info
    skipped = sum(1 for p in report.problems if p.skipped)
    out.print(
        f"[green]Imported[/] {info.drugs} drugs, {info.presentations} presentations "
        f"(files of {info.source_date}) into {_common.escape(info.location)}"
        + (f"; {skipped} malformed row(s) skipped" if skipped else "")
    )
    for f in info.files:
        out.print(f"  {f.name}: {f.rows} rows, {f.encoding}, {f.line_ending}")


def _day(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise UsageError(f"--date: {text!r} is not a date YYYY-MM-DD") from e


@drugs_app.command("import")
def import_(
    directory: Path = typer.Argument(
        ...,
        help="Directory holding CIS_bdpm.txt, CIS_CIP_bdpm.txt, CIS_COMPO_bdpm.txt, CIS_GENER_bdpm.txt, CIS_CPD_bdpm.txt.",
        show_default=False,
    ),
    catalogue: Path | None = CATALOGUE_OPTION,
    date: str | None = typer.Option(
        None, "--date", help="Date of the files, YYYY-MM-DD (default: the newest file's date)."
    ),
    strict: bool = STRICT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Import the five BDPM files (Windows-1252 or UTF-8, CRLF or LF) into the catalogue.

    The new catalogue replaces the old one only when the import succeeded. Malformed rows are
    reported with their file and line. With --json: {"catalogue", "source_date",
    "imported_at", "drugs", "presentations", "files", "problems", "orphans"}.
    """
    from eprescrire.drugs import catalogue_path
    from eprescrire.drugs.catalogue import import_directory

    source_date = _day(date)
    report = import_directory(
        directory, catalogue_path(catalogue), source_date=source_date, strict=strict
    )
    _report(report, json_output, quiet)


@drugs_app.command("update")
def update(
    catalogue: Path | None = CATALOGUE_OPTION,
    url: str | None = typer.Option(
        None,
        "--url",
        help="Base URL of the files (env: EPRESCRIRE_BDPM_URL; default: https://base-donnees-publique.medicaments.gouv.fr/download/file/).",
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=1, max=3600, help="Seconds per file."),
    keep: Path | None = typer.Option(
        None, "--keep", help="Also keep the downloaded files in this directory."
    ),
    strict: bool = STRICT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Download the five BDPM files from the ANSM's site, then import them.

    A failed download leaves the catalogue as it was (exit 4). Output as for `drugs import`.
    """
    from eprescrire.drugs import catalogue_path
    from eprescrire.drugs.download import update as run_update

    target = catalogue_path(catalogue)
    if not quiet and not json_output:
        _out(False).print("Downloading the BDPM files...")
    report = run_update(target, url=url, timeout=timeout, strict=strict, keep=keep)
    _report(report, json_output, quiet)


@drugs_app.command("search")
def search(
    text: list[str] = typer.Argument(
        ..., help="Name, substance or code (CIS, CIP13, CIP7); accents and case do not matter."
    ),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="Most results shown."),
    catalogue: Path | None = CATALOGUE_OPTION,
    json_output: bool = _common.JSON_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Search drugs by name, substance or code, best match first.

    Every word must match the start of a word of the name or of a substance. With --json:
    {"query", "source_date", "results": [{"cis", "name", "marketed", "substances", "matched",
    "cip13"}]}.
    """
    from eprescrire.cli import _drugs_search

    _drugs_search.run(text, limit=limit, catalogue=catalogue, json_output=json_output)


def _money(cents: int | None) -> str:
    """French style: ``4 768,73 €``."""
    if cents is None:
        return ""
    return f"{cents // 100:,}".replace(",", "\u202f") + f",{cents % 100:02d} €"


@drugs_app.command("show")
def show(
    code: str = typer.Argument(..., help="CIS (8 digits), CIP13 (13 digits) or CIP7 (7 digits)."),
    catalogue: Path | None = CATALOGUE_OPTION,
    json_output: bool = _common.JSON_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Show a drug by CIS or CIP13: status, substances, conditions, packs, generic groups.

    Conditions are read into list I/II, narcotic, hospital-only and duration limits. With
    --json: the drug object, with "presentation" (the CIP13 asked for) and "source_date"."""
    import re

    from eprescrire.drugs.interface import UnknownDrug, drug_to_json, presentation_to_json

    compact = re.sub(r"[\s.-]", "", code)
    if not (compact.isdigit() and len(compact) in (7, 8, 13)):
        raise UnknownDrug(f"{code!r} is not a CIS (8 digits), CIP13 (13) or CIP7 (7)")
    with _open(catalogue) as opened:
        found = opened.lookup(compact)
        if found is None:
            raise UnknownDrug(f"no drug or presentation {compact} in the catalogue")
        drug, presentation = found
        members = {
            g.group_id: [(m, opened.drug(m.cis)) for m in opened.group_members(g.group_id)]
            for g in drug.groups
        }
        source_date = opened.info().source_date
    if json_output:
        _common.emit_json(
            {
                **drug_to_json(drug),
                "presentation": presentation_to_json(presentation) if presentation else None,
                "source_date": source_date,
            }
        )
        return
    out = _out(False)
    e = _common.escape
    rule = drug.regulation
    out.print(f"[bold]{e(drug.name)}[/]")
    out.print(f"CIS {drug.cis} · {e(drug.authorisation)} · {e(drug.marketing)}")
    if drug.holders:
        out.print(f"Titulaire : {e(', '.join(drug.holders))}")
    if drug.routes:
        out.print(f"Voie(s) : {e(', '.join(drug.routes))}")
    badges = []
    if rule.narcotic:
        badges.append("[bold red]stupéfiant[/]")
    if rule.list:
        badges.append(f"liste {rule.list}")
    if rule.hospital == "reserve":
        badges.append("[bold]réserve hospitalière[/]")
    elif rule.hospital == "prescription":
        badges.append("prescription hospitalière")
    elif rule.hospital == "initial":
        badges.append("prescription initiale hospitalière")
    if rule.max_days is not None:
        badges.append(f"prescription limitée à {rule.max_days} jours")
    if badges:
        out.print(" · ".join(badges))
    for component in drug.components:
        out.print(f"  {e(component.substance)} {e(component.dosage)} ({e(component.reference)})")
    for condition in drug.conditions:
        out.print(f"  [dim]{e(condition)}[/]")
    out.print("Présentations :")
    for p in drug.presentations:
        mark = "→ " if presentation is not None and p.cip13 == presentation.cip13 else "  "
        state = " [yellow](retirée)[/]" if p.withdrawn else ""
        rate = f" {p.reimbursement_rate} %" if p.reimbursement_rate is not None else ""
        out.print(f"{mark}{p.cip13}  {e(p.label)}{state} {_money(p.price_cents)}{rate}")
    for g in drug.groups:
        out.print(f"Groupe générique {g.group_id} ({g.role}) : {e(g.group_label)}")
        for member, other in members[g.group_id]:
            if member.cis != drug.cis:
                name = other.name if other else "(absent de CIS_bdpm.txt)"
                out.print(f"  [dim]{member.cis}  {e(name)} ({member.role})[/]")
    out.print(f"[dim]BDPM du {source_date}[/]")


@drugs_app.command("info")
def info(
    catalogue: Path | None = CATALOGUE_OPTION,
    json_output: bool = _common.JSON_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Where the catalogue is, the date of its files and what they held."""
    from eprescrire.drugs.interface import info_to_json

    with _open(catalogue) as opened:
        about = opened.info()
    if json_output:
        _common.emit_json(info_to_json(about))
        return
    out = _out(False)
    out.print(f"{_common.escape(about.location)}: BDPM files of {about.source_date}")
    out.print(
        f"imported {about.imported_at}: {about.drugs} drugs, {about.presentations} presentations"
    )
    for f in about.files:
        out.print(f"  {f.name}: {f.rows} rows, {f.skipped} skipped, {f.encoding}, {f.line_ending}")
