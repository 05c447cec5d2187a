"""Paper: the printable ordonnance (``render``) and the QR image alone (``qr``).

A document is printed only when its signature holds against its own certificate; every file
written holds patient data (mode 0600) and is new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire import files, ids
from eprescrire.errors import Error, ExitCode, InputError, Reason, UsageError, VerificationError
from eprescrire.results import reasons_of, result, status_of

MAX_DOCUMENT_BYTES = 1 << 20
PAGES = ("A5", "A4")


def check_page(page: str) -> str:
    if page.upper() not in PAGES:
        raise UsageError(f"--page must be A5 or A4, not {page!r}")
    return page.upper()


def load_signed(name: Path) -> Any:
    """The signed document in ``name``, its signature checked against its own certificate.

    A file that is missing or is not a signed document is unreadable input (InputError, exit
    3); a document whose signature does not hold is rejected (VerificationError, exit 1)."""
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


def write_pdf(document: Any, target: Path, page: str = "A5") -> None:
    """The ordonnance of ``document`` as a new PDF file at ``target``."""
    from eprescrire import render

    files.check_target(target)
    files.create(target, render.pdf_bytes(document, page=check_page(page)), mode=files.PRIVATE)


def check_qr_options(target: Path, scale: int | None) -> None:
    """The QR image's name (.png or .svg) and scale. Raises UsageError."""
    from eprescrire import render

    if target.suffix.lower() not in render.IMAGE_KINDS:
        raise UsageError(f"{target}: the QR image must be .png or .svg")
    if scale is not None and not 1 <= scale <= render.MAX_SCALE:
        raise UsageError(f"--scale must be from 1 to {render.MAX_SCALE}")


def write_qr(document: Any, target: Path, scale: int | None = None) -> None:
    """The QR code of ``document`` alone, as a new .png or .svg file at ``target``."""
    from eprescrire import render

    check_qr_options(target, scale)
    files.check_target(target)
    render.write_qr(document, target, scale=scale)


@dataclass(frozen=True)
class RenderRequest:
    documents: tuple[Path, ...]
    out: Path | None = None
    out_dir: Path | None = None
    page: str = "A5"

    def __post_init__(self) -> None:
        if self.out is not None and self.out_dir is not None:
            raise UsageError("use --out or --out-dir, not both")
        if self.out is None and self.out_dir is None:
            raise UsageError("give --out FILE.pdf or --out-dir DIR")
        if self.out is not None and len(self.documents) > 1:
            raise UsageError("--out takes one document; use --out-dir for several")
        check_page(self.page)


@dataclass(frozen=True)
class RenderResult:
    input: str
    status: str  # rendered, rejected, unreadable (or another failure: see exit_code)
    exit_code: ExitCode
    reasons: tuple[dict[str, str], ...] = ()
    id: str | None = None
    out: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.status != "rendered":
            return result(self.input, self.status, self.reasons)
        return result(self.input, self.status, self.reasons, id=self.id, out=self.out)


def render(request: RenderRequest) -> Iterator[RenderResult]:
    """One PDF per document, in order; a document that fails does not stop the others."""
    if request.out_dir is not None:
        files.make_directory(request.out_dir)
    for name in request.documents:
        try:
            document = load_signed(name)
            stem = ids.file_stem(document.prescription.id)
            target = request.out or request.out_dir / f"{stem}.pdf"  # type: ignore[operator]
            write_pdf(document, target, request.page)
        except UsageError:
            raise
        except Error as e:
            yield RenderResult(str(name), status_of(e), e.exit_code, tuple(reasons_of(e)))
        else:
            yield RenderResult(
                str(name), "rendered", ExitCode.OK, (), document.prescription.id, str(target)
            )
