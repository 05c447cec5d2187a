"""``ledger verify|export|checkpoint|import``: parse, call :mod:`eprescrire.services.ledger`,
print. Exit codes: 0 done, 1 tampered or refused, 2 usage, 3 unreadable input, 4 ledger or key
unavailable."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from eprescrire.cli import _common

ledger_app = typer.Typer(
    name="ledger",
    help="Check the ledger's hash chain, export it, checkpoint its head, import cancellations.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify(
    ledger: str | None = _common.LEDGER_OPTION,
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A signed checkpoint: also detect truncation or an older copy."
    ),
    trust: Path | None = typer.Option(
        None,
        "--trust",
        help="With --checkpoint (required): its signer must be a pharmacy certificate "
        "chaining to this trust store (env: EPRESCRIRE_TRUST).",
    ),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Recompute the hash chain, run the storage's own integrity check and compare the schema
    with the one the migrations define: exit 0 intact, 1 tampered (naming the first bad record
    and every foreign, missing or altered table, column, index, trigger or view)."""
    from eprescrire.services import ledger as service

    saved = None
    if checkpoint is not None:
        import os

        # Without a trust store anyone's key could have signed the checkpoint: refused.
        named = trust is not None or bool(os.environ.get("EPRESCRIRE_TRUST"))
        store = _common.open_trust(trust) if named else None
        saved = service.read_checkpoint(checkpoint, store)
    with _common.open_ledger(ledger, create=False) as book:
        check = service.verify_chain(book, saved)
    if json_output:
        _common.emit_json(check.to_json())
    if not quiet or not check.ok:
        out = _common.console(stderr=json_output)
        report = check.report
        if check.ok:
            extra = f"; matches the checkpoint of {saved.at} (record {saved.seq})" if saved else ""
            out.print(
                f"[bold green]INTACT[/] {report.records} record(s), chain and integrity check ok{extra}"
            )
        else:
            out.print("[bold red]TAMPERED[/]")
            if report.problem:
                out.print(f"  first bad record: {report.first_bad}: {report.problem}")
            if not report.storage_ok:
                out.print(f"  integrity check: {'; '.join(report.integrity[:5])}")
            for problem in report.schema:
                out.print(f"  schema: {_common.escape(problem)}")
            if check.behind:
                out.print(f"  checkpoint: {check.behind}")
    raise typer.Exit(int(check.exit_code))


def _sequence_number(value: int) -> int:
    """A sequence number the ledger can hold (SQLite and PostgreSQL integers are 64-bit)."""
    if value > _LAST_SEQUENCE:
        raise typer.BadParameter(f"at most {_LAST_SEQUENCE}")
    return value


_LAST_SEQUENCE = 2**62


@ledger_app.command("export")
def ledger_export(
    ledger: str | None = _common.LEDGER_OPTION,
    format_: str = typer.Option(
        "jsonl",
        "--format",
        help="jsonl (one JSON object per record), csv, or fhir (the dispensings as one FHIR R4 "
        "Bundle of MedicationDispense resources).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write here, a new file (default: stdout)."
    ),
    after: int = typer.Option(
        0,
        "--after",
        min=0,
        callback=_sequence_number,
        help="Only records with a sequence number above this.",
    ),
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Export every record (with its hashes) as JSON lines or CSV, or the dispensings as a FHIR
    R4 Bundle of FR Core MedicationDispense resources (one line of JSON)."""
    from eprescrire import files
    from eprescrire.services import ledger as service

    service.check_export_format(format_)
    if out is not None:
        files.check_target(out)
    with _common.open_ledger(ledger, create=False) as book:
        if out is None:
            service.export(book, sys.stdout, format_=format_, after=after)
        else:
            service.export_to_file(book, out, format_=format_, after=after)


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    key: Path = typer.Option(
        ..., "--key", help="PKCS#12 file or pkcs11: URI that signs the checkpoint (the pharmacy's)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the signed checkpoint; keep it away from the ledger."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Write a signed checkpoint of the ledger's head (sequence number, hash, time)."""
    from eprescrire.services import ledger as service

    credentials = _common.load_credentials(key, passphrase_file, insecure_key, pin_file)
    when = _common.moment(at)
    with _common.open_ledger(ledger, create=False) as book:
        result = service.checkpoint(book, credentials, out, when)
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        _common.console(stderr=json_output).print(
            f"Checkpoint of record {result.checkpoint.seq} written to {out}"
        )


@ledger_app.command("import")
def ledger_import(
    files: list[Path] = typer.Argument(
        ...,
        help="Signed cancellation files (from `cancel --out`), or SQLite ledgers to move into "
        "a shared (postgresql://) ledger.",
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Import signed cancellations made elsewhere: recorded only when signed by the
    prescription's own signer."""
    from eprescrire.services import ledger as service
    from eprescrire.services import shared_ledger

    if files and all(shared_ledger.is_sqlite_ledger(f) for f in files):
        for moved in shared_ledger.import_ledgers(ledger, files):
            if json_output:
                _common.emit_json(moved.to_json())
            if not quiet:
                _common.console(stderr=json_output).print(
                    f"[bold green]IMPORTED[/] {moved.input}: {moved.records} record(s), "
                    f"{moved.prescriptions} prescription(s)"
                )
        return
    codes: list[int] = []
    with _common.open_ledger(ledger, create=True) as book:
        for result in service.import_cancellations(book, files):
            codes.append(result.exit_code)
            if json_output:
                _common.emit_json(result.to_json())
            if not quiet:
                out = _common.console(stderr=json_output)
                colour = "green" if result.status == "imported" else "red"
                out.print(f"[bold {colour}]{result.status.upper()}[/] {result.input}")
                for reason in result.reasons:
                    out.print(f"  ✗ {reason['code']}: {reason['message']}")
                for note in result.notes:
                    out.print(f"  {note}")
    raise typer.Exit(_common.report_exit(codes))
