"""The work of ``eprescrire drugs search``, without typer: :func:`eprescrire.cli.main` serves a
plain ``drugs search`` through :func:`run` directly (a prescriber's look-up should not pay the
whole command line's start-up), and the Typer command calls the same function."""

from __future__ import annotations

import argparse
from pathlib import Path

from eprescrire.cli import _output
from eprescrire.errors import UsageError

LIMIT = (1, 1000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``drugs search`` (kept identical to the Typer command's by a test)."""
    parser.add_argument("text", nargs="+")
    parser.add_argument("--limit", "-n", type=int, default=20)
    parser.add_argument("--catalogue", type=Path)
    parser.add_argument("--json", dest="json_output", action="store_true")
    parser.add_argument("--verbose", action="store_true")


def run(
    text: list[str], *, limit: int = 20, catalogue: Path | None = None, json_output: bool = False
) -> int:
    """Search the catalogue and print the hits, best first; return the exit code."""
    from eprescrire.drugs import catalogue_path
    from eprescrire.drugs.catalogue import open_catalogue
    from eprescrire.drugs.interface import hit_to_json

    query = " ".join(text).strip()
    if not query:
        raise UsageError("search: give a name, a substance or a code")
    with open_catalogue(catalogue_path(catalogue)) as opened:
        hits = opened.search(query, limit)
        source_date = opened.info().source_date if json_output else None
    if json_output:
        _output.emit_json(
            {"query": query, "source_date": source_date, "results": [hit_to_json(h) for h in hits]}
        )
        return 0
    out = _output.console(stderr=False)
    if not hits:
        _output.console().print(f"no drug matches {_output.escape(query)!r}")
        return 0
    for hit in hits:
        flag = "" if hit.marketed else " [dim](non commercialisé)[/]"
        code = f" [dim]CIP13 {hit.cip13}[/]" if hit.cip13 else ""
        out.print(f"{hit.cis}  {_output.escape(hit.name)}{flag}{code}")
        if hit.substances:
            out.print(f"          [dim]{_output.escape(', '.join(hit.substances))}[/]")
    return 0
