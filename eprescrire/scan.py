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

import errno
import os
import stat
import time
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
    "MAX_IMAGE_PIXELS",
    "MAX_INPUT_PIXELS",
    "MAX_PAGE_POINTS",
    "MAX_PDF_PAGES",
    "PDF_DPI",
    "PIPE_IDLE_SECONDS",
    "PIPE_TOTAL_SECONDS",
    "open_input",
    "read_codes",
    "read_codes_from_image",
]

ENGINES = ("zxing", "zbar")
#: Largest image or PDF file we open (a 600 dpi A4 colour TIFF is ~100 MB uncompressed).
MAX_FILE_BYTES = 128 * 1024 * 1024
#: At most this many PDF pages, or frames of a multi-page image, are read: an ordonnance is
#: one or two pages; a document with more is refused, not read in part.
MAX_PDF_PAGES = 16
MAX_FRAMES = 16
#: Largest image (one frame) decoded: a 48-megapixel photo, or an A4 page scanned at 900 dpi.
MAX_IMAGE_PIXELS = 50_000_000
#: Pixels decoded and searched per input, all frames, pages and retries together: bounds the
#: work one file can cause (about 5 s of CPU) whatever its pages hold.
MAX_INPUT_PIXELS = 256_000_000
#: Largest PDF page side, in points (24 inches: an A2 sheet fits, a 5-metre page does not).
MAX_PAGE_POINTS = 1728
#: A pipe, FIFO or device is read with a time box: refused when nothing arrives for
#: PIPE_IDLE_SECONDS (no writer), or when reading takes longer than PIPE_TOTAL_SECONDS.
PIPE_IDLE_SECONDS = 10.0
PIPE_TOTAL_SECONDS = 60.0
#: PDF pages are rasterised at this resolution: a 0.4 mm QR module becomes >= 3 px.
PDF_DPI = 200
#: If the first PDF raster finds nothing, one finer raster is tried (small modules, 2 px at 200).
PDF_RETRY_DPI = 300
#: Largest raster of one PDF page, in pixels; a larger page is rasterised at a lower resolution.
MAX_PAGE_PIXELS = 16_000_000  # an A4 page at about 400 dpi: bounds the work a PDF can cause
#: zxing-cpp refuses a side above this; no scan has one.
MAX_SIDE = 65_535

_PDF_MAGIC = b"%PDF"


class _Budget:
    """Pixels one input may still cause to be decoded and searched (MAX_INPUT_PIXELS)."""

    def __init__(self, name: str, pixels: int | None = None) -> None:
        self.name = name
        self.left = MAX_INPUT_PIXELS if pixels is None else pixels

    def spend(self, pixels: int) -> None:
        self.left -= pixels
        if self.left < 0:
            raise InputError(
                f"{self.name}: too much to read (more than {MAX_INPUT_PIXELS // 1_000_000} "
                "million pixels across its pages or frames); send the page with the code alone"
            )


# --------------------------------------------------------------------------------------------
# Pipes, FIFOs and devices


def open_input(
    path: Path, limit_of: Callable[[bytes], int], head_size: int = 16
) -> tuple[bool, bytes, bytes | None]:
    """Open an input without ever blocking on it: ``(regular, head, data)``.

    A regular file gives its first ``head_size`` bytes and ``data=None`` (read it by path).
    Anything else (a pipe, a FIFO, a device) can be read once only and may have no writer: it
    is read now, with a time box, up to ``limit_of(head) + 1`` bytes (one more than allowed,
    so that the caller can say it is too large). Raises :class:`OSError` as ``open`` does
    (``IsADirectoryError`` for a directory) and :class:`InputError` when a pipe stays silent
    for :data:`PIPE_IDLE_SECONDS` or takes longer than :data:`PIPE_TOTAL_SECONDS`.
    """
    # O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise, forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            return True, os.read(fd, head_size), None
        data = _read_timed(str(path), fd, limit_of, head_size)
        return False, data[:head_size], data
    finally:
        os.close(fd)


def _read_timed(name: str, fd: int, limit_of: Callable[[bytes], int], head_size: int) -> bytes:
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    deadline = time.monotonic() + PIPE_TOTAL_SECONDS
    chunks: list[bytes] = []
    size = 0
    limit: int | None = None
    while limit is None or size <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise InputError(f"{name}: reading took longer than {PIPE_TOTAL_SECONDS:g} s")
        if not poller.poll(min(PIPE_IDLE_SECONDS, left) * 1000):
            if time.monotonic() >= deadline:
                continue
            raise InputError(
                f"{name}: nothing to read for {PIPE_IDLE_SECONDS:g} s (a pipe with no writer?)"
            )
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:  # the writer closed its end
            break
        chunks.append(chunk)
        size += len(chunk)
        if limit is None and size >= head_size:
            limit = limit_of(b"".join(chunks)[:head_size])
    data = b"".join(chunks)
    if limit is None:
        limit = limit_of(data[:head_size])
    return data[: limit + 1]


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


#: Largest image given the last retry (an A5 page scanned at 300 dpi is 4.4 Mpx): it costs
#: about a second on such a page when there is no code at all.
_SMOOTH_UPSCALE_PIXELS = 5_000_000


def _smooth_upscale(image: PILImage.Image) -> PILImage.Image:
    """The last retry: a 1-bit or dithered scan with modules of 2-3 pixels, doubled then
    median-filtered, has smooth module edges. zbar's scanner needs them for most such scans;
    zxing's binariser reads most as they are, but about one in ten 1-bit scans at 100 dpi only
    this way. Images already large are left as they are."""
    from PIL import Image, ImageFilter

    if image.width * image.height > _SMOOTH_UPSCALE_PIXELS:
        return image
    doubled = image.resize((image.width * 2, image.height * 2), Image.Resampling.BICUBIC)
    return doubled.filter(ImageFilter.MedianFilter(5))


def _text_of(data: bytes) -> str:
    # zbar returns the bytes it guessed a charset for; our codes are alphanumeric ASCII.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --------------------------------------------------------------------------------------------
# First pass and cheap retries


def _scan(image: PILImage.Image, decode: Decoder, budget: _Budget | None = None) -> list[str]:
    """The first pass, then the retries; ``budget`` is charged for the retries (the caller
    charged the image itself before decoding it)."""
    texts = decode(image, False)
    if texts:
        return _unique(texts)
    for _, variant in _RETRIES:
        candidate = variant(image)
        if budget is not None:
            budget.spend(candidate.width * candidate.height)
        texts = decode(candidate, True)
        if texts:
            return _unique(texts)
    candidate = _smooth_upscale(image)
    if candidate is not image:
        if budget is not None:
            budget.spend(candidate.width * candidate.height)
        return _unique(decode(candidate, True))
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
        budget = _Budget(name)
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
                if index == MAX_FRAMES - 1 and _has_frame(image, index + 1):
                    raise InputError(
                        f"{name}: more than {MAX_FRAMES} frames; send the page with the code alone"
                    )
                try:
                    _check_pixels(name, image)
                    budget.spend(image.width * image.height)
                    image.load()
                    frame = _grayscale(image)
                except InputError:
                    raise
                except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                    raise InputError(f"{name}: image too large (decompression bomb?)") from None
                except _IMAGE_ERRORS as e:
                    raise InputError(f"{name}: corrupt or truncated image ({_why(e)})") from None
                _extend_unique(found, _scan(frame, decode, budget))
        return found


def _has_frame(image: PILImage.Image, index: int) -> bool:
    """Whether a multi-frame image has a frame ``index`` (then back on ``index - 1``)."""
    try:
        image.seek(index)
    except EOFError:
        return False
    except _IMAGE_ERRORS:
        return True  # a damaged extra frame: still more than we read
    image.seek(index - 1)
    return True


def _check_pixels(name: str, image: PILImage.Image) -> None:
    # Pillow checks the first frame on open; later frames of a TIFF are ours to check.
    from PIL import Image

    limit = min(Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS)
    if image.width * image.height > limit:
        raise InputError(
            f"{name}: image too large ({image.width}×{image.height} pixels; at most "
            f"{limit // 1_000_000} million)"
        )
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
        budget = _Budget(name)
        for index in range(pages):
            _extend_unique(found, _read_pdf_page(name, document, index, decode, budget))
        return found
    finally:
        document.close()


def _read_pdf_page(
    name: str, document: Any, index: int, decode: Decoder, budget: _Budget
) -> list[str]:
    first = _rasterise(name, document, index, PDF_DPI, budget)
    texts = decode(first, False)
    if texts:
        return _unique(texts)
    # Small modules: a finer raster. A born-digital page (vector code, no image) is perfect at
    # that point, so the image retries only run on pages that hold a scan or photo.
    finer = _rasterise(name, document, index, PDF_RETRY_DPI, budget)
    if _has_images(document, index):
        return _scan(finer, decode, budget)
    return _unique(decode(finer, True))


def _has_images(document: Any, index: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = document[index]
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    finally:
        page.close()


def _rasterise(name: str, document: Any, index: int, dpi: int, budget: _Budget) -> PILImage.Image:
    import pypdfium2 as pdfium

    try:
        page = document[index]
        try:
            width, height = page.get_size()  # points
            if not (0 < width <= MAX_PAGE_POINTS and 0 < height <= MAX_PAGE_POINTS):
                raise InputError(
                    f"{name}: page {index + 1} is {width / 72 * 2.54:.0f}×"
                    f"{height / 72 * 2.54:.0f} cm; no scan is larger than "
                    f"{MAX_PAGE_POINTS / 72 * 2.54:.0f} cm"
                )
            scale = dpi / 72
            pixels = width * height * scale * scale
            if pixels > MAX_PAGE_PIXELS:
                scale *= (MAX_PAGE_PIXELS / pixels) ** 0.5
            if not (0 < width * scale <= MAX_SIDE and 0 < height * scale <= MAX_SIDE):
                raise InputError(f"{name}: page {index + 1} has a size no scan has")
            budget.spend(round(width * scale) * round(height * scale))
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
