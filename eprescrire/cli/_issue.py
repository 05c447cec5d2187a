"""The work of ``eprescrire issue``, without typer: :func:`eprescrire.cli.main` serves a plain
``issue`` invocation through :func:`run` (a batch of hundreds of prescriptions starts sooner
without loading the Typer application), and the Typer command calls the same function."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eprescrire.cli import _output
from eprescrire.cli._output import escape


def run(
    inputs: list[str],
    *,
    key: Path,
    out: Path | None = None,
    out_dir: Path | None = None,
    pdf: Path | None = None,
    qr: Path | None = None,
    with_pdf: bool = False,
    page: str = "A5",
    drugs: Path | None = None,
    jobs: int = 1,
    at: str | None = None,
    json_output: bool = False,
    quiet: bool = False,
    passphrase_file: Path | None = None,
    pin_file: Path | None = None,
    insecure_key: bool = False,
    allow_name_mismatch: bool = False,
) -> int:
    """Issue every input and print what was written; return the exit code (SPEC §3)."""
    from eprescrire.services import context, drug_aid, issuing

    issuing.check_request(out, out_dir, page)
    catalogue = drug_aid.catalogue_for(drugs)
    stdin = sys.stdin.buffer.read() if "-" in inputs else None
    sources = tuple(issuing.read_sources(inputs, stdin))
    issuing.check_sources(sources, out, pdf, qr)
    if str(key).startswith("pkcs11:"):
        jobs = 1  # a token session does not survive fork(): sign in this process
    printers = None
    if min(jobs, len(sources)) > 1 and (with_pdf or pdf is not None or qr is not None):
        from eprescrire.services.print_pool import PrintPool

        # Forked before the key is decrypted: the printing processes load reportlab meanwhile.
        printers = PrintPool.start(min(jobs, len(sources)))
    with printers or contextlib.nullcontext():
        credentials = context.load_credentials(key, passphrase_file, insecure_key, pin_file)
        request = issuing.IssueRequest(
            sources,
            credentials,
            context.moment(at),
            out,
            out_dir,
            pdf,
            qr,
            with_pdf,
            page,
            jobs,
            drugs=catalogue,
            allow_name_mismatch=allow_name_mismatch,
        )
        return _report(issuing.issue(request, printers), len(sources), json_output, quiet)


def _report(results: Iterable[Any], total: int, json_output: bool, quiet: bool) -> int:
    """Print each result as it comes (JSON lines, or a line per input); the exit code."""
    codes: list[int] = []
    with _output.progress(total, "Issuing", enabled=not json_output and not quiet) as step:
        for result in results:
            codes.append(result.exit_code)
            if json_output:
                _output.emit_json(result.to_json())
            if result.status == "issued":
                if not quiet and not json_output:
                    extra = "".join(f", {p}" for p in (result.pdf, result.qr) if p)
                    step.log(f"[green]✓[/] {result.input} → {result.out}{extra}")
                    for notice in result.filled:
                        step.log(escape(f"    {notice['field']} filled: {notice['message']}"))
                    for notice in result.warnings:
                        text = escape(f"{notice['field']}: {notice['message']}")
                        step.log(f"    [yellow]! {text}[/]")
            elif not (quiet and json_output):
                step.log(f"[red]✗[/] {result.input}: {len(result.reasons)} problem(s)")
                for reason in result.reasons:
                    field = f"{reason['field']}: " if reason.get("field") else ""
                    step.log(f"    {field}{reason['message']}")
            step.advance()
    issued = sum(code == 0 for code in codes)
    if total > 1 and not quiet:
        _output.console().print(f"{issued} issued, {total - issued} not issued")
    return _output.report_exit(codes)
