#!/usr/bin/env python3
"""Robustness of reading printed prescriptions: success rate and decode time per degradation.

Issues real prescriptions with the demo prescriber (every example in examples/ plus a few
generated variants), renders each to its A4 PDF with ``eprescrire.render.pdf_bytes``, rasterises
the page with pypdfium2, degrades the scan in each category below, and counts how many come back
VALID through the real path: ``scan.read_codes`` -> ``qr.decode`` -> ``signing.verify_token``
against keys/demo-trust. Every engine available (zxing-cpp, and zbar when libzbar is installed)
reads the same files.

    .venv/bin/python bench/robustness.py            # full corpus
    .venv/bin/python bench/robustness.py --quick    # 2 documents, a few seconds
    .venv/bin/python bench/robustness.py --retries  # which retry variant rescues what

Degradations are made with Pillow alone (no numpy), seeded (``--seed``) so runs are repeatable.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFilter, ImageOps  # noqa: E402

from eprescrire import inputs, keys, model, scan, signing  # noqa: E402
from eprescrire.trust import TrustStore  # noqa: E402

BASE_DPI = 200  # the "clean" office scan; most degradations start from it


# --------------------------------------------------------------------------------------------
# Corpus: real issued prescriptions, rendered to PDF


def _variants(reference: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A few generated prescriptions around the reference one (bigger and smaller codes)."""
    long_notes = copy.deepcopy(reference)
    long_notes["notes"] = (
        "Contrôle de la glycémie à jeun et de l'HbA1c dans trois mois. Surveillance de la "
        "fonction rénale (créatininémie, DFG) avant renouvellement. Régime pauvre en sel."
    )
    six_lines = copy.deepcopy(reference)
    six_lines["patient"]["family_name"] = "Lefèvre-Dupont"
    six_lines["patient"]["given_name"] = "Jean-Baptiste"
    extra = copy.deepcopy(reference["lines"][:2])
    for line in extra:
        line["posology"] = line["posology"] + ", pendant les repas si troubles digestifs"
    six_lines["lines"] = reference["lines"] + extra
    one_line = copy.deepcopy(reference)
    one_line["lines"] = reference["lines"][:1]
    one_line["patient"]["family_name"] = "Nguyen"
    one_line["patient"]["given_name"] = "Thi"
    one_line["patient"].pop("ins", None)
    return [
        ("variant-notes", long_notes),
        ("variant-6-lines", six_lines),
        ("variant-1-line", one_line),
    ]


def issue_corpus(quick: bool) -> list[tuple[str, signing.SignedDocument]]:
    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    now = dt.datetime.now(dt.UTC)
    sources: list[tuple[str, Any]] = [
        (path.stem, inputs.read_input(path)) for path in sorted((ROOT / "examples").glob("*.toml"))
    ]
    reference = inputs.read_input(ROOT / "examples" / "reference.toml")
    sources += _variants(reference)
    if quick:
        sources = [s for s in sources if s[0] in ("reference", "variant-6-lines")]
    corpus = []
    for name, data in sources:
        prescription = model.from_input(data, now=now)
        corpus.append((name, signing.sign(prescription, credentials)))
    return corpus


def render_pdf(
    document: signing.SignedDocument, fallback: bool = False
) -> tuple[bytes, str | None]:
    """The printable A4 PDF, and the QR text when the stand-in page was used (``fallback``)."""
    if fallback:
        return _fallback_pdf(document)
    from eprescrire import render

    return render.pdf_bytes(document, page="A4"), None


def _fallback_pdf(document: signing.SignedDocument) -> tuple[bytes, str]:
    # A stand-in for the renderer (--fallback): a bare A4 page, 0.45 mm modules, bottom-left.
    import segno
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    text = _qr_text(document)
    code = segno.make(text, error="m", micro=False)
    png = io.BytesIO()
    code.save(png, kind="png", scale=1, border=0)
    png.seek(0)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    side = code.symbol_size(scale=1, border=0)[0] * 0.45 * mm
    pdf.drawImage(ImageReader(png), 18 * mm, 18 * mm, side, side)
    pdf.drawString(18 * mm, 12 * mm, document.prescription.id)
    pdf.showPage()
    pdf.save()
    return out.getvalue(), text


def _qr_text(document: signing.SignedDocument) -> str:
    try:
        from eprescrire import qr

        return qr.encode(document)
    except Exception:
        return "RX0:" + document.token.upper().replace("_", "-").replace(".", " ")


def rasterise(pdf: bytes, dpi: float) -> Image.Image:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
        page.close()
    finally:
        document.close()
    return image


# --------------------------------------------------------------------------------------------
# Degradations (Pillow only)


@dataclass
class Sample:
    name: str
    pdf: bytes
    base: Image.Image  # BASE_DPI raster
    module_px: float  # QR module size in the base raster
    box: tuple[int, int, int, int]  # QR bounding box in the base raster
    rng: random.Random
    fallback_text: str | None = None


def _save(image: Image.Image, directory: Path, stem: str, fmt: str = "png", **options: Any) -> Path:
    path = directory / f"{stem}.{fmt}"
    image.save(path, **options)
    return path


def _rotate(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


def _perspective(image: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """A camera tilt: each corner of the output maps to a point moved inwards in the input."""
    w, h = image.size

    def jitter(limit: float) -> float:
        return rng.uniform(0.3, 1.0) * limit

    dx, dy = w * strength, h * strength
    # Source quadrilateral (in the page) seen as the output rectangle.
    src = [
        (-jitter(dx), -jitter(dy)),
        (w + jitter(dx), -jitter(dy) / 3),
        (w + jitter(dx) / 3, h + jitter(dy)),
        (-jitter(dx) / 3, h + jitter(dy) / 2),
    ]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    coefficients = _perspective_coefficients(dst, src)
    return image.transform(
        image.size,
        Image.Transform.PERSPECTIVE,
        coefficients,
        resample=Image.Resampling.BICUBIC,
        fillcolor=255,
    )


def _perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> tuple[float, ...]:
    # Solve the 8x8 system mapping output (dst) points to input (src) points.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.append(v)
    return tuple(_solve(rows, rhs))


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r, c=col: abs(m[r][c]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def _salt(image: Image.Image, rng: random.Random, fraction: float) -> Image.Image:
    """Salt-and-pepper noise: ``fraction`` of the pixels turned white or black at random."""
    size = image.size
    count = size[0] * size[1]
    threshold = round(fraction * 256)
    mask = Image.frombytes("L", size, rng.randbytes(count)).point(
        lambda v: 255 if v < threshold else 0
    )
    noise = Image.frombytes("L", size, rng.randbytes(count)).point(lambda v: 255 if v & 1 else 0)
    return Image.composite(noise, image, mask)


def _low_contrast(image: Image.Image) -> Image.Image:
    # Faded toner on grey recycled paper: ink at 120, paper at 175.
    return image.point(lambda v: 120 + v * 55 // 255)


def _smudge(image: Image.Image, box: tuple[int, int, int, int], rng: random.Random) -> Image.Image:
    """Ink smudges over the code: a soft grey blot and a pen stroke, ~6% of its area."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    layer = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(layer)
    cx, cy = x0 + rng.uniform(0.25, 0.75) * w, y0 + rng.uniform(0.25, 0.75) * h
    rx, ry = 0.14 * w, 0.11 * h
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=150)
    sx, sy = x0 + rng.uniform(0.1, 0.3) * w, y0 + rng.uniform(0.2, 0.8) * h
    draw.line(
        (sx, sy, sx + 0.6 * w, sy + rng.uniform(-0.2, 0.2) * h),
        fill=230,
        width=max(2, round(w / 90)),
    )
    layer = layer.filter(ImageFilter.GaussianBlur(2))
    ink = Image.new("L", image.size, 30)
    return Image.composite(ink, image, layer)


def _lighting(image: Image.Image, rng: random.Random) -> Image.Image:
    """Uneven lighting: a gradient from full light to ~60% across the page."""
    w, h = image.size
    gradient = Image.linear_gradient("L").resize((w, h)).rotate(rng.uniform(0, 360), fillcolor=128)
    shade = gradient.point(lambda v: 150 + v * 105 // 255)
    return Image.composite(image, Image.new("L", (w, h), 0), shade)


def _add(image: Image.Image, noise: Image.Image) -> Image.Image:
    from PIL import ImageChops

    return ImageChops.add(image, noise, scale=1.0, offset=-128)


def _phone(sample: Sample) -> Image.Image:
    """A phone photo of the page: tilt, slight turn, uneven light, soft focus, noise, JPEG."""
    rng = sample.rng
    # A 12 MP phone framing an A4 page: ~3000 px tall, so start from a 250 dpi raster.
    image = rasterise(sample.pdf, 250)
    image = _perspective(image, rng, 0.06)
    image = _rotate(image, rng.uniform(-8, 8))
    image = _lighting(image, rng)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    image = _add(image, Image.effect_noise(image.size, 6))
    return image


@dataclass
class Category:
    name: str
    make: Callable[[Sample, Path], Path]
    description: str


def _categories(stress: bool = False) -> list[Category]:
    def png(image: Image.Image, directory: Path, name: str) -> Path:
        return _save(image, directory, name, "png", optimize=False, compress_level=1)

    def jpeg(image: Image.Image, directory: Path, name: str, quality: int) -> Path:
        return _save(image, directory, name, "jpg", quality=quality)

    def module_dpi(s: Sample, px: float) -> float:
        return BASE_DPI * px / s.module_px

    return [
        Category(
            "clean",
            lambda s, d: png(s.base, d, f"{s.name}-clean"),
            f"PDF rasterised at {BASE_DPI} dpi, PNG",
        ),
        Category("pdf", lambda s, d: _write(d / f"{s.name}.pdf", s.pdf), "the PDF file itself"),
        Category(
            "scan-150dpi",
            lambda s, d: png(rasterise(s.pdf, 150), d, f"{s.name}-150"),
            "PDF rasterised at 150 dpi",
        ),
        Category(
            "scan-100dpi",
            lambda s, d: png(rasterise(s.pdf, 100), d, f"{s.name}-100"),
            "PDF rasterised at 100 dpi",
        ),
        Category(
            "rotate-5",
            lambda s, d: png(_rotate(s.base, s.rng.choice((-5, 5))), d, f"{s.name}-r5"),
            "rotated 5°",
        ),
        Category(
            "rotate-30",
            lambda s, d: png(_rotate(s.base, s.rng.choice((-30, 30))), d, f"{s.name}-r30"),
            "rotated 30°",
        ),
        Category(
            "rotate-90",
            lambda s, d: png(_rotate(s.base, s.rng.choice((-90, 90))), d, f"{s.name}-r90"),
            "rotated 90°",
        ),
        Category(
            "perspective",
            lambda s, d: png(_perspective(s.base, s.rng, 0.10), d, f"{s.name}-persp"),
            "camera tilt, corners moved up to 10%",
        ),
        Category(
            "blur-1",
            lambda s, d: png(s.base.filter(ImageFilter.GaussianBlur(1)), d, f"{s.name}-b1"),
            "Gaussian blur σ=1 px",
        ),
        Category(
            "blur-2",
            lambda s, d: png(s.base.filter(ImageFilter.GaussianBlur(2)), d, f"{s.name}-b2"),
            "Gaussian blur σ=2 px",
        ),
        Category("jpeg-20", lambda s, d: jpeg(s.base, d, f"{s.name}-q20", 20), "JPEG quality 20"),
        Category(
            "salt-8%",
            lambda s, d: png(_salt(s.base, s.rng, 0.08), d, f"{s.name}-salt"),
            "salt-and-pepper noise on 8% of pixels",
        ),
        Category(
            "low-contrast",
            lambda s, d: png(_low_contrast(s.base), d, f"{s.name}-lowc"),
            "ink 120 on paper 175 (of 255)",
        ),
        Category(
            "modules-2px",
            lambda s, d: png(rasterise(s.pdf, module_dpi(s, 2.0)), d, f"{s.name}-m2"),
            "rasterised so a module is 2 px",
        ),
        Category(
            "smudge",
            lambda s, d: png(_smudge(s.base, s.box, s.rng), d, f"{s.name}-smudge"),
            "ink blot and pen stroke over the code",
        ),
        Category(
            "phone-photo",
            lambda s, d: jpeg(_phone(s), d, f"{s.name}-phone", 70),
            "tilt + turn + uneven light + blur + noise, JPEG 70",
        ),
    ] + (_stress_categories(png, jpeg) if stress else [])


def _stress_categories(png: Any, jpeg: Any) -> list[Category]:
    """Beyond the targets: where reading starts to fail, and what the retries rescue."""

    def far_phone(s: Sample, d: Path) -> Path:
        image = _phone(s)
        image = image.resize(
            (image.width * 2 // 5, image.height * 2 // 5), Image.Resampling.BILINEAR
        )  # the page framed from further away
        return jpeg(image, d, f"{s.name}-farphone", 60)

    return [
        Category(
            "x-scan-72dpi",
            lambda s, d: png(rasterise(s.pdf, 72), d, f"{s.name}-72"),
            "PDF rasterised at 72 dpi",
        ),
        Category(
            "x-blur-3",
            lambda s, d: png(s.base.filter(ImageFilter.GaussianBlur(3)), d, f"{s.name}-b3"),
            "Gaussian blur σ=3 px",
        ),
        Category(
            "x-salt-15%",
            lambda s, d: png(_salt(s.base, s.rng, 0.15), d, f"{s.name}-salt15"),
            "salt noise on 15%",
        ),
        Category("x-jpeg-8", lambda s, d: jpeg(s.base, d, f"{s.name}-q8", 8), "JPEG quality 8"),
        Category(
            "x-inverted",
            lambda s, d: png(ImageOps.invert(s.base), d, f"{s.name}-inv"),
            "light code on a dark page (a screen in dark mode)",
        ),
        Category("x-far-phone", far_phone, "phone photo at 40% of the resolution, JPEG 60"),
    ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _locate(image: Image.Image) -> tuple[tuple[int, int, int, int], float]:
    """Bounding box of the QR code in the clean raster, and its module size in pixels."""
    import zxingcpp

    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    if not results:
        raise SystemExit("the clean raster has no readable QR code: check the renderer")
    r = results[0]
    p = r.position
    xs = [p.top_left.x, p.top_right.x, p.bottom_right.x, p.bottom_left.x]
    ys = [p.top_left.y, p.top_right.y, p.bottom_right.y, p.bottom_left.y]
    side = max(xs) - min(xs)
    modules = 17 + 4 * _version_of(r)
    return (min(xs), min(ys), max(xs), max(ys)), side / modules


def _version_of(result: Any) -> int:
    version = (getattr(result, "extra", None) or {}).get("Version")
    if version:
        return int(version)
    raise SystemExit("zxing-cpp does not report the QR version; upgrade zxing-cpp")


# --------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Tally:
    ok: int = 0
    total: int = 0
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def check(
    path: Path,
    engine: str,
    store: TrustStore,
    at: dt.datetime,
    expected: signing.SignedDocument,
    fallback_text: str | None,
) -> tuple[bool, float]:
    start = time.perf_counter()
    texts = _bare_read(path) if engine == "bare" else scan.read_codes(path, engine=engine)
    elapsed = time.perf_counter() - start
    if fallback_text is not None:  # no qr.py yet: compare the text read with the text printed
        return fallback_text in texts, elapsed
    from eprescrire import qr
    from eprescrire.errors import VerificationError

    for text in texts:
        try:
            token = qr.decode(text)
        except VerificationError:
            continue
        verdict = signing.verify_token(str(path), token, store, at)
        if verdict.status == "valid" and verdict.id == expected.prescription.id:
            return True, elapsed
    return False, elapsed


def _bare_read(path: Path) -> list[str]:
    """Baseline: one zxing-cpp pass on the image as loaded (a PDF: page 1 at 200 dpi)."""
    import zxingcpp

    if path.suffix == ".pdf":
        image = rasterise(path.read_bytes(), BASE_DPI)
    else:
        with Image.open(path) as raw:
            image = raw.convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def engines() -> list[str]:
    found = ["zxing"]
    try:
        scan.read_codes_from_image(Image.new("L", (8, 8), 255), engine="zbar")
        found.append("zbar")
    except Exception as e:
        print(f"zbar engine unavailable: {e}", file=sys.stderr)
    return found


def retry_analysis(files: list[tuple[str, Path]]) -> None:
    """For every image the first zxing pass misses, which retry variant alone rescues it."""
    from eprescrire.scan import _RETRIES, _decoder, _grayscale

    decode = _decoder("zxing")
    missed = 0
    rescued: dict[str, int] = {name: 0 for name, _ in _RETRIES}
    timing: dict[str, list[float]] = {name: [] for name, _ in _RETRIES}
    for category, path in files:
        if path.suffix == ".pdf":
            continue
        with Image.open(path) as raw:
            image = _grayscale(raw)
            image.load()
        if decode(image, False):
            continue
        missed += 1
        saved = []
        for name, variant in _RETRIES:
            start = time.perf_counter()
            ok = bool(decode(variant(image), True))
            timing[name].append(time.perf_counter() - start)
            if ok:
                rescued[name] += 1
                saved.append(name)
        rescuers = ", ".join(saved) or "-"
        print(f"  first pass missed {category:13} {path.name:40} rescued by: {rescuers}")
    print(f"\nfirst pass missed {missed} images; rescues per retry variant (alone):")
    for name, _ in _RETRIES:
        mean = statistics.fmean(timing[name]) * 1000 if timing[name] else 0.0
        print(f"  {name:14} {rescued[name]:3}   mean {mean:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two documents only")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", type=Path, help="write the corpus to this directory and keep it")
    parser.add_argument(
        "--engine",
        action="append",
        choices=("zxing", "zbar"),
        help="only these engines (default: every available one); the bare "
        "zxing-cpp baseline always runs",
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="a bare page with the code instead of eprescrire.render (figures "
        "then compare texts, not verdicts)",
    )
    parser.add_argument(
        "--stress",
        action="store_true",
        help="add harder categories (prefixed x-) beyond the targets",
    )
    parser.add_argument(
        "--retries",
        action="store_true",
        help="also report which retry variant rescues each first-pass miss",
    )
    args = parser.parse_args()

    store = TrustStore.open(ROOT / "keys" / "demo-trust")
    at = dt.datetime.now(dt.UTC)
    chosen = ["bare", *(args.engine or engines())]
    categories = _categories(args.stress)
    corpus = issue_corpus(args.quick)
    with tempfile.TemporaryDirectory(prefix="eprescrire-robustness-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        files: list[tuple[str, Path, signing.SignedDocument, str | None]] = []
        renderer = "render.pdf_bytes"
        started = time.perf_counter()
        for index, (name, document) in enumerate(corpus):
            pdf, fallback_text = render_pdf(document, args.fallback)
            if fallback_text is not None:
                renderer = "FALLBACK stand-in page, 0.45 mm modules; success = text read back"
            base = rasterise(pdf, BASE_DPI)
            box, module_px = _locate(base)
            sample = Sample(
                name,
                pdf,
                base,
                module_px,
                box,
                random.Random(f"{args.seed}-{index}"),
                fallback_text,
            )
            for category in categories:
                files.append(
                    (category.name, category.make(sample, directory), document, fallback_text)
                )
            print(
                f"corpus: {name:18} module {module_px / BASE_DPI * 25.4:.2f} mm "
                f"({module_px:.1f} px at {BASE_DPI} dpi)",
                file=sys.stderr,
            )
        print(
            f"corpus: {len(files)} files from {len(corpus)} prescriptions in "
            f"{time.perf_counter() - started:.1f} s; renderer: {renderer}\n",
            file=sys.stderr,
        )

        tallies: dict[tuple[str, str], Tally] = {}
        for engine in chosen:
            for category, path, document, fallback_text in files:
                tally = tallies.setdefault((engine, category), Tally())
                ok, elapsed = check(path, engine, store, at, document, fallback_text)
                tally.total += 1
                tally.ok += ok
                tally.times.append(elapsed)
                if not ok:
                    tally.failures.append(path.name)
        _report(categories, chosen, tallies)
        if args.retries:
            print()
            retry_analysis([(c, p) for c, p, _, _ in files])


def _report(
    categories: list[Category], chosen: list[str], tallies: dict[tuple[str, str], Tally]
) -> None:
    header = f"{'category':14}" + "".join(f" | {e + ' ok':>10} {'mean ms':>8}" for e in chosen)
    print(header)
    print("-" * len(header))
    for category in categories:
        row = f"{category.name:14}"
        for engine in chosen:
            t = tallies[(engine, category.name)]
            row += f" | {t.ok:>4}/{t.total:<4} {statistics.fmean(t.times) * 1000:>8.1f}"
        print(row)
    print("-" * len(header))
    row = f"{'overall':14}"
    for engine in chosen:
        ts = [tallies[(engine, c.name)] for c in categories]
        ok, total = sum(t.ok for t in ts), sum(t.total for t in ts)
        mean = statistics.fmean([x for t in ts for x in t.times]) * 1000
        row += f" | {100 * ok / total:>8.1f} % {mean:>8.1f}"
    print(row)
    if "bare" in chosen and "zxing" in chosen:
        bare = statistics.fmean([x for c in categories for x in tallies[("bare", c.name)].times])
        zxing = statistics.fmean([x for c in categories for x in tallies[("zxing", c.name)].times])
        print(f"\nmean time, zxing engine / bare single pass: {zxing / bare:.2f}")
    print(
        "bare = baseline: one zxing-cpp pass on the image as loaded, no retries "
        "(a PDF: page 1 at 200 dpi)"
    )
    for engine in chosen:
        failed = [(c.name, f) for c in categories for f in tallies[(engine, c.name)].failures]
        if failed:
            print(f"\n{engine} failures: " + ", ".join(f"{c}:{f}" for c, f in failed))
    print("\ncategories: " + "; ".join(f"{c.name} = {c.description}" for c in categories))


if __name__ == "__main__":
    main()
