"""``eprescrire fhir export``: signed prescriptions (and their dispensings) -> FHIR R4 Bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import Error, ExitCode, InputError, Reason, UsageError, VerificationError

MAX_DOCUMENT_BYTES = 1 << 20

fhir_app = typer.Typer(
    help="FHIR R4 (ANS ePrescription guide, FR Core): export signed prescriptions.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(fhir_app, name="fhir")


def _load(name: Path) -> Any:
    """The signed document in ``name``, its signature checked against its own certificate
    (exit 1 when it does not hold: a forged document is never exported)."""
    from eprescrire import signing

    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError as e:
        raise InputError(f"{name}: no such file") from e
    except IsADirectoryError as e:
        raise InputError(f"{name}: is a directory, not a signed document") from e
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror})") from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{name}: too large for a signed document")
    try:
        return signing.load_document(data)
    except VerificationError as e:
        if e.reason == Reason.SIGNATURE_INVALID:
            raise VerificationError(e.reason, f"{name}: {e}") from e
        raise InputError(f"{name}: not a readable signed document ({e})") from e


def _history(handle: Any, prescription_id: str) -> tuple[Any, ...]:
    return tuple(handle.history(prescription_id).records)


@fhir_app.command("export")
def export(
    documents: list[Path] = typer.Argument(..., help="Signed JSON documents (from `issue`)."),
    ledger: str | None = typer.Option(
        None,
        "--ledger",
        help="Also export each prescription's dispensings from this ledger (path or URL).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the Bundle here (one document only; never overwritten)."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.fhir.json, one Bundle per document."
    ),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Export signed prescriptions as FHIR R4 (4.0.1) Bundles (ANS ePrescription, FR Core).

    One Bundle per document: FRMedicationRequest per line sharing groupIdentifier, Practitioner
    (RPPS), Organization (FINESS), Patient (INS-NIR), and the signed JWS in a Provenance. With
    --ledger, each dispensing as a FR Core MedicationDispense. Without --out/--out-dir, the
    Bundles go to stdout, one JSON object per line. Files are created 0600 (patient data).
    """
    from eprescrire.fhir import export as exporter

    if out is not None and out_dir is not None:
        raise UsageError("use --out or --out-dir, not both")
    if out is not None and len(documents) > 1:
        raise UsageError("--out takes one document; use --out-dir for several")
    if json_output and out is None and out_dir is None:
        raise UsageError(
            "--json reports on files: give --out or --out-dir (stdout holds the Bundles)"
        )
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create {out_dir}: {e.strerror}") from e
    handle = None
    if ledger is not None:
        from eprescrire import config
        from eprescrire.ledger import open_ledger

        handle = open_ledger(config.ledger_location(ledger), create=False)
    say = _common.console()
    codes: list[int] = []
    try:
        for name in documents:
            summary: dict[str, Any] = {"input": str(name)}
            try:
                document = _load(name)
                records = () if handle is None else _history(handle, document.prescription.id)
                bundle = exporter.document_bundle(document, records)
                text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
                if out is None and out_dir is None:
                    _common.emit_json(bundle)
                    target = None
                else:
                    target = out or out_dir / f"{document.prescription.id}.fhir.json"  # type: ignore[operator]
                    from eprescrire import files

                    files.create(target, (text + "\n").encode("utf-8"), mode=0o600)
            except UsageError:
                raise
            except Error as e:
                codes.append(int(e.exit_code))
                summary.update(status="error", error=e.diagnostics())
                say.print(f"[red]✗[/] {_common.escape(e.diagnostics())}")
            else:
                codes.append(int(ExitCode.OK))
                dispensed = sum(
                    1
                    for entry in bundle["entry"]
                    if entry["resource"]["resourceType"] == "MedicationDispense"
                )
                summary.update(
                    status="exported",
                    id=document.prescription.id,
                    out=None if target is None else str(target),
                    resources=len(bundle["entry"]),
                    dispensings=dispensed,
                )
                if not quiet and target is not None:
                    say.print(
                        f"[green]✓[/] {_common.escape(str(name))} → {_common.escape(str(target))}"
                        f" ({len(bundle['entry'])} resources, {dispensed} dispensing(s))"
                    )
            if json_output:
                _common.emit_json(summary)
    finally:
        if handle is not None:
            handle.close()
    raise typer.Exit(_common.batch_exit(codes))
