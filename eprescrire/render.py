"""Printable outputs of a signed prescription: the French ordonnance (PDF) and the QR image.

Everything printed comes from ``document.prescription``, the content that was signed; the QR
text is :func:`eprescrire.qr.encode` of the document. The PDF layout itself lives in
:mod:`eprescrire.pdf_layout` and the choice of the QR symbol (error level, module size) in
:mod:`eprescrire.symbol`; this module puts them together and writes files.

A document printed several ways (PDF on A5 and A4, PNG or SVG image) is encoded once: wrap it
in :class:`Printable` and pass that to :func:`pdf_bytes`, :func:`write_pdf` and
:func:`write_qr`, which also take the signed document itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eprescrire.errors import InputError, UsageError
from eprescrire.symbol import (
    ERROR_LEVELS,
    MAX_MODULE_MM,
    MIN_MODULE_MM,
    QR_BOX_MM,
    QUIET_ZONE,
    QrSymbol,
    Symbols,
    choose_symbol,
)

__all__ = [
    "ERROR_LEVELS",
    "IMAGE_KINDS",
    "MAX_MODULE_MM",
    "MAX_SCALE",
    "MIN_MODULE_MM",
    "PAGES",
    "QR_BOX_MM",
    "QUIET_ZONE",
    "Printable",
    "QrSymbol",
    "choose_symbol",
    "pdf_bytes",
    "preload",
    "qr_text",
    "write_pdf",
    "write_qr",
]

#: Page sizes offered by ``--page``.
PAGES = ("A5", "A4")
#: Image formats of ``write_qr`` by file suffix.
IMAGE_KINDS = {".png": "png", ".svg": "svg"}
DEFAULT_SCALE = 5
MAX_SCALE = 40


class Printable:
    """A signed document and its QR code, made once however many times it is printed.

    The QR text (with its round-trip check) is computed on first use, and each QR error level
    is encoded at most once, then sized for the A5 page, the A4 page and the image.
    """

    def __init__(self, document: Any) -> None:
        self.document = document
        self._symbols: Symbols | None = None

    @classmethod
    def of(cls, document: Any) -> Printable:
        """``document`` itself when it is already a :class:`Printable`, else a new one."""
        return document if isinstance(document, Printable) else cls(document)

    @property
    def qr_text(self) -> str:
        """The text carried by the QR code. On failure, raises :class:`InputError` (the
        prescription cannot be carried exactly in a QR code)."""
        return self.symbols.text

    @property
    def symbols(self) -> Symbols:
        if self._symbols is None:
            self._symbols = Symbols(qr_text(self.document))
        return self._symbols

    def symbol(self, page: str) -> QrSymbol:
        """The QR symbol printed on ``page`` (A5 or A4; the image is the A5 symbol)."""
        return self.symbols.for_box(QR_BOX_MM[_page(page)])


def preload() -> None:
    """Import the drawing libraries and load the fonts now: a process about to fork workers
    that print calls this once, so that the workers share them instead of each loading them."""
    import segno  # noqa: F401

    from eprescrire import pdf_layout, qr  # noqa: F401

    pdf_layout.preload()


def qr_text(document: Any) -> str:
    """The text carried by the document's QR code (alphanumeric, prefixed, Base45).

    On failure, raises :class:`InputError` (the prescription cannot be carried exactly).
    """
    from eprescrire import qr

    if isinstance(document, Printable):
        return document.qr_text
    try:
        text: str = qr.encode(document)
    except ValueError as e:
        raise InputError(str(e)) from e
    return text


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

    printable = Printable.of(document)
    size = _page(page)
    return pdf_layout.build(printable.document.prescription, printable.symbol(size), size)


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

    path = Path(path)
    kind = IMAGE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: the QR image must be .png or .svg")
    if scale is None:
        scale = DEFAULT_SCALE
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise UsageError(f"--scale must be a whole number from 1 to {MAX_SCALE}")
    code = Printable.of(document).symbol("A5").code
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
