"""The printed QR symbol: made once per document, drawn as the same path, one-way imports."""

from __future__ import annotations

import ast
import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
import segno
from reportlab.pdfgen import canvas as pdfcanvas

from eprescrire import pdf_layout, qr, render, signing, symbol

PACKAGE = Path(symbol.__file__).parent


@pytest.fixture()
def reference(issue_document: Any) -> signing.SignedDocument:
    return issue_document("reference.toml")


def test_runs_cover_exactly_the_dark_modules() -> None:
    chosen = symbol.choose_symbol("RX1:" + "7A" * 150, 50.0)
    rebuilt = [[False] * chosen.modules for _ in range(chosen.modules)]
    for row, first, length in chosen.runs:
        assert length > 0
        assert first + length == chosen.modules or not chosen.matrix[row][first + length]
        assert first == 0 or not chosen.matrix[row][first - 1], "runs are maximal"
        for column in range(first, first + length):
            rebuilt[row][column] = True
    assert tuple(tuple(row) for row in rebuilt) == chosen.matrix


def test_matrix_is_segnos() -> None:
    chosen = symbol.choose_symbol("RX1:" + "A" * 300, 52.0)
    code = segno.make_qr(chosen.text, error=chosen.error, boost_error=False)
    expected = tuple(tuple(bool(v) for v in row) for row in code.matrix_iter(scale=1, border=0))
    assert chosen.matrix == expected and chosen.version == code.version


def _pdf(draw: Any) -> bytes:
    buffer = io.BytesIO()
    canvas = pdfcanvas.Canvas(buffer, invariant=1)
    draw(canvas)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _one_rect_per_run(canvas: Any, chosen: symbol.QrSymbol, x: float, y: float) -> None:
    """The QR drawn the plain way: a path with one rect() call per run of dark modules."""
    module = chosen.module_mm * pdf_layout.mm
    side = chosen.side_mm * pdf_layout.mm
    n = chosen.modules
    canvas.saveState()
    canvas.setFillColor(pdf_layout.colors.white)
    canvas.rect(x, y, side, side, stroke=0, fill=1)
    canvas.setFillColor(pdf_layout.colors.black)
    path = canvas.beginPath()
    for r, c, length in chosen.runs:
        top = y + (symbol.QUIET_ZONE + n - r) * module
        path.rect(x + (symbol.QUIET_ZONE + c) * module, top - module, length * module, module)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def test_drawn_path_is_the_one_a_rect_per_run_draws(reference: signing.SignedDocument) -> None:
    """The QR path is written in one piece; it must be byte for byte what reportlab writes
    for a path with one rect() per run of dark modules."""
    printable = render.Printable(reference)
    for page, (x, y) in (("A5", (28.346456692913385, 62.7)), ("A4", (42.51968503937008, 81.3))):
        chosen = printable.symbol(page)
        drawn = _pdf(lambda canvas, s=chosen, x=x, y=y: pdf_layout.draw_qr(canvas, s, x, y))
        plain = _pdf(lambda canvas, s=chosen, x=x, y=y: _one_rect_per_run(canvas, s, x, y))
        assert drawn == plain, page


def test_a_document_is_encoded_once_for_every_output(
    reference: signing.SignedDocument, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"encode": 0, "decode": 0, "make_qr": 0}

    def counting(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    expected = {page: render.pdf_bytes(reference, page=page) for page in render.PAGES}
    monkeypatch.setattr(qr, "encode", counting("encode", qr.encode))
    monkeypatch.setattr(qr, "decode", counting("decode", qr.decode))
    monkeypatch.setattr(segno, "make_qr", counting("make_qr", segno.make_qr))
    printable = render.Printable(reference)
    assert render.pdf_bytes(printable, page="A5") == expected["A5"]
    render.write_pdf(printable, tmp_path / "rx.pdf", page="A4")
    assert (tmp_path / "rx.pdf").read_bytes() == expected["A4"]
    render.write_qr(printable, tmp_path / "rx.png")
    render.write_qr(printable, tmp_path / "rx.svg")
    assert printable.symbol("A5").error == printable.symbol("A4").error == "Q"
    # One QR text with one self-check (decoding it back), one segno symbol for all four files.
    assert calls == {"encode": 1, "decode": 1, "make_qr": 1}


def test_encode_still_refuses_a_token_that_is_not_its_prescriptions(
    reference: signing.SignedDocument,
) -> None:
    other = dataclasses.replace(
        reference.prescription,
        patient=dataclasses.replace(reference.prescription.patient, given_name="Lucie"),
    )
    forged = dataclasses.replace(reference, prescription=other)
    with pytest.raises(ValueError, match="not the canonical token"):
        qr.encode(forged)
    with pytest.raises(render.InputError, match="not the canonical token"):
        render.pdf_bytes(forged)


def test_a_larger_box_may_take_a_better_error_level() -> None:
    """A text too large for Q in the A5 box but not in the A4 box: each page gets its own
    choice from the symbols encoded once."""
    symbols = symbol.Symbols("RX1:" + "7A" * 440)
    small, large = symbols.for_box(50.0), symbols.for_box(66.0)
    assert (small.error, large.error) == ("M", "Q")
    assert small == symbol.choose_symbol(symbols.text, 50.0)
    assert large == symbol.choose_symbol(symbols.text, 66.0)
    assert symbols.for_box(50.0) is small


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("eprescrire")}


def test_paper_modules_import_one_way() -> None:
    """render -> pdf_layout -> symbol, render -> symbol: no module imports one above it,
    not even inside a function."""
    assert not {"eprescrire.render", "eprescrire.pdf_layout"} & _imports("symbol")
    assert "eprescrire.render" not in _imports("pdf_layout")
    assert "eprescrire.symbol" in _imports("pdf_layout")


def test_reportlab_runs_with_its_c_accelerator() -> None:
    from reportlab.lib import rl_accel

    assert "fp_str" not in rl_accel._py_funcs, "rl-accel is a dependency: install it"
