"""segno's choice of QR data mask, made with byte-string and integer operations.

segno chooses the data mask of a QR code by applying each of the eight masks to the matrix and
scoring it (ISO/IEC 18004 §7.8.3, as ``segno.encoder.mask_scores`` implements it), one module
at a time in Python: about three quarters of the time ``segno.make_qr`` takes for the code on
an ordonnance. :func:`find_and_apply_best_mask` computes the same four scores over the whole
matrix at once, with bitwise operations on one integer holding every module (a dozen
operations per score instead of a loop over ~6,000 modules), so it picks the same mask and
returns the same modules, faster.

"The same" includes segno's own conventions where they differ from a literal reading of the
standard: a 1:1:3:1:1 pattern counts with four light modules on either side *or* at either end
of the row, and after a pattern that counts the search resumes past its end.

:func:`make_qr` is ``segno.make_qr`` with this mask choice; it gives up the shortcut (and
lets segno choose) for anything but a QR code whose modules are all 0 or 1 before masking.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

_lock = threading.Lock()


def make_qr(content: str, *, error: str, boost_error: bool = False) -> Any:
    """``segno.make_qr(content, error=error, boost_error=boost_error)``, the mask chosen by
    :func:`find_and_apply_best_mask` (the same as segno's). Raises what segno raises."""
    import segno

    with _fast_mask_choice():
        return segno.make_qr(content, error=error, boost_error=boost_error)


@contextmanager
def _fast_mask_choice() -> Iterator[None]:
    """segno's encoder using :func:`find_and_apply_best_mask` while the block runs (in this
    thread; other callers of segno keep its own)."""
    from segno import encoder

    original = getattr(encoder, "find_and_apply_best_mask", None)
    if original is None or not _lock.acquire(blocking=False):  # another segno, or nested
        yield
        return
    try:

        def choose(matrix: Any, width: int, height: int, proposed_mask: Any = None) -> Any:
            if threading.current_thread() is owner:
                found = find_and_apply_best_mask(matrix, width, height, proposed_mask)
                if found is not None:
                    return found
            return original(matrix, width, height, proposed_mask)

        owner = threading.current_thread()
        encoder.find_and_apply_best_mask = choose
        try:
            yield
        finally:
            encoder.find_and_apply_best_mask = original
    finally:
        _lock.release()


def find_and_apply_best_mask(
    matrix: tuple[bytearray, ...], width: int, height: int, proposed_mask: int | None = None
) -> tuple[int, tuple[bytearray, ...]] | None:
    """(mask number, masked matrix) as ``segno.encoder.find_and_apply_best_mask`` returns
    them for a QR code (not Micro QR) with no mask imposed; None for anything else (a Micro
    QR code, a mask imposed, a module neither 0 nor 1), which the caller leaves to segno.

    ``matrix`` is the unmasked matrix (format and version areas reserved, still light); it is
    not modified."""
    n = width
    if proposed_mask is not None or width != height or n < 21 or len(matrix) != n:
        return None
    layout = _layout(n)
    modules = layout.read(matrix)
    if modules is None:
        return None
    best_score = -1
    best = 0
    for number, flips in enumerate(layout.masks):
        score = layout.score(modules ^ flips)
        if best_score < 0 or score < best_score:
            best_score, best = score, number
    return best, layout.rows(modules ^ layout.masks[best])


#: Light modules around the matrix in the bit layout: four, as far as the N3 rule looks.
_PAD = 4
_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_FROM_DIGITS = bytes.maketrans(b"01", b"\x00\x01")
#: segno's function matrix: a value above 1 marks the encoding region.
_ENCODING_REGION = bytes(0 if value <= 1 else 1 for value in range(256))


class _Layout:
    """The modules of an ``n`` × ``n`` matrix as the bits of one integer (1 = dark): row ``i``,
    column ``j`` at bit ``(i + 4) * (n + 4) + j``, so that every row is followed by four light
    padding modules and the matrix has four light padding rows above and below. A shift by 1
    then moves along a row, a shift by ``n + 4`` along a column, and a look four modules
    beyond an edge finds light padding, never another row.

    Also what does not depend on the data: the eight masks (the modules each one flips: the
    encoding region where its pattern holds) and the positions that have a left or an upper
    neighbour in the matrix."""

    def __init__(self, n: int) -> None:
        from segno import encoder as segno_encoder

        encoder: Any = segno_encoder  # untyped
        self.n = n
        self.stride = stride = n + _PAD
        self.offset = _PAD * stride
        self.bits = (n + 2 * _PAD) * stride
        self.empty_row = b"\x00" * _PAD
        function = encoder.make_matrix(n, n)
        encoder.add_finder_patterns(function, n, n)
        encoder.add_alignment_patterns(function, n, n)
        function[-8][8] = 0x1  # the dark module, as segno marks it
        region = self._from_rows(bytes(row).translate(_ENCODING_REGION) for row in function)
        # Every mask pattern repeats every 6 columns (ISO/IEC 18004 Table 10): each row of a
        # mask is its first six modules repeated.
        repeat = n // 6 + 1
        self.masks = [
            region
            & self._from_rows(
                (bytes(bool(pattern(i, j)) for j in range(6)) * repeat)[:n] for i in range(n)
            )
            for pattern in encoder.get_data_mask_functions(False)
        ]
        self.matrix = self._from_rows(b"\x01" * n for _ in range(n))
        self.has_left = self._from_rows(b"\x00" + b"\x01" * (n - 1) for _ in range(n))
        self.has_above = self.matrix & ~self._from_rows(
            (b"\x01" if i == 0 else b"\x00") * n for i in range(n)
        )

    def _from_rows(self, rows: Iterable[bytes]) -> int:
        """The layout of ``n`` rows of ``n`` bytes, each 0 or 1."""
        raw = b"".join(row + self.empty_row for row in rows)
        # int() reads the most significant digit first: reversed, position p is bit p.
        return int(raw.translate(_TO_DIGITS)[::-1], 2) << self.offset

    def read(self, matrix: tuple[bytearray, ...]) -> int | None:
        """The modules of ``matrix`` in this layout; None if one is neither 0 nor 1."""
        n = self.n
        pad = self.empty_row
        raw = b"".join(bytes(row) + pad for row in matrix)
        if len(raw) != n * self.stride or raw.translate(None, b"\x00\x01"):
            return None
        return int(raw.translate(_TO_DIGITS)[::-1], 2) << self.offset

    def rows(self, modules: int) -> tuple[bytearray, ...]:
        """``modules`` back as segno's matrix: a tuple of bytearrays of 0 and 1."""
        digits = format(modules, f"0{self.bits}b")[::-1].encode().translate(_FROM_DIGITS)
        start, stride, n = self.offset, self.stride, self.n
        return tuple(
            bytearray(digits[start + i * stride : start + i * stride + n]) for i in range(n)
        )

    def score(self, dark: int) -> int:
        """``sum(segno.encoder.mask_scores(matrix))`` of the masked matrix ``dark``."""
        n, s = self.n, self.stride
        light = self.matrix & ~dark
        # Modules the same colour as their left (upper) neighbour.
        same_h = ~(dark ^ (dark << 1)) & self.has_left
        same_v = ~(dark ^ (dark << s)) & self.has_above
        # N1: each run of L >= 5 modules of one colour in a row or column scores L - 2: its
        # 5th to last modules (L - 4 of them, where the four before are the same too), plus 2
        # for each run (the first of those modules).
        fifth_h = same_h & (same_h << 1) & (same_h << 2) & (same_h << 3)
        fifth_v = same_v & (same_v << s) & (same_v << 2 * s) & (same_v << 3 * s)
        score = fifth_h.bit_count() + fifth_v.bit_count()
        score += 2 * (
            (fifth_h & ~(fifth_h << 1)).bit_count() + (fifth_v & ~(fifth_v << s)).bit_count()
        )
        # N2: 3 for each 2x2 block of one colour, counted at its lower-right module.
        score += 3 * (same_h & same_v & (same_h << s)).bit_count()
        # N3: 40 for each dark-light-dark-dark-dark-light-dark pattern with four light modules
        # (or the edge) before or after it.
        score += self._finder_like(dark, light, 1) + self._finder_like(dark, light, s)
        # N4: 10 for each full 5 % the dark modules are away from half.
        percent = float(dark.bit_count()) / (n**2)
        return score + 10 * int(abs(percent * 100 - 50) / 5)

    def _finder_like(self, dark: int, light: int, step: int) -> int:
        """segno's N3 score along rows (``step`` 1) or columns (``step`` the stride)."""
        d, l_ = dark, light
        found = (
            d
            & (l_ >> step)
            & (d >> 2 * step)
            & (d >> 3 * step)
            & (d >> 4 * step)
            & (l_ >> 5 * step)
            & (d >> 6 * step)
        )
        if not found:
            return 0
        before = d << step | d << 2 * step | d << 3 * step | d << 4 * step
        after = d >> 7 * step | d >> 8 * step | d >> 9 * step | d >> 10 * step
        counted = found & ~(before & after)
        # segno resumes its search 7 modules after a pattern that counts, so a pattern that
        # starts 4 or 6 modules after it is not seen. Rare: then follow segno step by step.
        if not found & (counted << 4 * step | counted << 6 * step):
            return 40 * counted.bit_count()
        return self._finder_like_in_order(found, counted, step)

    def _finder_like_in_order(self, found: int, counted: int, step: int) -> int:
        """The N3 score as segno's search finds the patterns: in each line in order, resuming
        7 modules after one that counts, 4 after one that does not."""
        digits = format(found, "b")[::-1]
        resume: dict[int, int] = {}
        total = 0
        position = digits.find("1")
        while position >= 0:
            line = position // self.stride if step == 1 else position % self.stride
            if position >= resume.get(line, -1):
                if counted >> position & 1:
                    total += 40
                    resume[line] = position + 7 * step
                else:
                    resume[line] = position + 4 * step
            position = digits.find("1", position + 1)
        return total


@cache
def _layout(n: int) -> _Layout:
    return _Layout(n)
