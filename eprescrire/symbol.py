"""The QR symbol printed on the ordonnance: error correction level, module size and modules.

The symbol is chosen for print: error correction Q when the code still fits its box on the
page with modules of at least :data:`MIN_MODULE_MM`, otherwise M (never lower), with the
standard 4-module quiet zone. A code too large for M at the minimum module size still prints
(its box grows) rather than shrinking the modules below what a 100 dpi scan can read.

This module is shared by :mod:`eprescrire.render` (which chooses the symbol and writes files)
and :mod:`eprescrire.pdf_layout` (which draws it); it imports neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from eprescrire.errors import InputError

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

_DARK_RUN = re.compile(b"\x01+")


@dataclass(frozen=True)
class QrSymbol:
    """A QR symbol ready to draw: its modules (quiet zone excluded) and printed module size.

    ``code`` is the segno symbol the modules come from, kept so that an image of the same
    symbol is written without encoding it again; it takes no part in comparisons.
    """

    text: str
    error: str
    version: int
    matrix: tuple[tuple[bool, ...], ...]
    module_mm: float
    code: Any = field(default=None, compare=False, repr=False)

    @property
    def modules(self) -> int:
        """Modules per side, quiet zone excluded."""
        return len(self.matrix)

    @property
    def side_mm(self) -> float:
        """Printed side of the symbol with its quiet zone, in millimetres."""
        return (self.modules + 2 * QUIET_ZONE) * self.module_mm

    @cached_property
    def runs(self) -> tuple[tuple[int, int, int], ...]:
        """The dark modules as horizontal runs ``(row, first column, length)``, top row first."""
        out = []
        for r, row in enumerate(self.matrix):
            for match in _DARK_RUN.finditer(bytes(row)):
                out.append((r, match.start(), match.end() - match.start()))
        return tuple(out)


def choose_symbol(text: str, box_mm: float) -> QrSymbol:
    """The QR symbol for ``text`` printed in a square of ``box_mm`` (quiet zone included).

    Takes the first of :data:`ERROR_LEVELS` whose modules stay >= :data:`MIN_MODULE_MM` in the
    box, else M at the minimum module size. On failure (text beyond QR version 40 at level M),
    raises :class:`InputError`.
    """
    return Symbols(text).for_box(box_mm)


class Symbols:
    """The QR symbols of one text: each error level encoded at most once (segno's mask
    evaluation is most of the cost), then sized for each box it is printed in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._encoded: dict[str, QrSymbol | None] = {}
        self._sized: dict[float, QrSymbol] = {}

    def for_box(self, box_mm: float) -> QrSymbol:
        """The symbol :func:`choose_symbol` takes for this box. On failure, raises
        :class:`InputError` (the text is too large for any QR code)."""
        if box_mm in self._sized:
            return self._sized[box_mm]
        fallback: QrSymbol | None = None
        for error in ERROR_LEVELS:
            encoded = self._encoded[error] if error in self._encoded else self._encode(error)
            if encoded is None:
                continue
            module = min(MAX_MODULE_MM, box_mm / (encoded.modules + 2 * QUIET_ZONE))
            symbol = replace(encoded, module_mm=max(module, MIN_MODULE_MM))
            if module >= MIN_MODULE_MM:
                self._sized[box_mm] = symbol
                return symbol
            fallback = symbol
        if fallback is None:
            raise InputError("the prescription is too large for a QR code")
        self._sized[box_mm] = fallback
        return fallback

    def _encode(self, error: str) -> QrSymbol | None:
        """The symbol at ``error`` (module size not set yet), or None when the text is beyond
        the largest QR code at that level."""
        import segno

        from eprescrire import qr_mask

        try:  # segno.make_qr, the mask chosen faster (the same mask, the same modules)
            code = qr_mask.make_qr(self.text, error=error, boost_error=False)
        except segno.DataOverflowError:
            encoded = None
        else:
            matrix = tuple(tuple(map(bool, row)) for row in code.matrix)
            encoded = QrSymbol(self.text, error, int(code.version), matrix, 0.0, code)
        self._encoded[error] = encoded
        return encoded
