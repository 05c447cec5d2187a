#!/usr/bin/env python3
"""Pixel-for-pixel comparison of the printed ordonnance between two versions of the code.

A change meant to make drawing faster must not change what is printed. Three steps:

    python bench/render_pixels.py sign DOCS                  # every examples/*.toml, signed once
    python bench/render_pixels.py render DOCS OUT [--tree T] # A5 + A4 PDFs and QR PNGs -> PNG
    python bench/render_pixels.py compare OUT_BEFORE OUT_AFTER

``sign`` issues each example (a 30-line prescription that takes several pages, and one with
characters Vera lacks, drawn with the fallback font) with the demo prescriber at a fixed time (ECDSA signatures are
random: both versions must draw the same signed documents). ``render`` draws each document with
the ``eprescrire`` package found in ``--tree`` (a checkout of another version; default: this
one) as A5 and A4 PDFs with ``render.pdf_bytes`` and as a QR PNG with ``render.write_qr``, then
rasterises every PDF page at ``--dpi`` (150) with pdftoppm (poppler-utils). ``compare`` counts,
for every PNG, the pixels that differ (Pillow), and prints a line per file and a total.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MOMENT = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def sign(docs: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from eprescrire import keys, model, signing

    docs.mkdir(parents=True, exist_ok=True)
    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    inputs = {
        p.stem: tomllib.loads(p.read_text("utf-8"))
        for p in sorted((ROOT / "examples").glob("*.toml"))
    }
    inputs["long-30-lines"] = _long(inputs["reference"])
    inputs["glyphs"] = _glyphs(inputs["reference"])
    for name, data in inputs.items():
        document = signing.sign(model.from_input(data, now=MOMENT), credentials)
        (docs / f"{name}.json").write_bytes(document.to_json_bytes())
        print(f"signed {name} -> {docs / name}.json")


def _long(reference: dict[str, Any]) -> dict[str, Any]:
    """30 lines (several pages, both zones, a larger code), as the layout tests use."""
    base = reference["lines"]
    lines = [
        dict(
            base[n % len(base)],
            label=f"{base[n % len(base)]['label']} — ligne numéro {n + 1}",
            posology=base[n % len(base)]["posology"] + ", à adapter selon la tolérance clinique",
        )
        for n in range(30)
    ]
    return {**reference, "lines": lines}


def _glyphs(reference: dict[str, Any]) -> dict[str, Any]:
    """Characters Vera lacks (drawn with the DejaVu fallback when the system has it, else
    "?"), in the notes and a posology."""
    lines = [dict(reference["lines"][0], posology="1 cp ✓ si T ≥ 38 °C → ½ dose ≤ 3/j")]
    notes = "Contrôle ✓ à J+7 ; éviter ☀ ; 漢字 ; Ω ≈ 2 ; ♥"
    return {**reference, "lines": lines + reference["lines"][1:], "notes": notes}


def render(docs: Path, out: Path, tree: Path, dpi: int) -> None:
    sys.path.insert(0, str(tree))
    from eprescrire import render as renderer
    from eprescrire import signing

    print(f"drawing with {Path(renderer.__file__).resolve()}")
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(docs.glob("*.json")):
        document = signing.load_document(path.read_bytes())
        for page in ("A5", "A4"):
            pdf = out / f"{path.stem}-{page}.pdf"
            pdf.write_bytes(renderer.pdf_bytes(document, page=page))
            subprocess.run(
                ["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / pdf.stem)], check=True
            )
        qr = out / f"{path.stem}-qr.png"
        qr.unlink(missing_ok=True)
        renderer.write_qr(document, qr)
    print(f"{len(list(out.glob('*.png')))} PNG files in {out}")


def compare(before: Path, after: Path) -> int:
    from PIL import Image, ImageChops

    names = sorted({p.name for p in before.glob("*.png")} | {p.name for p in after.glob("*.png")})
    total = differing = 0
    for name in names:
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            print(f"{name:<32} missing in {'before' if not a.exists() else 'after'}")
            differing += 1
            continue
        one, two = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
        if one.size != two.size:
            print(f"{name:<32} size {one.size} -> {two.size}")
            differing += 1
            continue
        mask = ImageChops.difference(one, two).convert("L").point(lambda v: 255 if v else 0)
        changed = mask.histogram()[255]
        pixels = one.size[0] * one.size[1]
        total += pixels
        differing += changed > 0
        box = f" in box {mask.getbbox()}" if changed else ""
        print(f"{name:<32} {one.size[0]}x{one.size[1]}  {changed} of {pixels} pixels differ{box}")
    print(f"{len(names)} images, {total} pixels compared, {differing} images with a difference")
    pdfs = sorted(p.name for p in before.glob("*.pdf") if (after / p.name).exists())
    same = [n for n in pdfs if (before / n).read_bytes() == (after / n).read_bytes()]
    print(f"{len(pdfs)} PDF files in both, {len(same)} byte for byte identical")
    return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("sign").add_argument("docs", type=Path)
    step = sub.add_parser("render")
    step.add_argument("docs", type=Path)
    step.add_argument("out", type=Path)
    step.add_argument("--tree", type=Path, default=ROOT)
    step.add_argument("--dpi", type=int, default=150)
    step = sub.add_parser("compare")
    step.add_argument("before", type=Path)
    step.add_argument("after", type=Path)
    args = parser.parse_args()
    if shutil.which("pdftoppm") is None and args.step == "render":
        sys.exit("pdftoppm (poppler-utils) is needed to rasterise the PDFs")
    if args.step == "sign":
        sign(args.docs)
    elif args.step == "render":
        render(args.docs, args.out, args.tree.resolve(), args.dpi)
    else:
        sys.exit(compare(args.before, args.after))


if __name__ == "__main__":
    main()
