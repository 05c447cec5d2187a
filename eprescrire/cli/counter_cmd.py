"""``eprescrire counter``: the counter session (a 2D scanner types one code per line)."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common


def register(app: typer.Typer) -> None:
    app.command("counter")(counter)


def counter(
    trust: Path | None = _common.TRUST_OPTION,
    ledger: str | None = typer.Option(
        None,
        "--ledger",
        help="Show each prescription's dispensing state from this ledger; typed identifiers "
        "are looked up in it.",
    ),
    pharmacist: str | None = typer.Option(
        None,
        "--pharmacist",
        help="RPPS of the pharmacist: enables dispensing from the session (+, +N, +N:Q lines).",
    ),
    pharmacy: str | None = typer.Option(
        None, "--pharmacy", metavar="FINESS", help="FINESS of the pharmacy (with --pharmacist)."
    ),
    at: str | None = typer.Option(
        None, "--at", help="Verify as of this ISO 8601 date/time (default: when each line arrives)."
    ),
    engine: str = typer.Option(
        "zxing", "--engine", help="QR decoding engine for image paths: zxing or zbar."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="One JSON verdict per line on stdout (NDJSON, flushed at once)."
    ),
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify codes as a scanner types them: one per line on stdin, a verdict at once.

    A line is the QR text (ended by CR, LF or CR LF), the path of a scan, PDF or signed JSON file, or an identifier typed from the paper (looked up in --ledger).

    With --ledger and --pharmacist, a line "+" dispenses everything due now on the last valid prescription shown, "+N" line N, "+N:Q" Q units of line N.

    A summary ends the session (Ctrl-D). Exit code as for verify over every verdict: 1 if any was rejected or a dispensing refused, else 3 if any was unreadable, else 0.
    """
    from eprescrire import config, dispensing, results, wording
    from eprescrire.cli import _verify
    from eprescrire.errors import ExitCode, UsageError
    from eprescrire.services import counter

    if engine not in ("zxing", "zbar"):
        raise UsageError("--engine must be zxing or zbar")
    if pharmacist is not None and ledger is None:
        raise UsageError("--pharmacist (dispensing) needs --ledger")
    if pharmacy is not None and pharmacist is None:
        raise UsageError("--pharmacy goes with --pharmacist")
    store = _common.open_trust(trust)
    session = counter.Session(
        store,
        engine=engine,
        at=None if at is None else config.parse_moment(at),
        pharmacist=None if pharmacist is None else dispensing.check_rpps(pharmacist),
        pharmacy=None if pharmacy is None else dispensing.check_finess(pharmacy),
    )
    book = None
    if ledger is not None:
        from eprescrire.ledger import LedgerError, open_ledger

        try:
            book = open_ledger(config.ledger_location(ledger), create=pharmacist is not None)
        except LedgerError as e:
            # Verdicts stand on their own, with a warning; dispensing fails closed (exit 4).
            session.ledger_problem = str(e)
    session.ledger = book
    out = _common.console(stderr=json_output)
    if sys.stdin.isatty() and not quiet:
        _common.console().print(f"[dim]{wording.COUNTER_PROMPT}[/]")
    # Exit codes only: a session may run all day, it keeps no verdict (nor patient data).
    exits: set[int] = set()
    refusals = 0
    # What start-up built (Typer, the modules, the trust store) lives as long as the session:
    # moved out of the collector's way, so that collections scan only what codes allocate.
    write_line = _line_writer()
    gc.freeze()
    try:
        for raw in counter.read_lines(sys.stdin.buffer):
            text = raw.decode("utf-8", errors="replace").strip()
            if counter.DISPENSE_COMMAND.match(text):
                try:
                    done = session.dispense(text)
                except UsageError as e:
                    _common.console().print(
                        f"[yellow]{wording.ignored(wording.reason_detail(str(e)))}[/]"
                    )
                    continue
                refusals += done.exit_code != 0
                if json_output:
                    _common.emit_json(done.result)
                if not quiet:
                    _show_dispensing(out, done.result)
                continue
            for verdict in session.check(text):
                exits.add(verdict.exit_code)
                if json_output:
                    write_line(verdict.to_json_bytes())
                if not quiet:
                    _verify.show_verdict(verdict, to_stderr=json_output)
    except KeyboardInterrupt:
        pass
    finally:
        gc.unfreeze()  # back to the collector (a caller in the same process goes on)
        if book is not None:
            book.close()
    if not quiet:
        line = wording.summary(session.counts)
        if session.pharmacist is not None:
            line += " ; " + wording.dispensings(session.dispensed, session.refused)
        _common.console().print(line)
    code = results.batch_exit(exits)
    if refusals and code != ExitCode.REJECTED:
        code = ExitCode.REJECTED
    raise typer.Exit(int(code))


def _line_writer() -> Any:
    """A function writing one NDJSON line (bytes, without its end) to stdout at once: one
    ``write`` system call on the standard output's descriptor, after what went through
    ``sys.stdout`` before; through ``sys.stdout`` when it has no descriptor (a test runner's).
    When the reader has gone, the rest is thrown away and the session carries on (as
    :func:`eprescrire.cli._output.emit_json_text`)."""
    from eprescrire.cli._output import emit_json_text

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return lambda line: emit_json_text(line.decode("utf-8"))
    flush = sys.stdout.flush

    def write(line: bytes) -> None:
        data = memoryview(line + b"\n")
        try:
            flush()  # anything printed through sys.stdout goes first
            while data:
                data = data[os.write(fd, data) :]
        except BrokenPipeError:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
            except OSError:
                pass

    return write


def _show_dispensing(out: Any, result: dict[str, Any]) -> None:
    from eprescrire import ids, wording
    from eprescrire.cli._output import escape

    colour = "green" if result["status"] == "dispensed" else "red"
    ident = f" {ids.grouped(result['id'])}" if result.get("id") else ""
    out.print(f"[bold {colour}]{wording.status(result['status'])}[/]{ident}")
    for reason in result["reasons"]:
        out.print(f"  [{colour}]✗ {escape(wording.reason(reason['code'], reason['message']))}[/]")
    units = {}
    if result.get("prescription"):
        units = {n: line.get("unit") for n, line in enumerate(result["prescription"]["lines"], 1)}
    for item in result["dispensed"]:
        handed = wording.quantity(item["quantity"], units.get(item["line"]))
        out.print(f"  ✓ ligne {item['line']} : {escape(handed)}")
    if result.get("dispensing"):
        out.print(f"  Délivrance   : {escape(wording.dispensing_summary(result['dispensing']))}")
