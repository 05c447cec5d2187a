"""Issue prescriptions (``issue``): validate, sign, and write the signed JSON (and the PDF, the
QR image). Every file written is new and holds patient data (mode 0600)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire import batch, files
from eprescrire import inputs as loader
from eprescrire.errors import Error, ExitCode, InputError, UsageError, ValidationError
from eprescrire.keys import Credentials
from eprescrire.results import reasons_of, result
from eprescrire.services.printing import check_page

#: A named input: its parsed data, or the error that made it unreadable.
Source = tuple[str, Any]


def read_sources(names: Sequence[str], stdin: bytes | None = None) -> list[Source]:
    """(name, parsed input or InputError) for each input, in order. ``-`` is ``stdin``: NDJSON
    (one JSON object per line) or CSV (a header line first); a directory is every
    .toml/.json/.csv file in it, sorted by name."""
    items: list[Source] = []
    for name in names:
        if name == "-":
            items.extend(_stdin_sources((stdin or b"").decode("utf-8", errors="replace")))
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".toml", ".json", ".csv"))
            if not found:
                items.append((name, InputError(f"{name}: no .toml, .json or .csv input in it")))
        else:
            found = [path]
        for file in found:
            try:
                if file.suffix == ".csv":
                    items.extend(loader.parse_csv(file.read_text("utf-8"), str(file)))
                else:
                    items.append((str(file), loader.read_input(file)))
            except (InputError, OSError, UnicodeDecodeError) as e:
                message = str(e) if isinstance(e, InputError) else f"{file}: cannot read ({e})"
                # A ValidationError (FHIR input) keeps its fields for the summary.
                items.append(
                    (str(file), e if isinstance(e, ValidationError) else InputError(message))
                )
    return items


def _stdin_sources(text: str) -> list[Source]:
    items: list[Source] = []
    if text.lstrip().startswith("{") or not text.strip():
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:  # parse_input also maps a FHIR resource on the line
                items.append((f"-:{number}", loader.parse_input(line.encode(), f"-:{number}")))
            except InputError as e:
                items.append((f"-:{number}", e))
        return items
    try:
        items.extend(loader.parse_csv(text, "-"))
    except InputError as e:
        items.append(("-", e))
    return items


@dataclass(frozen=True)
class IssueRequest:
    """Sign ``sources`` with ``credentials`` as of ``now``; write ``out`` (one input) or
    ``out_dir``/ID.json, and the PDF (``pdf``, or ID.pdf with ``with_pdf``) and QR image.
    ``drugs``: the drug catalogue each prescription is checked against before it is signed
    (:func:`eprescrire.services.drug_aid.catalogue_for`; None: no catalogue, no check)."""

    sources: tuple[Source, ...]
    credentials: Credentials
    now: dt.datetime
    out: Path | None = None
    out_dir: Path | None = None
    pdf: Path | None = None
    qr: Path | None = None
    with_pdf: bool = False
    page: str = "A5"
    jobs: int = 1
    drugs: Path | None = None
    #: Sign even when the prescriber name is not the certificate's (verify then warns).
    allow_name_mismatch: bool = False

    def __post_init__(self) -> None:
        check_request(self.out, self.out_dir, self.page)
        check_sources(self.sources, self.out, self.pdf, self.qr)


def check_sources(
    sources: Sequence[Source], out: Path | None, pdf: Path | None, qr: Path | None
) -> None:
    """Single-file outputs take one input. Raises UsageError."""
    if len(sources) > 1 and (out is not None or pdf is not None or qr is not None):
        raise UsageError("--out, --pdf and --qr take one input; use --out-dir for several")


def check_request(out: Path | None, out_dir: Path | None, page: str) -> None:
    """The output options alone (checked before any input is read). Raises UsageError."""
    if out is not None and out_dir is not None:
        raise UsageError("use --out or --out-dir, not both")
    if out is None and out_dir is None:
        raise UsageError("give --out FILE or --out-dir DIR")
    if page not in ("A5", "A4"):
        raise UsageError("--page must be A5 or A4")
    check_page(page)


@dataclass(frozen=True)
class IssueResult:
    input: str
    status: str  # issued, invalid
    exit_code: ExitCode
    reasons: tuple[dict[str, str], ...] = ()
    id: str | None = None
    out: str | None = None
    pdf: str | None = None
    qr: str | None = None
    # What the prescriber should see without a refusal: {"field", "code", "message"} from the
    # drug catalogue and from what the prescription lacks (completeness.warnings), and the codes
    # the catalogue filled in (code "filled").
    warnings: tuple[dict[str, str], ...] = ()
    filled: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.status == "issued":
            files_written = {k: v for k, v in (("pdf", self.pdf), ("qr", self.qr)) if v}
            return (
                result(self.input, self.status, self.reasons, id=self.id, out=self.out)
                | files_written
                | {"warnings": list(self.warnings), "filled": list(self.filled)}
            )
        # "errors": the shape of earlier versions, kept for scripts that read it.
        errors = [{"field": r.get("field", ""), "message": r["message"]} for r in self.reasons]
        return result(self.input, self.status, self.reasons, errors=errors)


@dataclass(frozen=True)
class PrintJob:
    """What one signed prescription still needs printed: its ordonnance (``pdf``, on ``page``)
    and its QR image (``qr``). ``document`` is the signed document; a job sent to a printing
    process carries it without its certificates (the page does not print them, and they do
    not cross processes)."""

    document: Any
    pdf: Path | None
    qr: Path | None
    page: str


def _issue_one(request: IssueRequest, source: Source) -> IssueResult:
    """Issue one input (in a worker process or in-process); never raises for bad input."""
    issued, job = _sign_one(request, source)
    return issued if job is None else _printed(issued, _print_one(job))


def _sign_one(request: IssueRequest, source: Source) -> tuple[IssueResult, PrintJob | None]:
    """Validate, sign and write the signed JSON of one input; the result as it will be once
    the job (None: nothing to print, or the input failed) is printed. Never raises."""
    from eprescrire import completeness, ids, model, signing
    from eprescrire.services import drug_aid

    name, data = source
    try:
        if isinstance(data, InputError):
            raise data
        prescription = model.from_input(data, now=request.now, source=name)
        # The drug catalogue, when there is one: codes checked and filled, warnings kept.
        checked = drug_aid.check_before_signing(prescription, request.drugs, name)
        prescription = checked.prescription
        document = signing.sign(
            prescription, request.credentials, allow_name_mismatch=request.allow_name_mismatch
        )
        out_dir = request.out_dir
        stem = ids.file_stem(prescription.id)
        target = request.out if request.out is not None else out_dir / f"{stem}.json"  # type: ignore[operator]
        files.create(target, document.to_json_bytes(), mode=files.PRIVATE)
        pdf = request.pdf
        if pdf is None and request.with_pdf and out_dir is not None:
            pdf = out_dir / f"{ids.file_stem(prescription.id)}.pdf"
        warnings = (*checked.warnings, *completeness.warnings(prescription))
    except Exception as e:
        return _failed(name, e), None
    issued = IssueResult(
        name,
        "issued",
        ExitCode.OK,
        id=prescription.id,
        out=str(target),
        pdf=None if pdf is None else str(pdf),
        qr=None if request.qr is None else str(request.qr),
        warnings=warnings,
        filled=checked.filled,
    )
    if pdf is None and request.qr is None:
        return issued, None
    return issued, PrintJob(document, pdf, request.qr, request.page)


def _print_one(job: PrintJob) -> IssueResult | None:
    """Write the job's PDF and QR image; None when done, else the failure (its ``input`` left
    empty). Never raises."""
    try:
        from eprescrire import render
        from eprescrire.services.printing import write_pdf, write_qr

        printable = render.Printable(job.document)  # one QR encoding for the PDF and the image
        if job.pdf is not None:
            write_pdf(printable, job.pdf, job.page)
        if job.qr is not None:
            write_qr(printable, job.qr)
    except Exception as e:
        return _failed("", e)
    return None


def _printed(issued: IssueResult, failure: IssueResult | None) -> IssueResult:
    """The result of an input whose printing ended with ``failure`` (None: printed)."""
    if failure is None:
        return issued
    return IssueResult(issued.input, "invalid", failure.exit_code, failure.reasons)


def _failed(name: str, error: Exception) -> IssueResult:
    if isinstance(error, Error):
        return IssueResult(name, "invalid", error.exit_code, tuple(_issue_reasons(error)))
    # A bug on one input must not stop the others (nor a worker pool).
    reason = {
        "code": "internal_error",
        "message": f"internal error ({error.__class__.__name__})",
        "field": "",
    }
    return IssueResult(name, "invalid", ExitCode.INTERNAL, (reason,))


def _issue_reasons(error: Error) -> list[dict[str, str]]:
    reasons = reasons_of(error)
    for item in reasons:
        item.setdefault("field", "")
    return reasons


def issue(request: IssueRequest, printers: Any = None) -> Iterator[IssueResult]:
    """One result per source, in order (signed in ``jobs`` processes). With ``printers`` (a
    :class:`eprescrire.services.print_pool.PrintPool`), this process validates and signs and
    the pool's processes print."""
    if request.out_dir is not None:
        files.make_directory(request.out_dir)
    if printers is not None:
        yield from _pipeline(request, printers)
        return
    jobs = min(request.jobs, max(1, len(request.sources)))
    printing = request.with_pdf or request.pdf is not None or request.qr is not None
    if jobs > 1 and printing:
        from eprescrire import render

        render.preload()  # once, before the workers fork: each would import and load it again
    # A page takes tens of milliseconds: one input at a time, so that no process is left
    # with a chunk of several pages while the others have finished.
    yield from batch.run(_issue_one, request, request.sources, jobs, chunksize=1 if printing else 4)


def _pipeline(request: IssueRequest, printers: Any) -> Iterator[IssueResult]:
    """Sign here and print in ``printers``; results in input order, each as soon as it and
    those before it are done."""
    from collections import deque

    pending: deque[tuple[IssueResult, Any]] = deque()
    last = len(request.sources) - 1
    for index, source in enumerate(request.sources):
        issued, job = _sign_one(request, source)
        pending.append((issued, None if job is None else printers.submit(job, last - index)))
        while pending and (pending[0][1] is None or pending[0][1].done()):
            yield _collect(*pending.popleft())
    while pending:
        yield _collect(*pending.popleft())


def _collect(issued: IssueResult, printed: Any) -> IssueResult:
    if printed is None:
        return issued
    try:
        failure = printed.result()
    except Exception as e:  # the printing process died: this input is not printed
        failure = _failed("", e)
    return _printed(issued, failure)
