"""Reading QR codes from images and PDFs (eprescrire.scan), and bad scans through ``verify``."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import ASSETS, KEYS
from eprescrire import scan
from eprescrire.errors import EnvironmentProblem, InputError, UsageError

SCAN_ASSETS = ASSETS / "scan"
TRUST = KEYS / "demo-trust"
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _text(seed: int, length: int = 300) -> str:
    rng = random.Random(seed)
    return "EPX:" + "".join(rng.choice(ALPHANUMERIC) for _ in range(length))


def qr_image(text: str, scale: int = 4) -> Image.Image:
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def page(*codes: Image.Image, size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """A white 150 dpi A4 page with the codes placed one under the other."""
    sheet = Image.new("L", size, 255)
    y = 150
    for code in codes:
        sheet.paste(code, (120, y))
        y += code.height + 80
    return sheet


def pdf_with_pages(tmp_path: Path, pages: list[Image.Image | None], name: str = "rx.pdf") -> Path:
    """A PDF whose page i shows image i at 0.5 mm per pixel, or only text when None."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = tmp_path / name
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number, image in enumerate(pages, start=1):
        pdf.drawString(20 * mm, 280 * mm, f"Page {number}")
        if image is not None:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            buffer.seek(0)
            side = image.width / 4 * 0.5 * mm  # 4 px per module -> 0.5 mm modules
            pdf.drawImage(ImageReader(buffer), 20 * mm, 20 * mm, side, side)
        pdf.showPage()
    pdf.save()
    return path


# --------------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize(
    ("suffix", "options"),
    [("png", {}), ("jpg", {"quality": 85}), ("tif", {}), ("bmp", {}), ("webp", {"quality": 90})],
)
def test_each_image_format_decodes(tmp_path: Path, suffix: str, options: dict[str, Any]) -> None:
    text = _text(1)
    path = tmp_path / f"scan.{suffix}"
    page(qr_image(text)).save(path, **options)
    assert scan.read_codes(path) == [text]


def test_colour_and_palette_images_decode(tmp_path: Path) -> None:
    text = _text(2)
    rgb = tmp_path / "colour.png"
    page(qr_image(text)).convert("RGB").save(rgb)
    palette = tmp_path / "palette.gif"
    page(qr_image(text)).convert("P").save(palette)
    assert scan.read_codes(rgb) == [text]
    assert scan.read_codes(palette) == [text]


def test_transparent_background_is_paper_not_ink(tmp_path: Path) -> None:
    # Light modules fully transparent over black RGB: flattened naively it would be all black.
    text = _text(3)
    code = qr_image(text)
    rgba = Image.new("RGBA", code.size, (0, 0, 0, 0))
    rgba.putalpha(code.point(lambda v: 255 - v))
    path = tmp_path / "transparent.png"
    rgba.save(path)
    assert scan.read_codes(path) == [text]


def test_multi_page_tiff_reads_every_frame(tmp_path: Path) -> None:
    first, second = _text(4), _text(5)
    blank = page()
    path = tmp_path / "batch.tif"
    blank.save(path, save_all=True, append_images=[page(qr_image(first)), page(qr_image(second))])
    assert scan.read_codes(path) == [first, second]


def test_pdf_code_on_page_two(tmp_path: Path) -> None:
    text = _text(6)
    path = pdf_with_pages(tmp_path, [None, qr_image(text)])
    assert scan.read_codes(path) == [text]


def test_pdf_every_page_read_and_duplicates_dropped(tmp_path: Path) -> None:
    one, two = _text(7), _text(8)
    path = pdf_with_pages(tmp_path, [qr_image(one), qr_image(two), qr_image(one)])
    assert scan.read_codes(path) == [one, two]


def test_two_codes_on_one_page(tmp_path: Path) -> None:
    one, two = _text(9, 120), _text(10, 120)
    path = tmp_path / "two.png"
    page(qr_image(one), qr_image(two)).save(path)
    assert sorted(scan.read_codes(path)) == sorted([one, two])


def test_rotated_scan_decodes(tmp_path: Path) -> None:
    text = _text(11)
    path = tmp_path / "rotated.png"
    page(qr_image(text)).rotate(90, expand=True, fillcolor=255).save(path)
    assert scan.read_codes(path) == [text]


def test_no_code_is_an_empty_list(tmp_path: Path) -> None:
    assert scan.read_codes(SCAN_ASSETS / "no-code.png") == []


def test_read_codes_from_image_accepts_any_mode() -> None:
    text = _text(12)
    image = page(qr_image(text)).convert("RGB")
    assert scan.read_codes_from_image(image) == [text]
    assert scan.read_codes_from_image(Image.new("RGB", (200, 200), "white")) == []


# --------------------------------------------------------------------------------------------
# First pass, then cheap retries only on a miss


def _counting(found_on: int | None) -> tuple[Callable[[Any, bool], list[str]], list[int]]:
    calls: list[int] = []

    def decode(image: Any, thorough: bool) -> list[str]:
        calls.append(len(calls))
        return ["CODE"] if found_on is not None and len(calls) - 1 == found_on else []

    return decode, calls


def test_a_clean_read_costs_one_pass() -> None:
    decode, calls = _counting(found_on=0)
    assert scan._scan(Image.new("L", (500, 500), 255), decode) == ["CODE"]
    assert len(calls) == 1


def test_retries_stop_at_the_first_rescue() -> None:
    decode, calls = _counting(found_on=2)
    assert scan._scan(Image.new("L", (500, 500), 255), decode) == ["CODE"]
    assert len(calls) == 3


def test_retries_are_bounded_when_nothing_is_found() -> None:
    decode, calls = _counting(found_on=None)
    assert scan._scan(Image.new("L", (500, 500), 255), decode) == []
    # The first pass, the shared retries, then the last one (doubled and median-filtered).
    assert len(calls) == 1 + len(scan._RETRIES) + 1


def test_salt_noise_is_rescued_by_a_retry(tmp_path: Path) -> None:
    text = _text(13)
    image = page(qr_image(text, scale=4))
    rng = random.Random(5)
    pixels = image.load()
    assert pixels is not None
    for _ in range(image.width * image.height * 10 // 100):
        pixels[rng.randrange(image.width), rng.randrange(image.height)] = rng.choice((0, 255))
    path = tmp_path / "salt.png"
    image.save(path)
    assert scan.read_codes(path) == [text]


# --------------------------------------------------------------------------------------------
# Bad input: one clear InputError, never a traceback


@pytest.mark.parametrize(
    ("asset", "message"),
    [
        ("bomb-40000x40000.png", "too large"),
        ("truncated.png", "truncated"),
        ("corrupt-body.png", "not a readable image"),
        ("not-an-image.png", "not a readable image"),
    ],
)
def test_bad_images_raise_input_error(asset: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        scan.read_codes(SCAN_ASSETS / asset)
    assert "\n" not in str(caught.value)


def test_decompression_bomb_warning_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns: we refuse as well.
    path = tmp_path / "big.png"
    page(qr_image(_text(14))).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1240 * 1754 * 3 // 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # even when the caller silences warnings
        with pytest.raises(InputError, match="too large"):
            scan.read_codes(path)


def test_large_later_tiff_frame_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "frames.tif"
    Image.new("L", (100, 100), 255).save(
        path, save_all=True, append_images=[Image.new("L", (1000, 1000), 255)]
    )
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)
    with pytest.raises(InputError, match="too large"):
        scan.read_codes(path)


def test_missing_empty_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        scan.read_codes(tmp_path / "absent.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        scan.read_codes(tmp_path / "empty.png")
    with pytest.raises(InputError, match="directory"):
        scan.read_codes(tmp_path)


def test_broken_pdf_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF garbage")
    with pytest.raises(InputError, match="not a readable PDF"):
        scan.read_codes(path)


def test_pdf_page_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = pdf_with_pages(tmp_path, [None, None, None])
    monkeypatch.setattr(scan, "MAX_PDF_PAGES", 2)
    with pytest.raises(InputError, match="too many pages"):
        scan.read_codes(path)


def test_file_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scan.png"
    page(qr_image(_text(15))).save(path)
    monkeypatch.setattr(scan, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InputError, match="too large"):
        scan.read_codes(path)


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="engine"):
        scan.read_codes(SCAN_ASSETS / "no-code.png", engine="tesseract")


# --------------------------------------------------------------------------------------------
# zbar, the second engine


def _zbar_available() -> bool:
    try:
        scan._decoder("zbar")
    except EnvironmentProblem:
        return False
    return True


zbar = pytest.mark.skipif(not _zbar_available(), reason="libzbar0 is not installed")


@zbar
def test_zbar_reads_png_and_pdf(tmp_path: Path) -> None:
    text = _text(16)
    png = tmp_path / "scan.png"
    page(qr_image(text)).save(png)
    assert scan.read_codes(png, engine="zbar") == [text]
    pdf = pdf_with_pages(tmp_path, [None, qr_image(text)])
    assert scan.read_codes(pdf, engine="zbar") == [text]
    assert scan.read_codes(SCAN_ASSETS / "no-code.png", engine="zbar") == []


def test_zbar_missing_is_an_environment_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar", None)  # import fails as without libzbar
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    with pytest.raises(EnvironmentProblem, match="libzbar0"):
        scan.read_codes(SCAN_ASSETS / "no-code.png", engine="zbar")


# --------------------------------------------------------------------------------------------
# Through the command line: verdicts, reason codes, exit codes, no traceback


def _cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from eprescrire.cli import app

    return CliRunner().invoke(app, args)


def _verdicts(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("asset", "reason"),
    [
        ("bomb-40000x40000.png", "unreadable_input"),
        ("truncated.png", "unreadable_input"),
        ("corrupt-body.png", "unreadable_input"),
        ("no-code.png", "no_code_found"),
    ],
)
def test_cli_bad_images_are_unreadable_verdicts(
    cli_env: dict[str, str], asset: str, reason: str
) -> None:
    result = _cli(["verify", str(SCAN_ASSETS / asset), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 3, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    (verdict,) = _verdicts(result.stdout)
    assert verdict["status"] == "unreadable"
    assert [r["code"] for r in verdict["reasons"]] == [reason]
    assert "Traceback" not in result.output


def test_cli_not_an_image_with_image_extension(cli_env: dict[str, str]) -> None:
    qr = pytest.importorskip("eprescrire.qr")
    del qr
    asset = SCAN_ASSETS / "not-an-image.png"
    result = _cli(["verify", str(asset), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 3, result.output
    (verdict,) = _verdicts(result.stdout)
    assert verdict["reasons"][0]["code"] in ("not_a_prescription", "unreadable_input")


def test_cli_url_code_is_not_a_prescription(cli_env: dict[str, str]) -> None:
    pytest.importorskip("eprescrire.qr")
    result = _cli(["verify", str(SCAN_ASSETS / "url-code.png"), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 3, result.output
    (verdict,) = _verdicts(result.stdout)
    assert [r["code"] for r in verdict["reasons"]] == ["not_a_prescription"]


def test_cli_subprocess_batch_of_bad_scans(tmp_path: Path) -> None:
    """The installed console script: several bad scans, one verdict each, exit 3, no traceback."""
    script = Path(sys.executable).parent / "eprescrire"
    if not script.exists():
        pytest.skip("console script not installed")
    assets = ["bomb-40000x40000.png", "truncated.png", "no-code.png"]
    process = subprocess.run(
        [
            str(script),
            "verify",
            *(str(SCAN_ASSETS / a) for a in assets),
            "--trust",
            str(TRUST),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "EPRESCRIRE_HOME": str(tmp_path), "NO_COLOR": "1"},
    )
    assert process.returncode == 3, process.stderr
    verdicts = _verdicts(process.stdout)
    assert [v["reasons"][0]["code"] for v in verdicts] == [
        "unreadable_input",
        "unreadable_input",
        "no_code_found",
    ]
    assert "Traceback" not in process.stderr


def test_cli_zbar_missing_exits_4(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from eprescrire.cli import main

    monkeypatch.setitem(sys.modules, "pyzbar", None)
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    with pytest.raises(SystemExit) as exited:
        main(
            ["verify", str(SCAN_ASSETS / "no-code.png"), "--trust", str(TRUST), "--engine", "zbar"]
        )
    assert exited.value.code == 4


# --------------------------------------------------------------------------------------------
# End to end with real issued prescriptions: scan -> qr.decode -> verify_token


def _prescription_code(document: Any, scale: int = 4) -> Image.Image:
    from eprescrire import qr

    return qr_image(qr.encode(document), scale=scale)


def test_cli_valid_scan_and_pdf(
    tmp_path: Path, cli_env: dict[str, str], issue_document: Callable[..., Any]
) -> None:
    document = issue_document()
    png = tmp_path / "scan.png"
    page(_prescription_code(document)).save(png)
    pdf = pdf_with_pages(tmp_path, [None, _prescription_code(document)])
    result = _cli(["verify", str(png), str(pdf), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 0, result.output
    verdicts = _verdicts(result.stdout)
    assert [v["status"] for v in verdicts] == ["valid", "valid"]
    assert {v["id"] for v in verdicts} == {document.prescription.id}


def test_inverted_code_is_found_by_a_retry(
    tmp_path: Path, issue_document: Callable[..., Any]
) -> None:
    from eprescrire import qr

    document = issue_document()
    path = tmp_path / "inverted.png"
    page(_prescription_code(document)).point(lambda v: 255 - v).save(path)
    assert scan.read_codes(path) == [qr.encode(document)]


def test_cli_two_prescriptions_on_one_page(
    tmp_path: Path, cli_env: dict[str, str], issue_document: Callable[..., Any]
) -> None:
    first, second = issue_document(), issue_document("antibiotic.toml")
    path = tmp_path / "two.png"
    page(_prescription_code(first, 3), _prescription_code(second, 3), size=(1240, 2000)).save(path)
    result = _cli(["verify", str(path), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 0, result.output
    verdicts = _verdicts(result.stdout)
    assert {v["id"] for v in verdicts} == {first.prescription.id, second.prescription.id}
    assert sorted(v["input"] for v in verdicts) == [f"{path}#1", f"{path}#2"]


def test_cli_malformed_code_in_a_scan(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from eprescrire import qr

    path = tmp_path / "malformed.png"
    page(qr_image(qr.PREFIX + "::::ZZZZ")).save(path)  # our prefix, broken Base45
    result = _cli(["verify", str(path), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 1, result.output
    (verdict,) = _verdicts(result.stdout)
    assert [r["code"] for r in verdict["reasons"]] == ["malformed"]


def test_cli_altered_character_in_a_scan(
    tmp_path: Path, cli_env: dict[str, str], issue_document: Callable[..., Any]
) -> None:
    from eprescrire import qr
    from eprescrire.errors import VerificationError

    text = qr.encode(issue_document())
    # Change one Base45 character inside the signature (bytes 8..71 of the frame) to another
    # that still decodes: the code reads fine, the signature no longer holds.
    position = len(qr.PREFIX) + 3 * 10
    for replacement in ALPHANUMERIC:
        altered = text[:position] + replacement + text[position + 1 :]
        if altered == text:
            continue
        try:
            qr.decode(altered)
        except VerificationError:
            continue
        break
    else:  # pragma: no cover - every character cannot fail
        pytest.fail("no decodable alteration found")
    path = tmp_path / "altered.png"
    page(qr_image(altered)).save(path)
    result = _cli(["verify", str(path), "--trust", str(TRUST), "--json"])
    assert result.exit_code == 1, result.output
    (verdict,) = _verdicts(result.stdout)
    assert [r["code"] for r in verdict["reasons"]] == ["signature_invalid"]


@zbar
def test_zbar_finds_an_inverted_code(tmp_path: Path) -> None:
    text = _text(17)
    path = tmp_path / "inverted.png"
    page(qr_image(text)).point(lambda v: 255 - v).save(path)
    assert scan.read_codes(path, engine="zbar") == [text]


def test_sixteen_bit_and_float_scans_are_stretched(tmp_path: Path) -> None:
    text = _text(18)
    sheet = page(qr_image(text))
    wide = tmp_path / "wide.tif"
    sheet.convert("I").point(lambda v: v * 257).save(wide)  # 0..65535, would clip to white
    floating = tmp_path / "float.tif"
    sheet.convert("F").save(floating)
    assert scan.read_codes(wide) == [text]
    assert scan.read_codes(floating) == [text]
