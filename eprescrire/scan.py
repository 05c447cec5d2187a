"""Find QR codes in scans, photos and PDFs: image or PDF file -> the texts of its QR codes.

Two engines: zxing-cpp (the default, a wheel) and zbar (``pyzbar``, needs the system library
``libzbar0``). Only QR codes are looked for. Every page of a PDF (rasterised with pypdfium2, a
wheel: no system library on the default path) and every frame of a multi-page TIFF, GIF or WebP
is read.

A first pass decodes the grayscale image as it is. Only when it finds nothing do we retry, with a
short list of cheap variants ordered by how many failures they rescue in the robustness corpus
(``bench/robustness.py``): a clean scan costs one pass, an image without any code costs the
whole (bounded) list.

Bad input is never a traceback: a file that is not a readable image or PDF, a corrupt or
truncated one, or one too large to decode safely raises :class:`~eprescrire.errors.InputError`
with one line; asking for zbar without libzbar raises
:class:`~eprescrire.errors.EnvironmentProblem`. Pillow's decompression-bomb protection stays
on (``Image.MAX_IMAGE_PIXELS``) and its warning is treated as an error too.

Heavy libraries (Pillow, zxing-cpp, pypdfium2, pyzbar) are imported inside the functions: the
command line imports this module lazily anyway, but keep it that way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eprescrire.errors import EnvironmentProblem, InputError, UsageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "ENGINES",
    "MAX_FILE_BYTES",
    "MAX_FRAMES",
    "MAX_PDF_PAGES",
    "PDF_DPI",
    "read_codes",
    "read_codes_from_image",
]

ENGINES = ("zxing", "zbar")
#: Largest image or PDF file we open (a 600 dpi A4 colour TIFF is ~100 MB uncompressed).
MAX_FILE_BYTES = 128 * 1024 * 1024
#: At most this many PDF pages, or frames of a multi-page image, are read.
MAX_PDF_PAGES = 32
MAX_FRAMES = 32
#: PDF pages are rasterised at this resolution: a 0.4 mm QR module becomes >= 3 px.
PDF_DPI = 200
#: If the first PDF raster finds nothing, one finer raster is tried (small modules, 2 px at 200).
PDF_RETRY_DPI = 300
#: Largest raster of one PDF page, in pixels; a larger page is rasterised at a lower resolution.
MAX_PAGE_PIXELS = 16_000_000  # an A4 page at about 400 dpi: bounds the work a PDF can cause
#: zxing-cpp refuses a side above this; no scan has one.
MAX_SIDE = 65_535

_PDF_MAGIC = b"%PDF"


def read_codes(path: Path, engine: str = "zxing", data: bytes | None = None) -> list[str]:
    """The texts of every QR code in an image or PDF file, de-duplicated in reading order.

    ``data``, when given, is the file's content already read (a pipe or a device cannot be read
    twice); ``path`` then only names it. Reads every page of a PDF and every frame of a
    multi-page image; returns ``[]`` when no code is found. On failure, raises
    :class:`InputError` (not a readable image or PDF, corrupt, truncated, too large) or
    :class:`EnvironmentProblem` (``engine="zbar"`` without libzbar); an unknown engine raises
    :class:`UsageError`.
    """
    decode = _decoder(engine)
    path = Path(path)
    name = str(path)
    if data is not None:
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{name}: too large for a scan")
        if not data:
            raise InputError(f"{name}: empty file")
        if data.startswith(_PDF_MAGIC):
            return _read_pdf(path, decode, data)
        return _read_image(path, decode, data)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.strerror or e.__class__.__name__})") from None
    if size > MAX_FILE_BYTES:
        raise InputError(f"{name}: file too large ({size // (1024 * 1024)} MiB) for a scan")
    if size == 0:
        raise InputError(f"{name}: empty file")
    if head.startswith(_PDF_MAGIC):
        return _read_pdf(path, decode)
    return _read_image(path, decode)


def read_codes_from_image(image: PILImage.Image, engine: str = "zxing") -> list[str]:
    """The texts of every QR code in one image (a Pillow image), de-duplicated in order.

    Returns ``[]`` when no code is found. Raises :class:`EnvironmentProblem` for
    ``engine="zbar"`` without libzbar and :class:`UsageError` for an unknown engine.
    """
    decode = _decoder(engine)
    return _scan(_grayscale(image), decode)


# --------------------------------------------------------------------------------------------
# Engines

Decoder = Callable[["PILImage.Image", bool], list[str]]


def _decoder(engine: str) -> Decoder:
    if engine == "zxing":
        return _zxing_decoder()
    if engine == "zbar":
        return _zbar_decoder()
    raise UsageError(f"unknown QR engine {engine!r}; choose one of: {', '.join(ENGINES)}")


def _zxing_decoder() -> Decoder:
    try:
        import zxingcpp
    except ImportError as e:  # a broken install, not bad input
        raise EnvironmentProblem(f"the zxing engine is unavailable: {e}") from None

    formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

    def decode(image: PILImage.Image, thorough: bool) -> list[str]:
        # Printed codes are dark on light: the inverted search waits for the retries.
        results = zxingcpp.read_barcodes(
            image, formats=formats, try_rotate=True, try_downscale=True, try_invert=thorough
        )
        return [r.text for r in results if r.valid and r.text]

    return decode


def _zbar_decoder() -> Decoder:
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError):
        raise EnvironmentProblem(
            "the zbar engine needs the zbar library: install libzbar0 "
            "(apt-get install libzbar0) and pyzbar, or use --engine zxing"
        ) from None

    symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(image: PILImage.Image, thorough: bool) -> list[str]:
        results = pyzbar.decode(image, symbols=symbols)
        if not results and thorough:  # zbar has no inverted search of its own
            from PIL import ImageOps

            results = pyzbar.decode(ImageOps.invert(image), symbols=symbols)
        return [_text_of(r.data) for r in results if r.data]

    return decode


def _text_of(data: bytes) -> str:
    # zbar returns the bytes it guessed a charset for; our codes are alphanumeric ASCII.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --------------------------------------------------------------------------------------------
# First pass and cheap retries


def _scan(image: PILImage.Image, decode: Decoder) -> list[str]:
    texts = decode(image, False)
    if texts:
        return _unique(texts)
    for _, variant in _RETRIES:
        texts = decode(variant(image), True)
        if texts:
            return _unique(texts)
    return []


def _downscale(image: PILImage.Image) -> PILImage.Image:
    # Halving averages salt noise and JPEG blocking away; costs a few milliseconds.
    return image.reduce(2) if min(image.size) >= 400 else image


def _sharpen(image: PILImage.Image) -> PILImage.Image:
    # Strong enough to restore the edges of 4 px modules blurred with sigma = 2 px.
    from PIL import ImageFilter

    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=400, threshold=0))


def _median(image: PILImage.Image) -> PILImage.Image:
    # Salt-and-pepper noise (dust, a noisy sensor): a 3x3 median removes isolated specks.
    from PIL import ImageFilter

    return image.filter(ImageFilter.MedianFilter(3))


#: Tried in order only when the first pass finds nothing, each with zxing's inverted search
#: on (light-on-dark codes). Measured with bench/robustness.py: of the first-pass misses,
#: ``sharpen`` alone rescues every sigma = 2 blur and ``median`` every 8% salt noise;
#: ``downscale`` rescues part of the noise for ~4 ms, so it goes first. Autocontrast, a
#: morphological close and a 2x upscale rescued nothing the others did not and were dropped.
_RETRIES: tuple[tuple[str, Callable[[PILImage.Image], PILImage.Image]], ...] = (
    ("downscale", _downscale),
    ("sharpen", _sharpen),
    ("median", _median),
)


# --------------------------------------------------------------------------------------------
# Images


#: Errors Pillow raises on files that are not what they claim (TypeError: "Missing dimensions"
#: on a TIFF frame pointing at garbage).
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, MemoryError, KeyError)


def _read_image(path: Path, decode: Decoder, data: bytes | None = None) -> list[str]:
    """The codes in every frame of an image file; bombs, corrupt and truncated files refused."""
    import io

    from PIL import Image, UnidentifiedImageError

    name = str(path)
    with warnings.catch_warnings():
        # Above MAX_IMAGE_PIXELS Pillow only warns; a scan never needs that many pixels.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data) if data is not None else path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(f"{name}: image too large (decompression bomb?)") from None
        except UnidentifiedImageError:
            raise InputError(f"{name}: not a readable image") from None
        except _IMAGE_ERRORS as e:
            raise InputError(f"{name}: not a readable image ({_why(e)})") from None
        found: list[str] = []
        with image:
            # Frames are reached by seeking, at most MAX_FRAMES: ``n_frames`` would walk every
            # frame of the file, and a small TIFF can chain a million of them.
            for index in range(MAX_FRAMES):
                try:
                    if index:
                        image.seek(index)
                except EOFError:
                    break
                except _IMAGE_ERRORS as e:
                    raise InputError(f"{name}: corrupt image frame ({_why(e)})") from None
                try:
                    _check_pixels(name, image)
                    image.load()
                    frame = _grayscale(image)
                except InputError:
                    raise
                except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                    raise InputError(f"{name}: image too large (decompression bomb?)") from None
                except _IMAGE_ERRORS as e:
                    raise InputError(f"{name}: corrupt or truncated image ({_why(e)})") from None
                _extend_unique(found, _scan(frame, decode))
        return found


def _check_pixels(name: str, image: PILImage.Image) -> None:
    # Pillow checks the first frame on open; later frames of a TIFF are ours to check.
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        raise InputError(f"{name}: image too large ({image.width}×{image.height} pixels)")
    if max(image.width, image.height) > MAX_SIDE or min(image.width, image.height) < 1:
        raise InputError(f"{name}: image of {image.width}×{image.height} pixels is not a scan")


def _grayscale(image: PILImage.Image) -> PILImage.Image:
    """8-bit grayscale; transparent areas become white paper, not black."""
    from PIL import Image

    if image.mode == "L":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("L")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float scans: stretch to the 8-bit range rather than clip.
        extrema = cast("tuple[float, float]", image.getextrema())
        low, span = extrema[0], (extrema[1] - extrema[0]) or 1
        return image.point(lambda v: (v - low) * 255 / span).convert("L")
    return image.convert("L")


def _why(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else error.__class__.__name__
    return text[:120]


# --------------------------------------------------------------------------------------------
# PDF


def _read_pdf(path: Path, decode: Decoder, data: bytes | None = None) -> list[str]:
    import pypdfium2 as pdfium

    name = str(path)
    try:
        document = pdfium.PdfDocument(data if data is not None else path)
    except pdfium.PdfiumError as e:
        raise InputError(f"{name}: not a readable PDF ({_why(e)})") from None
    try:
        pages = len(document)
        if pages == 0:
            raise InputError(f"{name}: the PDF has no pages")
        if pages > MAX_PDF_PAGES:
            raise InputError(f"{name}: too many pages ({pages}; at most {MAX_PDF_PAGES})")
        found: list[str] = []
        for index in range(pages):
            _extend_unique(found, _read_pdf_page(name, document, index, decode))
        return found
    finally:
        document.close()


def _read_pdf_page(name: str, document: Any, index: int, decode: Decoder) -> list[str]:
    texts = decode(_rasterise(name, document, index, PDF_DPI), False)
    if texts:
        return _unique(texts)
    # Small modules: a finer raster. A born-digital page (vector code, no image) is perfect at
    # that point, so the image retries only run on pages that hold a scan or photo.
    finer = _rasterise(name, document, index, PDF_RETRY_DPI)
    if _has_images(document, index):
        return _scan(finer, decode)
    return _unique(decode(finer, True))


def _has_images(document: Any, index: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = document[index]
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    finally:
        page.close()


def _rasterise(name: str, document: Any, index: int, dpi: int) -> PILImage.Image:
    import pypdfium2 as pdfium

    try:
        page = document[index]
        try:
            width, height = page.get_size()  # points
            scale = dpi / 72
            pixels = width * height * scale * scale
            if pixels > MAX_PAGE_PIXELS:
                scale *= (MAX_PAGE_PIXELS / pixels) ** 0.5
            if not (0 < width * scale <= MAX_SIDE and 0 < height * scale <= MAX_SIDE):
                raise InputError(f"{name}: page {index + 1} has a size no scan has")
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_pil()
        finally:
            page.close()
    except pdfium.PdfiumError as e:
        raise InputError(f"{name}: page {index + 1} cannot be rendered ({_why(e)})") from None
    return _grayscale(image)


# --------------------------------------------------------------------------------------------


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _extend_unique(found: list[str], texts: list[str]) -> None:
    for text in texts:
        if text not in found:
            found.append(text)
