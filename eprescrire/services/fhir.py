"""Export signed prescriptions (and their dispensings) as FHIR R4 Bundles (``fhir export``).

Each document's signature is checked against its own certificate first: a forged document is
never exported. Files are new and hold patient data (mode 0600)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire import files, ids
from eprescrire.errors import Error, ExitCode, UsageError
from eprescrire.ledger import Ledger
from eprescrire.results import reasons_of, result, status_of
from eprescrire.services.printing import load_signed


@dataclass(frozen=True)
class FhirExportRequest:
    """Export ``documents``; with ``out`` (one document) or ``out_dir`` (ID.fhir.json) write
    files, else hand each Bundle back in its result."""

    documents: tuple[Path, ...]
    out: Path | None = None
    out_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.out is not None and self.out_dir is not None:
            raise UsageError("use --out or --out-dir, not both")
        if self.out is not None and len(self.documents) > 1:
            raise UsageError("--out takes one document; use --out-dir for several")


@dataclass(frozen=True)
class FhirExportResult:
    input: str
    status: str  # exported, rejected, unreadable, failed
    exit_code: ExitCode
    reasons: tuple[dict[str, str], ...] = ()
    id: str | None = None
    out: str | None = None
    bundle: dict[str, Any] | None = None

    @property
    def resources(self) -> int:
        return 0 if self.bundle is None else len(self.bundle["entry"])

    @property
    def dispensings(self) -> int:
        if self.bundle is None:
            return 0
        return sum(
            1
            for entry in self.bundle["entry"]
            if entry["resource"]["resourceType"] == "MedicationDispense"
        )

    def to_json(self) -> dict[str, Any]:
        if self.status != "exported":
            return result(self.input, self.status, self.reasons)
        return result(
            self.input,
            self.status,
            self.reasons,
            id=self.id,
            out=self.out,
            resources=self.resources,
            dispensings=self.dispensings,
        )


def export(request: FhirExportRequest, ledger: Ledger | None = None) -> Iterator[FhirExportResult]:
    """One result per document, in order; one that fails does not stop the others. With a
    ledger, the prescription's dispensings become MedicationDispense resources."""
    from eprescrire.fhir import export as exporter

    if request.out_dir is not None:
        files.make_directory(request.out_dir)
    for name in request.documents:
        try:
            document = load_signed(name)
            pid = document.prescription.id
            records: tuple[Any, ...] = ()
            if ledger is not None:  # this signer's records only (one identifier, one lane)
                from eprescrire.dispensing.lanes import lane
                from eprescrire.keys import kid_of

                signer = kid_of(document.certificates[0])
                records = tuple(lane(ledger.history(pid), signer).records)
            bundle = exporter.document_bundle(document, records)
            target = request.out
            if target is None and request.out_dir is not None:
                target = request.out_dir / f"{ids.file_stem(pid)}.fhir.json"
            if target is not None:
                text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
                files.create(target, (text + "\n").encode("utf-8"), mode=files.PRIVATE)
        except UsageError:
            raise
        except Error as e:
            yield FhirExportResult(str(name), status_of(e), e.exit_code, tuple(reasons_of(e)))
        else:
            yield FhirExportResult(
                str(name),
                "exported",
                ExitCode.OK,
                id=pid,
                out=None if target is None else str(target),
                bundle=bundle,
            )


__all__ = ["FhirExportRequest", "FhirExportResult", "export"]
