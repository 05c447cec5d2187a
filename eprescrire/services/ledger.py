"""The ledger as a whole: ``ledger verify``, ``export``, ``checkpoint`` and ``import``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eprescrire import cancellation, files
from eprescrire.dispensing import Refused, record_cancellation
from eprescrire.errors import ExitCode, InputError, Reason, UsageError, VerificationError
from eprescrire.keys import Credentials
from eprescrire.ledger import ChainReport, Ledger
from eprescrire.ledger import checkpoint as checkpoints
from eprescrire.results import reason, result
from eprescrire.trust import TrustStore

# --------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class ChainCheck:
    """What ``ledger verify`` found, against a signed checkpoint when one was given."""

    ledger: str
    report: ChainReport
    checkpoint: Any = None  # eprescrire.ledger.checkpoint.Checkpoint
    behind: str | None = None  # why the ledger does not match the checkpoint

    @property
    def ok(self) -> bool:
        return self.report.ok and self.behind is None

    @property
    def status(self) -> str:
        return "intact" if self.ok else "tampered"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.REJECTED

    def to_json(self) -> dict[str, Any]:
        reasons = []
        if self.report.problem:
            reasons.append(
                reason(
                    Reason.MALFORMED,
                    f"record {self.report.first_bad}: {self.report.problem}",
                )
            )
        for problem in self.report.schema:
            reasons.append(reason(Reason.MALFORMED, f"schema: {problem}"))
        if not self.report.storage_ok:
            reasons.append(reason(Reason.MALFORMED, "; ".join(self.report.integrity[:5])))
        if self.behind:
            reasons.append(reason(Reason.MALFORMED, f"checkpoint: {self.behind}"))
        shown = result(self.ledger, self.status, reasons)
        shown |= self.report.to_json() | {"ledger": self.ledger}
        if self.checkpoint is not None:
            shown["checkpoint"] = self.checkpoint.to_json() | {
                "ok": self.ok,
                "problem": self.behind,
            }
        return shown


def read_checkpoint(path: Path, store: TrustStore | None) -> Any:
    """A signed checkpoint file, whose signer must be a pharmacy certificate chaining to
    ``store`` (checked at the checkpoint's time, revocation as known now). Without a trust
    store, any key could have signed it: raises UsageError. Raises InputError otherwise."""
    if store is None:
        raise UsageError(
            "--checkpoint needs a trust store (--trust or EPRESCRIRE_TRUST): without one, "
            "anyone's key could have signed the checkpoint"
        )
    try:
        saved = checkpoints.read(path.read_bytes())
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e
    except VerificationError as e:
        raise InputError(f"{path}: {e}") from e
    try:
        at = dt.datetime.strptime(saved.at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as e:
        raise InputError(f"{path}: the checkpoint's time is not a date: {saved.at!r}") from e
    try:
        store.validate(saved.certificate, [], at, profile="pharmacy")
    except VerificationError as e:
        raise InputError(
            f"{path}: signer not trusted: {e} (a checkpoint is signed with pharmacy "
            "credentials, `eprescrire keys pharmacy`)"
        ) from e
    return saved


def verify_chain(ledger: Ledger, checkpoint: Any = None) -> ChainCheck:
    """Recompute the hash chain, run the storage's own integrity check and, with a checkpoint,
    detect truncation or an older copy."""
    report = ledger.verify()
    behind = None
    if checkpoint is not None and report.problem is None:
        behind = checkpoints.compare(ledger, checkpoint)
    return ChainCheck(ledger.location, report, checkpoint, behind)


# --------------------------------------------------------------------------------------------
# export

EXPORT_FORMATS = ("jsonl", "csv", "fhir")
EXPORT_COLUMNS = ("seq", "kind", "prescription_id", "recorded_at", "body", "prev_hash", "hash")


def check_export_format(format_: str) -> str:
    if format_ not in EXPORT_FORMATS:
        raise UsageError("--format must be jsonl, csv or fhir")
    return format_


def export(ledger: Ledger, stream: IO[str], *, format_: str = "jsonl", after: int = 0) -> int:
    """Write every record with ``seq > after`` (with its hashes) to ``stream`` as JSON lines
    or CSV, or its dispensings as one FHIR Bundle (:func:`export_fhir`); returns how many
    records (FHIR: MedicationDispense resources) were written."""
    check_export_format(format_)
    if format_ == "fhir":
        return export_fhir(ledger, stream, after=after)
    writer = csv.writer(stream) if format_ == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    count = 0
    for record in ledger.records(after):
        item = record.to_json()
        if writer is not None:
            item["body"] = json.dumps(
                record.body, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
            writer.writerow([item[c] for c in EXPORT_COLUMNS])
        else:
            stream.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def export_fhir(ledger: Ledger, stream: IO[str], *, after: int = 0) -> int:
    """The dispensing records with ``seq > after`` as one FHIR R4 Bundle (one line of JSON) of
    FR Core MedicationDispense resources (:func:`eprescrire.fhir.export.dispensings_bundle`).

    Each dispensing is described from its prescription as the ledger recorded it, decoded from
    its JWS and checked against the certificate stored with it (the prescription record may
    precede ``after``); a dispensing whose prescription does not check is left out."""
    from eprescrire.fhir import export as fhir

    records = [r for r in ledger.records(after) if r.kind == "dispensing"]
    ids = dict.fromkeys(r.prescription_id for r in records)
    prescriptions = fhir.prescriptions_from_records(
        r for pid in ids for r in ledger.history(pid).records if r.kind == "prescription"
    )
    bundle = fhir.dispensings_bundle(records, prescriptions)
    stream.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n")
    return len(bundle["entry"])


def export_to_file(ledger: Ledger, path: Path, *, format_: str = "jsonl", after: int = 0) -> int:
    """:func:`export` into a new file (patient data: mode 0600); an existing file is never
    overwritten and a failed export leaves no file."""
    check_export_format(format_)
    with files.creating(path, mode=files.PRIVATE) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            count = export(ledger, text, format_=format_, after=after)
            text.flush()
        finally:
            text.detach()
    return count


# --------------------------------------------------------------------------------------------
# checkpoint


@dataclass(frozen=True)
class CheckpointResult:
    out: str
    checkpoint: Any  # eprescrire.ledger.checkpoint.Checkpoint

    status = "written"

    def to_json(self) -> dict[str, Any]:
        saved: dict[str, Any] = self.checkpoint.to_json()
        return result(self.out, self.status) | saved | {"out": self.out}


class DamagedLedger(VerificationError):
    """The ledger fails its own check: no checkpoint is signed over it (exit 1)."""


def check_pharmacy_key(credentials: Credentials) -> None:
    """Checkpoints are signed with pharmacy credentials only (``keys pharmacy``): a
    prescriber's key, or any other, is refused. Raises UsageError."""
    from eprescrire.pharmacy import identity_of

    if identity_of(credentials.certificate) is None:
        raise UsageError(
            "--key is not a pharmacy credential: checkpoints are signed with a key from "
            "`eprescrire keys pharmacy` (a prescriber's key does not sign them)"
        )


def checkpoint(
    ledger: Ledger, credentials: Credentials, out: Path, at: dt.datetime
) -> CheckpointResult:
    """Sign a checkpoint of the ledger's head and write it to ``out`` (a new file). Raises
    :class:`DamagedLedger` when the chain does not verify."""
    check_pharmacy_key(credentials)
    files.check_target(out)
    report = ledger.verify()
    if not report.ok:
        raise DamagedLedger(
            Reason.MALFORMED,
            f"refusing to checkpoint a damaged ledger: record {report.first_bad}: {report.problem}",
        )
    data, saved = checkpoints.write(ledger, credentials, at)
    files.create(out, data, mode=files.PRIVATE)
    return CheckpointResult(str(out), saved)


# --------------------------------------------------------------------------------------------
# import


@dataclass(frozen=True)
class ImportResult:
    input: str
    status: str  # imported, refused, rejected, unreadable
    exit_code: ExitCode
    reasons: tuple[dict[str, str], ...] = ()
    id: str | None = None
    notes: tuple[str, ...] = ()
    recorded: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.status != "imported":
            return result(self.input, self.status, self.reasons)
        return result(
            self.input,
            self.status,
            self.reasons,
            id=self.id,
            notes=list(self.notes),
            recorded=list(self.recorded),
        )


def import_cancellations(ledger: Ledger, paths: Sequence[Path]) -> Iterator[ImportResult]:
    """Record signed cancellations made elsewhere, each only when signed by the prescription's
    own signer; one result per file, in order."""
    for path in paths:
        name = str(path)
        try:
            signed = cancellation.load_file(path.read_bytes())
            outcome = record_cancellation(ledger, signed)
        except OSError as e:
            message = str(e.strerror)
            yield ImportResult(
                name,
                "unreadable",
                ExitCode.UNREADABLE,
                (reason(Reason.UNREADABLE_INPUT, message),),
            )
        except VerificationError as e:
            assert e.reason is not None
            unreadable = e.exit_code == ExitCode.UNREADABLE
            yield ImportResult(
                name,
                "unreadable" if unreadable else "rejected",
                e.exit_code,
                (reason(e.reason, str(e)),),
            )
        except Refused as e:
            yield ImportResult(name, "refused", ExitCode.REJECTED, tuple(e.to_json()))
        else:
            yield ImportResult(
                name,
                "imported",
                ExitCode.OK,
                id=signed.prescription_id,
                notes=outcome.notes,
                recorded=tuple(r.seq for r in outcome.records),
            )
