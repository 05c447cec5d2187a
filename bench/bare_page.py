#!/usr/bin/env python3
"""The floor for drawing an ordonnance: a plain reportlab + segno page, written from the two
libraries' documentation, that calls nothing of eprescrire.

:func:`draw` puts on one page the same text as the printed ordonnance (prescriber, facility,
patient, every line with its codes, posology, duration, quantity, renewals and mentions, the
identifier, the signature box caption), in the same fonts (Bitstream Vera regular and bold as
embedded TrueType, Courier-Bold for the identifier) and sizes, and the same QR text at the same
error correction level (Q, or M when Q does not fit the box), drawn as vector modules. It is what a competent developer would write
with ``Canvas.drawString``, ``simpleSplit`` for the long lines, ``segno.make_qr`` and
``QRCode.matrix_iter``, one filled path of horizontal module runs: the same work without the
project's layout engine (platypus paragraphs, per-page furniture, "n/N" numbering).

Run alone, it times ``eprescrire.render.pdf_bytes`` of the reference prescription against this
page, in one process, rounds interleaved:

    .venv/bin/python bench/bare_page.py [--rounds 30] [--page A5] [--tree DIR] [--no-accel]

``--tree`` times the ``eprescrire`` of another checkout (e.g. ``git archive`` of an older
commit unpacked in DIR); ``--no-accel`` blocks reportlab's C accelerator (rl-accel) for both
pages, as on a machine without it.

The QR text is computed once beforehand with the project (``qr.encode``): the baseline draws
the same code, it does not make its content.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and "--no-accel" in sys.argv:
    sys.modules["_rl_accel"] = None  # type: ignore[assignment]  # reportlab falls back to Python

import reportlab  # noqa: E402
import segno  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.lib.utils import simpleSplit  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

PAGES = {"A5": (148 * mm, 210 * mm, 10 * mm, 8.0), "A4": (210 * mm, 297 * mm, 15 * mm, 10.0)}
QR_BOX = {"A5": 50 * mm, "A4": 66 * mm}
REGULAR, BOLD, MONO = "BareVera", "BareVera-Bold", "Courier-Bold"

_registered = False


def register_fonts() -> None:
    """Register the TrueType faces once per process (reportlab's user guide, chapter 3)."""
    global _registered
    if not _registered:
        folder = Path(reportlab.__file__).parent / "fonts"
        pdfmetrics.registerFont(TTFont(REGULAR, str(folder / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(folder / "VeraBd.ttf")))
        _registered = True


def text_lines(data: dict[str, Any], day: str, identifier: str) -> list[tuple[str, str]]:
    """(font, text) pairs of the page, top to bottom, from a prescription input (TOML/JSON)."""
    doctor, place, who = data["prescriber"], data["prescriber"]["facility"], data["patient"]
    out = [
        (BOLD, doctor["name"]),
        (REGULAR, f"{doctor['specialty']} — RPPS {doctor['rpps']}"),
        (BOLD, place["name"]),
        (REGULAR, place["address"]),
        (REGULAR, f"FINESS {place.get('finess', '')} · Tél. {place.get('phone', '')}"),
        (REGULAR, f"Le {day}"),
        (REGULAR, f"Ordonnance n° {identifier}"),
        (BOLD, f"{who['family_name'].upper()} {who['given_name']}"),
        (REGULAR, f"Né(e) le {who['birth_date']}"),
    ]
    for number, line in enumerate(data["lines"], start=1):
        codes = " · ".join(f"{k.upper()} {line[k]}" for k in ("cip13", "cis") if k in line)
        out.append((BOLD, f"{number}. {line['label']} {codes}"))
        out.append((REGULAR, line["posology"]))
        facts = f"Durée : {line['duration_days']} jours · Quantité : {line['quantity']}"
        if line.get("unit"):
            facts += f" × {line['unit']}"
        if line.get("renewals"):
            facts += f" · À renouveler {line['renewals']} fois"
        out.append((REGULAR, facts))
        if line.get("ns_reason"):
            out.append((BOLD, f"NS ({line['ns_reason']}) — Non substituable"))
        if line.get("narcotic"):
            # As long as the ordonnance's words: its posology, quantity and duration again.
            out.append(
                (
                    REGULAR,
                    f"Stupéfiant — en toutes lettres : dosage : {line['label'][:20]} ; posologie : "
                    f"{line['posology']} ; quantité : {line['quantity']} {line.get('unit', '')} "
                    f"; durée : {line['duration_days']} jours.",
                )
            )
    out.append((REGULAR, f"Nombre de lignes prescrites : {len(data['lines'])}"))
    if data.get("notes"):
        out.append((REGULAR, f"Remarques : {data['notes']}"))
    if any(line.get("narcotic") for line in data["lines"]):
        out.append((BOLD, SECURE_PAPER))
    out.append((BOLD, "Ordonnance numérique"))
    out.append((REGULAR, DIGITAL_MENTION))
    return out


SECURE_PAPER = (
    "ORDONNANCE SÉCURISÉE — prescription de stupéfiants : cette page doit être imprimée sur "
    "papier sécurisé (art. R.5132-5 du CSP). Dosage, posologie et quantité des stupéfiants "
    "figurent en toutes lettres."
)
DIGITAL_MENTION = (
    "Ordonnance numérique, signée électroniquement. La pharmacie la vérifie en scannant le "
    "code ou en saisissant le numéro imprimé en clair sous le code. Sans logiciel compatible, "
    "elle est traitée comme une ordonnance papier classique : la signature manuscrite du "
    "prescripteur est requise."
)


def make_code(text: str, page: str) -> segno.QRCode:
    """The code at error level Q, or M when Q does not fit the box with 0.5 mm modules (the
    ordonnance's rule), with segno's automatic version and mask."""
    code = segno.make_qr(text, error="q", boost_error=False)
    if code.symbol_size(scale=1, border=4)[0] * 0.5 * mm > QR_BOX[page]:
        code = segno.make_qr(text, error="m", boost_error=False)
    return code


def draw(lines: list[tuple[str, str]], qr_text: str, page: str = "A5") -> bytes:
    """One PDF page: the lines top-down (wrapped to the text width), the QR code bottom-left
    with the identifier under it, the signature box bottom-right."""
    register_fonts()
    width, height, margin, size = PAGES[page]
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(width, height))
    c.setTitle("Ordonnance")
    leading = size * 1.25
    y = height - margin - size
    for font, text in lines:
        for part in simpleSplit(text, font, size, width - 2 * margin):
            c.setFont(font, size)
            c.drawString(margin, y, part)
            y -= leading
    rows = list(make_code(qr_text, page).matrix_iter(scale=1, border=4))
    module = max(0.5 * mm, min(0.8 * mm, QR_BOX[page] / len(rows)))
    bottom = margin + 2 * (size + 1) * 1.2
    path = c.beginPath()
    for r, row in enumerate(rows):
        y = bottom + (len(rows) - 1 - r) * module
        start = None
        for col, dark in enumerate([*row, False]):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                path.rect(margin + start * module, y, (col - start) * module, module)
                start = None
    c.drawPath(path, stroke=0, fill=1)
    c.setFont(MONO, size + 1)
    c.drawString(margin, margin + (size + 1) * 1.2, lines[6][1].rsplit(" ", 1)[-1])
    c.setFont(REGULAR, size - 1)
    c.drawString(margin, margin, "Ordonnance signée électroniquement")
    side = len(rows) * module
    c.rect(margin + side + 4 * mm, bottom, width - 2 * margin - side - 4 * mm, side)
    c.drawString(
        margin + side + 6 * mm,
        bottom + side - size - 1 * mm,
        "Signature du prescripteur (manuscrite)",
    )
    c.drawRightString(width - margin, margin / 2, "1/1")
    c.showPage()
    c.save()
    return buffer.getvalue()


def reference_inputs(tree: Path = ROOT) -> tuple[Any, list[tuple[str, str]], str]:
    """The reference prescription signed with the demo prescriber, and the bare page's inputs
    for it (its lines and its QR text)."""
    import datetime as dt
    import tomllib

    sys.path.insert(0, str(tree))
    from eprescrire import keys, model, signing

    data = tomllib.loads((ROOT / "examples" / "reference.toml").read_text("utf-8"))
    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    document = signing.sign(model.from_input(data, now=dt.datetime.now(dt.UTC)), credentials)
    lines, text = page_inputs(data, document)
    return document, lines, text


def page_inputs(data: dict[str, Any], document: Any) -> tuple[list[tuple[str, str]], str]:
    """The bare page's lines for a prescription input and the QR text of its signed document
    (made by the project beforehand: the baseline draws the code, it does not make its
    content)."""
    from eprescrire import ids, qr

    day = f"{document.prescription.issued_at:%d/%m/%Y}"
    return text_lines(data, day, ids.grouped(document.prescription.id)), qr.encode(document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--page", choices=sorted(PAGES), default="A5")
    parser.add_argument("--tree", type=Path, default=ROOT, help="eprescrire checkout to time")
    parser.add_argument("--no-accel", action="store_true", help="block rl-accel")
    args = parser.parse_args()

    document, lines, text = reference_inputs(args.tree.resolve())
    from eprescrire import render

    render.pdf_bytes(document, page=args.page)  # first call: imports and font registration
    error = make_code(text, args.page).error
    draw(lines, text, args.page)
    times: dict[str, list[float]] = {"bare": [], "project": []}
    cpu: dict[str, list[float]] = {"bare": [], "project": []}
    for _ in range(args.rounds):  # interleaved: machine noise hits both alike
        for name, call in (
            ("bare", lambda: draw(lines, text, args.page)),
            ("project", lambda: render.pdf_bytes(document, page=args.page)),
        ):
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    bare, project = (statistics.median(times[k]) * 1000 for k in ("bare", "project"))
    bare_cpu, project_cpu = (statistics.median(cpu[k]) * 1000 for k in ("bare", "project"))
    accel = "C" if _accelerated() else "pure Python"
    print(
        f"one {args.page} page of the reference prescription ({len(text)} QR characters, "
        f"level {error}), median of {args.rounds} interleaved rounds, reportlab accel: {accel}"
    )
    print(f"eprescrire from {Path(render.__file__).resolve().parent}")
    print(f"{'':<56}{'wall':>8}   {'CPU':>8}")
    print(
        f"{'bare page (reportlab canvas + segno, no eprescrire)':<56}{bare:>8.1f} ms{bare_cpu:>8.1f} ms"
    )
    print(f"{'eprescrire.render.pdf_bytes':<56}{project:>8.1f} ms{project_cpu:>8.1f} ms")
    print(
        f"ratio bare / pdf_bytes (speed of pdf_bytes vs the floor): wall {bare / project:.2f}, "
        f"CPU {bare_cpu / project_cpu:.2f}"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _accelerated() -> bool:
    from reportlab.lib import rl_accel

    return "fp_str" not in getattr(rl_accel, "_py_funcs", {})


if __name__ == "__main__":
    main()
