"""Printable outputs of a signed prescription: the French ordonnance (PDF) and the QR image.

Everything printed comes from ``document.prescription``, the content that was signed; the QR
text is :func:`eprescrire.qr.encode` of the document. The PDF layout itself lives in
:mod:`eprescrire.pdf_layout`; this module chooses the QR symbol and writes files.

The QR symbol is chosen for print: error correction Q when the code still fits its box on the
page with modules of at least :data:`MIN_MODULE_MM`, otherwise M (never lower), with the
standard 4-module quiet zone. A code too large for M at the minimum module size still prints
(its box grows) rather than shrinking the modules below what a 100 dpi scan can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire.errors import InputError, UsageError

#: Page sizes offered by ``--page``.
PAGES = ("A5", "A4")
#: Light modules around the symbol, as ISO/IEC 18004 requires.
QUIET_ZONE = 4
#: Smallest module printed; 0.5 mm is ~2 px at 100 dpi and still decodes from a clean scan.
MIN_MODULE_MM = 0.5
#: Larger modules only cost paper: beyond this, a bigger code does not scan better.
MAX_MODULE_MM = 0.8
#: Side of the square (quiet zone included) the code may take at the bottom-left of a page.
QR_BOX_MM = {"A5": 50.0, "A4": 66.0}
#: Error levels tried in order of preference; never below M.
ERROR_LEVELS = ("Q", "M")
#: Image formats of ``write_qr`` by file suffix.
IMAGE_KINDS = {".png": "png", ".svg": "svg"}
DEFAULT_SCALE = 5
MAX_SCALE = 40


@dataclass(frozen=True)
class QrSymbol:
    """A QR symbol ready to draw: its modules (quiet zone excluded) and printed module size."""

    text: str
    error: str
    version: int
    matrix: tuple[tuple[bool, ...], ...]
    module_mm: float

    @property
    def modules(self) -> int:
        """Modules per side, quiet zone excluded."""
        return len(self.matrix)

    @property
    def side_mm(self) -> float:
        """Printed side of the symbol with its quiet zone, in millimetres."""
        return (self.modules + 2 * QUIET_ZONE) * self.module_mm


def qr_text(document: Any) -> str:
    """The text carried by the document's QR code (alphanumeric, prefixed, Base45)."""
    from eprescrire import qr

    text: str = qr.encode(document)
    return text


def choose_symbol(text: str, box_mm: float) -> QrSymbol:
    """The QR symbol for ``text`` printed in a square of ``box_mm`` (quiet zone included).

    Takes the first of :data:`ERROR_LEVELS` whose modules stay >= :data:`MIN_MODULE_MM` in the
    box, else M at the minimum module size. On failure (text beyond QR version 40 at level M),
    raises :class:`InputError`.
    """
    import segno

    fallback: QrSymbol | None = None
    for error in ERROR_LEVELS:
        try:
            code = segno.make_qr(text, error=error, boost_error=False)
        except segno.DataOverflowError:
            continue
        matrix = tuple(tuple(bool(v) for v in row) for row in code.matrix_iter(scale=1, border=0))
        side = len(matrix) + 2 * QUIET_ZONE
        module = min(MAX_MODULE_MM, box_mm / side)
        symbol = QrSymbol(text, error, int(code.version), matrix, max(module, MIN_MODULE_MM))
        if module >= MIN_MODULE_MM:
            return symbol
        fallback = symbol
    if fallback is None:
        raise InputError("the prescription is too large for a QR code")
    return fallback


def _page(page: str) -> str:
    name = page.upper() if isinstance(page, str) else ""
    if name not in PAGES:
        raise UsageError(f"page size must be A5 or A4, not {page!r}")
    return name


def pdf_bytes(document: Any, page: str = "A5") -> bytes:
    """The printable ordonnance of a signed document as PDF bytes (A5 or A4).

    On failure, raises :class:`UsageError` (unknown page size) or :class:`InputError`.
    """
    from eprescrire import pdf_layout

    size = _page(page)
    symbol = choose_symbol(qr_text(document), QR_BOX_MM[size])
    return pdf_layout.build(document.prescription, symbol, size)


def write_pdf(document: Any, path: Path, page: str = "A5") -> None:
    """Write the printable ordonnance to ``path``; never overwrites an existing file.

    On failure, raises :class:`InputError` (the file exists) or :class:`UsageError`.
    """
    _write_new(Path(path), pdf_bytes(document, page))


def write_qr(document: Any, path: Path, scale: int | None = None) -> None:
    """Write the document's QR code as PNG or SVG (by suffix), with its quiet zone.

    ``scale`` is pixels (PNG) or user units (SVG) per module. The symbol is the one printed on
    the A5 ordonnance. On failure, raises :class:`UsageError` (suffix, scale, unwritable) or
    :class:`InputError` (the file exists).
    """
    import io

    import segno

    path = Path(path)
    kind = IMAGE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: the QR image must be .png or .svg")
    if scale is None:
        scale = DEFAULT_SCALE
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise UsageError(f"--scale must be a whole number from 1 to {MAX_SCALE}")
    symbol = choose_symbol(qr_text(document), QR_BOX_MM["A5"])
    code = segno.make_qr(symbol.text, error=symbol.error, version=symbol.version, boost_error=False)
    buffer = io.BytesIO()
    options: dict[str, Any] = {"kind": kind, "scale": scale, "border": QUIET_ZONE}
    if kind == "svg":
        options.update(xmldecl=True, svgclass=None, lineclass=None, title="eprescrire")
    code.save(buffer, dark="#000", light="#fff", **options)
    _write_new(path, buffer.getvalue())


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``; refuse to overwrite, never leave a half-written file."""
    from eprescrire import files

    files.create(path, data, io_error=UsageError)
