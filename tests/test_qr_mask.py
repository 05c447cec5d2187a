"""The faster choice of QR data mask is segno's choice: same mask, same modules, every time."""

from __future__ import annotations

import random
import string
import threading
from typing import Any

import pytest
import segno
from segno import encoder

from eprescrire import qr_mask

ALPHANUMERIC = string.digits + string.ascii_uppercase + " $%*+-./:"


def _payloads(count: int, seed: int) -> list[tuple[str, str]]:
    """(text, error level): alphanumeric (as RX1 codes are), bytes and digits, short and long,
    so that versions 1 to 40 and all eight masks come up."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        length = rng.choice((5, 40, 150, 400, 700, 1200, 2500))
        kind = n % 3
        if kind == 0:
            text = "".join(rng.choice(ALPHANUMERIC) for _ in range(length))
        elif kind == 1:
            text = "".join(rng.choice(string.printable) for _ in range(length // 2))
        else:
            text = "".join(rng.choice(string.digits) for _ in range(length))
        out.append((text, "mqlh"[n % 4]))
    return out


def _segno_own(text: str, error: str) -> Any:
    return segno.make_qr(text, error=error, boost_error=False)


@pytest.mark.parametrize("seed", [1, 2])
def test_same_symbol_as_segno(seed: int) -> None:
    masks = set()
    versions = set()
    compared = 0
    for text, error in _payloads(36, seed):
        try:
            expected = _segno_own(text, error)
        except segno.DataOverflowError:
            with pytest.raises(segno.DataOverflowError):
                qr_mask.make_qr(text, error=error)
            continue
        made = qr_mask.make_qr(text, error=error)
        assert (made.version, made.error, made.mask) == (
            expected.version,
            expected.error,
            expected.mask,
        )
        assert made.matrix == expected.matrix
        masks.add(made.mask)
        versions.add(made.version)
        compared += 1
    assert compared > 24
    assert len(masks) >= 6 and max(versions) >= 30 and min(versions) <= 3


def test_ordonnance_codes_as_segno(issue_document: Any) -> None:
    """The codes printed on the examples, at both error levels the ordonnance uses."""
    from eprescrire import qr

    for name in ("reference.toml", "antibiotic.toml", "narcotic.toml", "chronic-ald.toml"):
        text = qr.encode(issue_document(name))
        for error in ("q", "m"):
            made, expected = qr_mask.make_qr(text, error=error), _segno_own(text, error)
            assert made.mask == expected.mask and made.matrix == expected.matrix


def test_scores_as_segno_for_every_mask() -> None:
    """Each mask's score (not only the winner) equals the sum of segno's four scores, on the
    exact matrices segno evaluates."""
    captured: list[tuple[bytearray, ...]] = []
    original = encoder.find_and_apply_best_mask

    def capture(matrix: Any, width: int, height: int, proposed_mask: Any = None) -> Any:
        captured.append(tuple(bytearray(row) for row in matrix))
        return original(matrix, width, height, proposed_mask)

    encoder.find_and_apply_best_mask = capture
    try:
        for text, error in _payloads(12, 3):
            try:
                segno.make_qr(text, error=error, boost_error=False)
            except segno.DataOverflowError:
                continue
    finally:
        encoder.find_and_apply_best_mask = original
    assert captured
    for matrix in captured:
        n = len(matrix)
        layout = qr_mask._layout(n)
        function = encoder.make_matrix(n, n)
        encoder.add_finder_patterns(function, n, n)
        encoder.add_alignment_patterns(function, n, n)
        function[-8][8] = 0x1
        region = tuple(tuple(v > 0x1 for v in row) for row in function)
        modules = layout.read(matrix)
        assert modules is not None
        for number, pattern in enumerate(encoder.get_data_mask_functions(False)):
            masked = [bytearray(row) for row in matrix]
            encoder.apply_mask(masked, pattern, n, n, _lookup(region))
            assert layout.rows(modules ^ layout.masks[number]) == tuple(masked)
            assert layout.score(modules ^ layout.masks[number]) == sum(
                encoder.mask_scores(masked, n, n)
            )


def _lookup(region: tuple[tuple[bool, ...], ...]) -> Any:
    return lambda i, j: region[i][j]


def test_patterns_in_order_agree_with_the_shortcut() -> None:
    """The step-by-step N3 count (used when patterns overlap) gives what the shortcut gives
    whenever the shortcut applies, and both paths are taken."""
    taken = {"shortcut": 0, "in order": 0}
    for text, error in _payloads(24, 4):
        try:
            code = _segno_own(text, error)
        except segno.DataOverflowError:
            continue
        n = len(code.matrix)
        layout = qr_mask._layout(n)
        modules = layout.read(tuple(bytearray(row) for row in code.matrix))
        assert modules is not None
        light = layout.matrix & ~modules
        for step in (1, layout.stride):
            d, lt = modules, light
            found = d & (lt >> step) & (d >> 2 * step) & (d >> 3 * step) & (d >> 4 * step)
            found &= (lt >> 5 * step) & (d >> 6 * step)
            before = d << step | d << 2 * step | d << 3 * step | d << 4 * step
            after = d >> 7 * step | d >> 8 * step | d >> 9 * step | d >> 10 * step
            counted = found & ~(before & after)
            in_order = layout._finder_like_in_order(found, counted, step)
            if found & (counted << 4 * step | counted << 6 * step):
                taken["in order"] += 1
            else:
                taken["shortcut"] += 1
                assert in_order == 40 * counted.bit_count()
            assert layout._finder_like(modules, light, step) == in_order
    assert taken["shortcut"] and taken["in order"]


def test_left_to_segno_when_not_a_plain_qr_code() -> None:
    matrix = tuple(bytearray(21) for _ in range(21))
    assert qr_mask.find_and_apply_best_mask(matrix, 21, 21, proposed_mask=3) is None
    assert qr_mask.find_and_apply_best_mask(matrix[:11], 11, 11) is None  # Micro QR size
    odd = tuple(bytearray([2] * 21) for _ in range(21))  # a module neither light nor dark
    assert qr_mask.find_and_apply_best_mask(odd, 21, 21) is None
    with qr_mask._fast_mask_choice():  # a Micro QR code goes through segno's own choice
        micro = segno.make_micro("HELLO42")
    expected = segno.make_micro("HELLO42")
    assert (micro.mask, micro.matrix) == (expected.mask, expected.matrix)


def test_segno_restored_and_other_threads_untouched() -> None:
    original = encoder.find_and_apply_best_mask
    seen: list[Any] = []

    def other_thread() -> None:
        seen.append(encoder.find_and_apply_best_mask)

    with qr_mask._fast_mask_choice():
        assert encoder.find_and_apply_best_mask is not original
        thread = threading.Thread(target=lambda: seen.append(_segno_own("ABC123", "m").mask))
        thread.start()
        thread.join()
        with qr_mask._fast_mask_choice():  # nested: left as it is
            other_thread()
    assert encoder.find_and_apply_best_mask is original
    assert seen[0] == _segno_own("ABC123", "m").mask
    with pytest.raises(segno.DataOverflowError):
        qr_mask.make_qr("A" * 5000, error="h")
    assert encoder.find_and_apply_best_mask is original
