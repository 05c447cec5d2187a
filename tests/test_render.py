"""The printed ordonnance and the QR images: content, layout rules, and paper round trips."""

from __future__ import annotations

import copy
import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image

from conftest import EXAMPLE_FILES, load_example
from eprescrire import ids, pdf_layout, qr, render, signing
from eprescrire.errors import InputError, UsageError
from eprescrire.text import french_spacing

POINTS_PER_MM = 72 / 25.4


def pdf_text(data: bytes) -> list[str]:
    """Text of every page, whitespace collapsed (wrapped lines joined by one space)."""
    pdf = pdfium.PdfDocument(data)
    return [" ".join(page.get_textpage().get_text_range().split()) for page in pdf]


def scan_page(data: bytes, dpi: int, index: int = 0) -> list[str]:
    """Rasterise one page as a scanner would and return the QR texts found on it."""
    image = pdfium.PdfDocument(data)[index].render(scale=dpi / 72, grayscale=True).to_pil()
    return [
        r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode
    ]


@pytest.fixture()
def reference(issue_document: Any) -> signing.SignedDocument:
    return issue_document("reference.toml")


@pytest.fixture(scope="module")
def long_data() -> dict[str, Any]:
    """30 lines, ALD and not, with long labels and posology."""
    data = copy.deepcopy(load_example("reference.toml"))
    base = data["lines"]
    data["lines"] = [
        dict(
            base[n % len(base)],
            label=f"{base[n % len(base)]['label']} — ligne numéro {n + 1}",
            posology=base[n % len(base)]["posology"] + ", à adapter selon la tolérance clinique",
        )
        for n in range(30)
    ]
    return data


# --------------------------------------------------------------------------------------------
# Content


def test_reference_ordonnance_shows_what_was_signed(reference: signing.SignedDocument) -> None:
    p = reference.prescription
    pages = pdf_text(render.pdf_bytes(reference))
    assert len(pages) == 1, "the reference prescription fits one A5 page"
    text = pages[0]
    for expected in (
        "Dr Claire Martin",
        "Médecine générale",
        "RPPS 10003456786",
        "Cabinet médical du Parc",
        "FINESS 750001232",
        "12 rue de la Roquette, 75011 Paris",
        "Tél. 01 43 55 12 34",
        "Mme DURAND Louise",
        "Née le 14/03/1956",
        f"Le {p.issued_at.astimezone(pdf_layout.rules.PARIS):%d/%m/%Y}",
        "À renouveler 2 fois",
        "NS (MTE) — Non substituable",
        "Durée : 10 jours",
        "Quantité : 2 × boîte de 8",
        pdf_layout.ALD_CAPTION,
        pdf_layout.OTHER_CAPTION,
        ids.grouped(p.id),
        "Ordonnance signée électroniquement",
        "Signature du prescripteur",
        "Nombre de lignes prescrites : 4",
        "1/1",
    ):
        assert expected in text, expected
    for number, line in enumerate(p.lines, start=1):
        assert f"{number}. {line.label}" in text
        assert line.posology in text
    # Bizone: ALD lines (1 and 3) above the separator, the others below, numbers kept.
    upper, lower = text.split(pdf_layout.OTHER_CAPTION)
    assert "1. METFORMINE" in upper and "3. AMLODIPINE" in upper
    assert "2. LÉVOTHYROXINE" in lower and "4. PARACÉTAMOL" in lower
    assert p.patient.ins not in text, "the INS is carried by the code, not printed"


def test_no_bizone_without_ald_and_patient_details(issue_document: Any) -> None:
    text = pdf_text(render.pdf_bytes(issue_document("paediatric.toml")))[0]
    assert pdf_layout.ALD_CAPTION not in text
    assert pdf_layout.OTHER_CAPTION not in text
    assert "PETIT Chloé" in text and "Mme PETIT" not in text, "no title for a minor"
    assert "Poids : 16,5 kg" in text
    assert "NS (EFG)" in text
    assert "À renouveler" not in text
    assert "Remarques : Bien agiter le flacon." in text
    assert "> 38,5 °C" in text


def test_narcotic_quantities_in_words(issue_document: Any) -> None:
    text = pdf_text(render.pdf_bytes(issue_document("narcotic.toml")))[0]
    assert "Mme BERNARD Monique" in text
    assert (
        "Stupéfiant — en toutes lettres : dosage : trente milligrammes ; posologie : une gélule "
        "matin et soir, à heures fixes (toutes les douze heures) ; quantité : une boîte de "
        "quatorze gélules ; durée : quatorze jours."
    ) in text
    assert "Délivrance fractionnée : 7 jours par délivrance" in text
    assert "Nombre de spécialités prescrites : 2 (deux)" in text
    assert "ORDONNANCE SÉCURISÉE" in text and "imprimée sur papier sécurisé" in text
    # The second line is not a narcotic: no words for it.
    assert text.count("en toutes lettres :") == 1


def test_no_line_starts_with_french_punctuation(issue_document: Any) -> None:
    """A wrapped line never starts with « : ; ! ? » » nor ends on « « » (the narcotic example's
    notes broke before « : délivrance » once)."""
    assert french_spacing("Fractionnement : oui ; « non » !") == (
        "Fractionnement\u00a0: oui\u00a0; «\u00a0non\u00a0»\u00a0!"
    )
    for name in EXAMPLE_FILES:
        for page in pdfium.PdfDocument(render.pdf_bytes(issue_document(name))):
            for line in page.get_textpage().get_text_range().splitlines():
                assert not re.match(r"\s*[:;!?\u00bb]", line), (name, line)
                assert not line.rstrip().endswith("\u00ab"), (name, line)


def test_digital_ordonnance_says_how_to_check_it(reference: signing.SignedDocument) -> None:
    text = pdf_text(render.pdf_bytes(reference))[0]
    assert text.startswith("Dr ") or "Ordonnance numérique" in text
    assert "Ordonnance numérique" in text
    assert "en scannant le code" in text and "numéro imprimé en clair" in text
    assert "traitée comme une ordonnance papier classique" in text
    assert "la signature manuscrite du prescripteur est requise" in text
    assert "Signature du prescripteur (manuscrite)" in text
    assert "papier sécurisé" not in text, "only narcotics need secure paper"


@pytest.mark.parametrize(
    ("sex", "title", "noun"),
    [("F", "Mme ", "La patiente"), ("M", "M. ", "Le patient"), (None, "", "Le patient ou la")],
)
def test_patient_noun_and_title_follow_sex_and_age(
    issue_document: Any, sex: str | None, title: str, noun: str
) -> None:
    data = copy.deepcopy(load_example("antibiotic.toml"))
    data["patient"].pop("sex", None)
    data["patient"].pop("ins", None)
    if sex:
        data["patient"]["sex"] = sex
    data["share_opposition"] = True
    text = pdf_text(render.pdf_bytes(issue_document(data=data)))[0]
    assert f"{title}LEFÈVRE Thomas" in text
    assert f"{noun}" in text and "s'oppose au partage" in text
    data["patient"]["birth_date"] = dt.date(2010, 1, 1)  # a minor: never a title
    text = pdf_text(render.pdf_bytes(issue_document(data=data)))[0]
    assert "LEFÈVRE Thomas" in text and "Mme LEFÈVRE" not in text and "M. LEFÈVRE" not in text


def test_long_pack_and_contraceptive_are_shown(issue_document: Any) -> None:
    data = copy.deepcopy(load_example("antibiotic.toml"))
    data["lines"][0]["pack_months"] = 3
    contraceptive = {k: v for k, v in data["lines"][0].items() if k != "pack_months"}
    data["lines"].append(contraceptive | {"contraceptive": True})
    text = pdf_text(render.pdf_bytes(issue_document(data=data)))[0]
    assert "Conditionnement de 3 mois : peut être délivré en une fois" in text
    assert "Contraceptif : jusqu'à 12 semaines" in text


def test_unknown_sex_and_share_opposition(issue_document: Any) -> None:
    data = copy.deepcopy(load_example("antibiotic.toml"))
    del data["patient"]["sex"]
    del data["patient"]["ins"]
    data["share_opposition"] = True
    text = pdf_text(render.pdf_bytes(issue_document(data=data)))[0]
    assert "LEFÈVRE Thomas" in text and "M. LEFÈVRE" not in text
    assert "Né(e) le 21/08/1988" in text
    assert "s'oppose au partage" in text


def test_accents_and_symbols_survive(issue_document: Any) -> None:
    data = copy.deepcopy(load_example("antibiotic.toml"))
    data["patient"]["family_name"] = "Lœwenbrück-Éléonore"
    data["lines"][0]["label"] = "CHOLÉCALCIFÉROL 100 000 UI/2 ml, « solution » buvable — µg"
    data["lines"][0]["posology"] = "1 ampoule si T ≥ 38 °C ; ne pas dépasser ½ dose… l’été"
    data["notes"] = "Œdème : revoir à J+7.\nSecond paragraphe."
    text = pdf_text(render.pdf_bytes(issue_document(data=data)))[0]
    assert "LŒWENBRÜCK-ÉLÉONORE Thomas" in text
    assert "« solution » buvable — µg" in text
    assert "T ≥ 38 °C ; ne pas dépasser ½ dose… l’été" in text
    assert "Œdème : revoir à J+7. Second paragraphe." in text


def test_glyphs_no_font_has_become_question_marks() -> None:
    primary, fallback = pdf_layout._fonts()
    assert {ord(c) for c in "µœŒ’°ÉéÀ≥«»–—…½"} <= primary
    assert pdf_layout.markup("漢 <b>&") == "? &lt;b&gt;&amp;"
    assert pdf_layout.markup("e\u0301") == "é", "combining accents are composed before drawing"
    if ord("✓") in fallback:  # DejaVu on this machine: drawn with the fallback face
        assert pdf_layout.markup("✓") == f'<font face="{pdf_layout.FALLBACK}">✓</font>'
    else:
        assert pdf_layout.markup("✓") == "?"


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (1, "un"),
        (14, "quatorze"),
        (21, "vingt et un"),
        (71, "soixante et onze"),
        (77, "soixante-dix-sept"),
        (80, "quatre-vingts"),
        (81, "quatre-vingt-un"),
        (91, "quatre-vingt-onze"),
        (100, "cent"),
        (101, "cent un"),
        (200, "deux cents"),
        (280, "deux cent quatre-vingts"),
        (999, "neuf cent quatre-vingt-dix-neuf"),
    ],
)
def test_numbers_in_french_words(number: int, words: str) -> None:
    assert pdf_layout.in_words(number) == words


# --------------------------------------------------------------------------------------------
# Layout


@pytest.mark.parametrize(
    ("page", "size_mm"), [("A5", (148, 210)), ("A4", (210, 297)), ("a4", (210, 297))]
)
def test_page_sizes(reference: signing.SignedDocument, page: str, size_mm: tuple[int, int]) -> None:
    pdf = pdfium.PdfDocument(render.pdf_bytes(reference, page=page))
    width, height = pdf[0].get_size()
    assert width == pytest.approx(size_mm[0] * POINTS_PER_MM, abs=0.5)
    assert height == pytest.approx(size_mm[1] * POINTS_PER_MM, abs=0.5)


def test_unknown_page_size_is_a_usage_error(reference: signing.SignedDocument) -> None:
    with pytest.raises(UsageError, match="A5 or A4"):
        render.pdf_bytes(reference, page="Letter")


def test_long_prescription_flows_onto_more_pages(
    issue_document: Any, long_data: dict[str, Any]
) -> None:
    document = issue_document(data=long_data)
    data = render.pdf_bytes(document)
    pages = pdf_text(data)
    assert len(pages) >= 2
    text = qr.encode(document)
    for number, page in enumerate(pages, start=1):
        assert "Dr Claire Martin" in page and "Mme DURAND Louise" in page, "header repeated"
        assert f"{number}/{len(pages)}" in page
        assert ids.grouped(document.prescription.id) in page
    every = " ".join(pages)
    for number, line in enumerate(document.prescription.lines, start=1):
        pattern = rf"(?<!\d){number}\. {re.escape(line.label)}(?!\d)"
        assert len(re.findall(pattern, every)) == 1, number
    assert scan_page(data, 150, 0) == [text]
    assert scan_page(data, 150, len(pages) - 1) == [text]
    # Bizone: a page that continues a zone repeats its caption, so no line changes zone.
    for page in pages[1:]:
        first = re.search(r"(?<!\d)(\d+)\. METFORMINE|(?<!\d)(\d+)\. [A-ZÉ]{4,}", page)
        assert first is not None
        number = int(first.group(1) or first.group(2))
        caption = pdf_layout.ALD_CAPTION if number % 2 == 1 else pdf_layout.OTHER_CAPTION
        assert page.index(caption) < first.start(), number


def test_continuation_pages_without_ald_have_no_zone_caption(
    issue_document: Any, long_data: dict[str, Any]
) -> None:
    data = copy.deepcopy(long_data)
    for line in data["lines"]:
        line["ald"] = False
    pages = pdf_text(render.pdf_bytes(issue_document(data=data), page="A4"))
    assert len(pages) >= 2
    assert not any("(suite)" in page or pdf_layout.ALD_CAPTION in page for page in pages)


def test_module_size_and_error_level_for_every_example(issue_document: Any) -> None:
    for path in EXAMPLE_FILES:
        text = qr.encode(issue_document(path.name))
        for page, box in render.QR_BOX_MM.items():
            symbol = render.choose_symbol(text, box)
            assert symbol.error in ("Q", "M"), (path.name, page)
            assert symbol.module_mm >= render.MIN_MODULE_MM, (path.name, page)
            assert symbol.side_mm <= box + 1e-9, (path.name, page)
            assert symbol.modules == 17 + 4 * symbol.version


def test_error_level_choice() -> None:
    short = render.choose_symbol("RX1:" + "A" * 300, 52.0)
    assert short.error == "Q" and short.module_mm >= render.MIN_MODULE_MM
    long = render.choose_symbol("RX1:" + "7" * 900 + "A" * 300, 52.0)
    assert long.error == "M"
    assert long.module_mm == render.MIN_MODULE_MM and long.side_mm > 52.0, "the box grows"
    with pytest.raises(InputError, match="too large"):
        render.choose_symbol("A" * 5000, 52.0)


def test_printed_modules_measure_at_least_half_a_millimetre(
    reference: signing.SignedDocument,
) -> None:
    """Measure the printed code on a 600 dpi raster: finder pattern width / 7 modules."""
    data = render.pdf_bytes(reference)
    image = pdfium.PdfDocument(data)[0].render(scale=600 / 72, grayscale=True).to_pil()
    barcode = zxingcpp.read_barcodes(image)[0]
    corners = barcode.position
    side_px = corners.top_right.x - corners.top_left.x
    symbol = render.choose_symbol(qr.encode(reference), render.QR_BOX_MM["A5"])
    module_mm = side_px / symbol.modules / 600 * 25.4
    assert module_mm >= render.MIN_MODULE_MM - 0.01
    assert module_mm == pytest.approx(symbol.module_mm, rel=0.03)
    # Bottom-left: the code sits in the lower left quarter of the page.
    assert corners.top_left.x < image.width / 2 and corners.top_left.y > image.height / 2


def test_qr_is_vector_not_bitmap(reference: signing.SignedDocument) -> None:
    data = render.pdf_bytes(reference)
    page = pdfium.PdfDocument(data)[0]
    kinds = {obj.type for obj in page.get_objects()}
    assert pdfium.raw.FPDF_PAGEOBJ_IMAGE not in kinds
    assert pdfium.raw.FPDF_PAGEOBJ_PATH in kinds


def test_pdf_is_reproducible(reference: signing.SignedDocument) -> None:
    assert render.pdf_bytes(reference) == render.pdf_bytes(reference)


# --------------------------------------------------------------------------------------------
# Files


def test_write_pdf_never_overwrites(reference: signing.SignedDocument, tmp_path: Path) -> None:
    target = tmp_path / "rx.pdf"
    render.write_pdf(reference, target, page="A4")
    assert target.read_bytes().startswith(b"%PDF")
    before = target.read_bytes()
    with pytest.raises(InputError, match=re.escape(str(target))):
        render.write_pdf(reference, target)
    assert target.read_bytes() == before
    with pytest.raises(UsageError, match="cannot write"):
        render.write_pdf(reference, tmp_path / "missing" / "rx.pdf")


def test_png_qr_decodes_to_the_qr_text(reference: signing.SignedDocument, tmp_path: Path) -> None:
    target = tmp_path / "rx.png"
    render.write_qr(reference, target, scale=3)
    image = Image.open(target)
    symbol = render.choose_symbol(qr.encode(reference), render.QR_BOX_MM["A5"])
    assert image.size == ((symbol.modules + 8) * 3,) * 2, "4-module quiet zone"
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [qr.encode(reference)]
    with pytest.raises(InputError, match="already exists"):
        render.write_qr(reference, target)


def _svg_to_image(data: bytes, scale: int = 4) -> Image.Image:
    """Draw segno's SVG (a fill path for the light area, stroked h-runs for dark modules)."""
    root = ET.fromstring(data)
    size = int(root.get("width", "0"))
    group = root.find("{http://www.w3.org/2000/svg}g")
    assert group is not None
    unit = int(re.fullmatch(r"scale\((\d+)\)", group.get("transform", "")).group(1))  # type: ignore[union-attr]
    modules = size // unit
    image = Image.new("L", (modules * scale, modules * scale), 255)
    dark = [p for p in group if p.get("stroke") == "#000"]
    assert len(dark) == 1
    x = y = 0.0
    for command, args in re.findall(r"([MmHhVvZz])([^MmHhVvZz]*)", dark[0].get("d", "")):
        values = [float(v) for v in args.replace(",", " ").split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        elif command in "hH":
            end = x + values[0] if command == "h" else values[0]
            row = int(y - 0.5)
            for col in range(int(min(x, end)), int(max(x, end))):
                image.paste(0, (col * scale, row * scale, (col + 1) * scale, (row + 1) * scale))
            x = end
        else:
            raise AssertionError(f"unexpected SVG path command {command}")
    return image


def test_svg_qr_decodes_to_the_qr_text(reference: signing.SignedDocument, tmp_path: Path) -> None:
    target = tmp_path / "rx.svg"
    render.write_qr(reference, target)
    data = target.read_bytes()
    assert data.startswith(b"<?xml")
    assert [r.text for r in zxingcpp.read_barcodes(_svg_to_image(data))] == [qr.encode(reference)]


def test_qr_image_format_and_scale_are_checked(
    reference: signing.SignedDocument, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"\.png or \.svg"):
        render.write_qr(reference, tmp_path / "rx.jpg")
    for bad in (0, 41, -1):
        with pytest.raises(UsageError, match="scale"):
            render.write_qr(reference, tmp_path / "rx.png", scale=bad)
    assert not (tmp_path / "rx.png").exists()


# --------------------------------------------------------------------------------------------
# Paper round trip: issue -> PDF -> raster -> scan -> decode -> verify


@pytest.mark.parametrize("example", [p.name for p in EXAMPLE_FILES])
def test_round_trip_through_paper(example: str, issue_document: Any, demo_trust: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    document = issue_document(example, now=now)
    for page, dpis in (("A5", (150, 100)), ("A4", (100,))):
        data = render.pdf_bytes(document, page=page)
        for dpi in dpis:
            texts = scan_page(data, dpi)
            assert len(texts) == 1, (example, page, dpi)
            token = qr.decode(texts[0])
            assert token == document.token
            verdict = signing.verify_token(f"{example}@{dpi}", token, demo_trust, now)
            assert verdict.status == "valid", (example, page, dpi, verdict.reasons)
            assert verdict.prescription == document.prescription


# --------------------------------------------------------------------------------------------
# Command line


@pytest.fixture()
def signed_file(tmp_path: Path, reference: signing.SignedDocument) -> Path:
    target = tmp_path / "rx.json"
    target.write_bytes(reference.to_json_bytes())
    return target


def test_cli_render_and_refuse_overwrite(signed_file: Path, tmp_path: Path, run_cli: Any) -> None:
    target = tmp_path / "rx.pdf"
    result = run_cli("render", signed_file, "--out", target, "--page", "A4")
    assert result.code == 0, result
    assert target.read_bytes().startswith(b"%PDF")
    again = run_cli("render", signed_file, "--out", target)
    assert again.code == 3
    assert "already exists" in again.stderr and str(target) in again.stderr
    assert again.stderr.count("\n") == 1, "one line, no traceback"


def test_cli_render_many_with_json(issue_document: Any, tmp_path: Path, run_cli: Any) -> None:
    names = []
    for example in ("antibiotic.toml", "narcotic.toml"):
        document = issue_document(example)
        path = tmp_path / f"{example}.json"
        path.write_bytes(document.to_json_bytes())
        names.append((path, document.prescription.id))
    result = run_cli("render", *(p for p, _ in names), "--out-dir", tmp_path / "pdf", "--json")
    assert result.code == 0, result
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 2
    for line, (path, ident) in zip(lines, names, strict=True):
        assert '"status":"rendered"' in line and ident in line and str(path) in line
        assert (tmp_path / "pdf" / f"{ident}.pdf").is_file()


def test_cli_render_bad_inputs(signed_file: Path, tmp_path: Path, run_cli: Any) -> None:
    missing = run_cli("render", tmp_path / "nope.json", "--out", tmp_path / "a.pdf")
    assert missing.code == 3 and "no such file" in missing.stderr
    toml = run_cli("render", load_example_path(), "--out", tmp_path / "b.pdf")
    assert toml.code == 3 and "not a readable signed document" in toml.stderr
    body = signed_file.read_text()
    token = re.search(r'"jws": "([^"]+)"', body).group(1)  # type: ignore[union-attr]
    head, payload, signature = token.split(".")
    forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(body.replace(token, f"{head}.{payload}.{forged}"))
    rejected = run_cli("render", tampered, "--out", tmp_path / "c.pdf")
    assert rejected.code == 1, rejected
    assert not (tmp_path / "c.pdf").exists()
    mixed = run_cli("render", signed_file, tmp_path / "nope.json", "--out-dir", tmp_path / "d")
    assert mixed.code == 3
    assert run_cli("render", signed_file, "--out", tmp_path / "e.pdf", "--page", "B5").code == 2
    assert (
        run_cli("render", signed_file, "--out", tmp_path / "f.pdf", "--out-dir", tmp_path).code == 2
    )
    assert run_cli("render", signed_file, signed_file, "--out", tmp_path / "g.pdf").code == 2
    assert run_cli("render", signed_file).code == 2
    for result in (missing, toml, rejected):
        assert "Traceback" not in result.stderr


def load_example_path() -> Path:
    return EXAMPLE_FILES[0]


def test_cli_qr_png_and_svg(signed_file: Path, tmp_path: Path, run_cli: Any) -> None:
    reference = signing.load_document(signed_file.read_bytes())
    png = tmp_path / "rx.png"
    assert run_cli("qr", signed_file, "--out", png, "--scale", "4").code == 0
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(png))] == [qr.encode(reference)]
    svg = tmp_path / "rx.svg"
    assert run_cli("qr", signed_file, "--out", svg).code == 0
    assert svg.read_bytes().startswith(b"<?xml")
    bad = run_cli("qr", signed_file, "--out", tmp_path / "rx.gif")
    assert bad.code == 2 and ".png or .svg" in bad.stderr
    assert run_cli("qr", signed_file, "--out", png).code == 3
    assert run_cli("qr", signed_file, "--out", tmp_path / "x.png", "--scale", "0").code == 2


def test_cli_through_typer_runner(signed_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eprescrire.cli import app

    runner = CliRunner()
    target = tmp_path / "runner.pdf"
    result = runner.invoke(app, ["render", str(signed_file), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert pdf_text(target.read_bytes())[0].count("Dr Claire Martin") == 1
    result = runner.invoke(app, ["qr", str(signed_file), "--out", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    helped = runner.invoke(app, ["render", "--help"])
    assert helped.exit_code == 0 and "--page" in helped.output


def test_longest_fields_the_model_allows_still_lay_out(issue_document: Any) -> None:
    data = copy.deepcopy(load_example("reference.toml"))
    data["prescriber"]["specialty"] = ("Spécialité " * 10)[:100].strip()
    data["prescriber"]["facility"]["name"] = ("Centre hospitalier " * 11)[:200].strip()
    data["prescriber"]["facility"]["address"] = ("Bâtiment B, escalier C, " * 13)[:300].strip()
    data["patient"]["given_name"] = "Marie-" * 16 + "Anne"
    data["notes"] = ("Surveillance clinique et biologique. " * 28)[:1000].strip()
    data["lines"] = [
        dict(
            data["lines"][n % 4],
            label=("ACIDE ACÉTYLSALICYLIQUE/" * 9)[:200],
            posology=("1 comprimé le matin, " * 24)[:500].strip(),
        )
        for n in range(3)
    ]
    document = issue_document(data=data)
    pages = pdf_text(render.pdf_bytes(document))
    assert len(pages) >= 2
    assert all(ids.grouped(document.prescription.id) in page for page in pages)
    assert "Surveillance clinique" in pages[-1]
