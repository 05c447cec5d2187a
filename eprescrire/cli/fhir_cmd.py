"""``eprescrire fhir export``: signed prescriptions (and their dispensings) -> FHIR R4 Bundles."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from eprescrire.cli import _common
from eprescrire.errors import UsageError

fhir_app = typer.Typer(
    help="FHIR R4 (ANS ePrescription guide, FR Core): export signed prescriptions.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(fhir_app, name="fhir")


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
    from eprescrire.services import fhir

    request = fhir.FhirExportRequest(tuple(documents), out, out_dir)
    if json_output and out is None and out_dir is None:
        raise UsageError(
            "--json reports on files: give --out or --out-dir (stdout holds the Bundles)"
        )
    say = _common.console()
    codes: list[int] = []
    with (
        _common.open_ledger(ledger, create=False)
        if ledger is not None
        else contextlib.nullcontext()
    ) as book:
        for item in fhir.export(request, book):
            codes.append(int(item.exit_code))
            if item.bundle is not None and item.out is None:
                _common.emit_json(item.bundle)
            elif item.status != "exported":
                for reason in item.reasons:
                    say.print(f"[red]✗[/] {_common.escape(reason['message'])}")
            elif not quiet:
                say.print(
                    f"[green]✓[/] {_common.escape(item.input)} → {_common.escape(str(item.out))}"
                    f" ({item.resources} resources, {item.dispensings} dispensing(s))"
                )
            if json_output:
                _common.emit_json(item.to_json())
    raise typer.Exit(_common.report_exit(codes))
