"""The French ordonnance layout (reportlab): header, numbered lines, bizone, QR and signature.

Every page repeats the header (prescriber, date, patient) and the footer (the QR code
bottom-left with the identifier beneath it, the signature box bottom-right, "n/N"), so each
sheet of a long prescription can be scanned on its own. Lines keep the number they have in the
prescription (the number ``dispense --line`` takes), including in the bizone layout where ALD
lines are printed first.

Text is set in Bitstream Vera (shipped with reportlab, so the output does not depend on the
machine); characters Vera lacks are drawn with DejaVu Sans when the system has it, else shown
as "?". The QR code is vector: one filled path of module runs, no bitmap.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.pdfgen.pathobject import PDFPathObject
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
)
from reportlab.platypus.flowables import HRFlowable

from eprescrire import ids, model, rules, wording
from eprescrire.french import dosage_words, in_words, quantity_words, spell_numbers
from eprescrire.symbol import QUIET_ZONE, QrSymbol
from eprescrire.text import french_spacing, printable

PAGE_SIZES_MM = {"A5": (148.0, 210.0), "A4": (210.0, 297.0)}
MARGIN_MM = {"A5": 10.0, "A4": 15.0}
FONT_SIZE = {"A5": 8.0, "A4": 10.0}
SIGNATURE_BOX_MAX_MM = 70.0
#: Below this age the patient is a minor: no « Mme » / « M. » before the name.
ADULT_AGE = 18

__all__ = ["build", "draw_qr", "french_date", "french_number", "in_words", "markup", "preload"]

DIGITAL_TITLE = "Ordonnance numérique"
DIGITAL_MENTION = (
    "<b>Ordonnance numérique</b>, signée électroniquement. La pharmacie la vérifie en "
    "scannant le code ou en saisissant le numéro imprimé en clair sous le code. Sans logiciel "
    "compatible, elle est traitée comme une ordonnance papier classique : la signature "
    "manuscrite du prescripteur est requise."
)
SECURE_PAPER = (
    "<b>ORDONNANCE SÉCURISÉE</b> — prescription de stupéfiants : cette page doit être "
    "imprimée sur papier sécurisé (art. R.5132-5 du CSP). Dosage, posologie et quantité des "
    "stupéfiants figurent en toutes lettres."
)
SIGNATURE_TITLE = "Signature du prescripteur (manuscrite)"

ALD_CAPTION = (
    "Prescriptions relatives au traitement de l'affection de longue durée reconnue "
    "(liste ou hors liste) (AFFECTION EXONÉRANTE)"
)
OTHER_CAPTION = (
    "Prescriptions SANS RAPPORT avec l'affection de longue durée (MALADIES INTERCURRENTES)"
)
NS_MEANING = {
    "MTE": "marge thérapeutique étroite",
    "EFG": "enfant de moins de 6 ans, sans générique de forme adaptée",
    "CIF": "contre-indication formelle à un excipient à effet notoire",
}

REGULAR, BOLD, ITALIC, BOLD_ITALIC = "EPVera", "EPVera-Bold", "EPVera-Italic", "EPVera-BoldItalic"
FALLBACK, FALLBACK_BOLD = "EPDejaVu", "EPDejaVu-Bold"
IDENT_FONT = "Courier-Bold"  # identifiers are ASCII: a fixed-width face avoids 0/O, 1/I doubts
_FALLBACK_PATHS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)
GREY = colors.Color(0.35, 0.35, 0.35)
LIGHT = colors.Color(0.92, 0.92, 0.92)


# --------------------------------------------------------------------------------------------
# Fonts


@cache
def _primary() -> frozenset[int]:
    """Register the Vera faces once; return the codepoints they cover."""
    base = Path(reportlab.__file__).parent / "fonts"
    faces = {
        REGULAR: "Vera.ttf",
        BOLD: "VeraBd.ttf",
        ITALIC: "VeraIt.ttf",
        BOLD_ITALIC: "VeraBI.ttf",
    }
    for name, file in faces.items():
        pdfmetrics.registerFont(TTFont(name, str(base / file)))
    pdfmetrics.registerFontFamily(
        REGULAR, normal=REGULAR, bold=BOLD, italic=ITALIC, boldItalic=BOLD_ITALIC
    )
    return _coverage(pdfmetrics.getFont(REGULAR))


@cache
def _fallback() -> frozenset[int]:
    """Register the fallback faces (DejaVu Sans) once, the first time a text holds a character
    Vera lacks (most prescriptions never do: the large font files are then never read);
    return the codepoints they add, empty when the system has no DejaVu."""
    primary = _primary()
    for directory in _FALLBACK_PATHS:
        regular = Path(directory) / "DejaVuSans.ttf"
        bold = Path(directory) / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            try:
                pdfmetrics.registerFont(TTFont(FALLBACK, str(regular)))
                pdfmetrics.registerFont(TTFont(FALLBACK_BOLD, str(bold)))
            except Exception:  # an unreadable system font only costs the fallback
                continue
            pdfmetrics.registerFontFamily(
                FALLBACK,
                normal=FALLBACK,
                bold=FALLBACK_BOLD,
                italic=FALLBACK,
                boldItalic=FALLBACK_BOLD,
            )
            return _coverage(pdfmetrics.getFont(FALLBACK)) - primary
    return frozenset()


def _fonts() -> tuple[frozenset[int], frozenset[int]]:
    """Register every face; return (codepoints Vera covers, codepoints of the fallback)."""
    return _primary(), _fallback()


def preload() -> None:
    """Register the fonts (and read their files) now rather than at the first page; the
    fallback faces stay for the first text that needs them."""
    _primary()


def _coverage(font: Any) -> frozenset[int]:
    return frozenset(font.face.charToGlyph)


@lru_cache(maxsize=2048)  # a batch repeats its prescribers, facilities and posologies
def markup(text: str, *, newlines: bool = False) -> str:
    """Paragraph markup for untrusted text: control, bidi and invisible characters shown as
    visible escapes (:func:`eprescrire.text.printable`; line breaks kept only with
    ``newlines``, for the notes), escaped, NFC, per-glyph font fallback.

    Characters neither font covers become "?" rather than an invisible box.
    """
    text = french_spacing(printable(text, newlines=newlines))
    primary = _primary()
    out: list[str] = []
    run: list[str] = []
    run_is_fallback = False

    def flush() -> None:
        if run:
            chunk = escape("".join(run))
            out.append(f'<font face="{FALLBACK}">{chunk}</font>' if run_is_fallback else chunk)
            run.clear()

    for char in unicodedata.normalize("NFC", text):
        if char == "\n":
            flush()
            out.append("<br/>")
            continue
        code = ord(char)
        if code in primary:
            is_fallback = False
        elif code in _fallback():
            is_fallback = True
        else:
            char, is_fallback = "?", False
        if is_fallback != run_is_fallback:
            flush()
            run_is_fallback = is_fallback
        run.append(char)
    flush()
    return "".join(out)


# --------------------------------------------------------------------------------------------
# French wording


def french_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def french_number(value: float) -> str:
    """84 -> "84", 16.5 -> "16,5"."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace(".", ",")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def _age(birth: dt.date, on: dt.date) -> str:
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    if months >= 24:
        return _plural(months // 12, "an")
    if months >= 1:
        return f"{months} mois"
    return "moins d'un mois"


def _quantity(line: model.Line) -> str:
    if line.unit is None:
        return str(line.quantity)
    if line.quantity == 1:
        return f"1 {line.unit}"
    return f"{line.quantity} × {line.unit}"


# --------------------------------------------------------------------------------------------
# Styles


class _Styles:
    def __init__(self, size: float) -> None:
        lead = size * 1.25

        def style(name: str, **kw: Any) -> ParagraphStyle:
            base: dict[str, Any] = {"fontName": REGULAR, "fontSize": size, "leading": lead}
            base.update(kw)
            return ParagraphStyle(name, **base)

        indent = 5 * mm
        self.name = style("name", fontName=BOLD, fontSize=size + 2.5, leading=(size + 2.5) * 1.25)
        self.text = style("text")
        self.small = style("small", fontSize=size - 1, leading=(size - 1) * 1.25, textColor=GREY)
        self.right = style("right", alignment=TA_RIGHT)
        self.right_small = style(
            "right_small",
            alignment=TA_RIGHT,
            fontSize=size - 1,
            leading=(size - 1) * 1.25,
            textColor=GREY,
        )
        self.patient = style(
            "patient", fontName=BOLD, fontSize=size + 1.5, leading=(size + 1.5) * 1.25
        )
        self.label = style(
            "label",
            fontName=BOLD,
            leftIndent=indent,
            firstLineIndent=-indent,
            spaceBefore=size * 0.5,
        )
        self.detail = style("detail", leftIndent=indent)
        self.caption = style(
            "caption",
            fontName=BOLD,
            fontSize=size - 0.5,
            leading=(size - 0.5) * 1.25,
            backColor=LIGHT,
            borderPadding=(0.8 * mm, 1 * mm),
            spaceBefore=1.5 * mm,
            spaceAfter=1 * mm,
        )
        self.notes = style("notes", spaceBefore=1.5 * mm)
        self.words = style("words", leftIndent=indent, fontSize=size - 0.5, leading=lead)
        self.count = style("count", fontSize=size - 1, leading=(size - 1) * 1.2)
        self.secure = style("secure", fontSize=size - 0.5, leading=(size - 0.5) * 1.25)
        self.furniture = style("furniture", fontSize=size - 1.5, leading=(size - 1.5) * 1.2)
        self.mention = style(
            "mention",
            fontName=ITALIC,
            fontSize=size - 1,
            leading=(size - 1) * 1.25,
            textColor=GREY,
            spaceBefore=2 * mm,
        )


# --------------------------------------------------------------------------------------------
# Blocks


class _Para(Paragraph):  # type: ignore[misc]
    """A paragraph that breaks its lines once per width.

    Platypus wraps a paragraph more than once at the same width (KeepTogether measures its
    content, then the frame wraps each piece again): breaking the lines is most of a
    paragraph's cost, and depends on the width alone, so the second wrap reuses the first.
    """

    _wrapped: tuple[float, float, float, Any] | None = None

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        known = self._wrapped
        # Reused only while the lines broken then are still the paragraph's (a split drops
        # them).
        if (
            known is not None
            and known[0] == available_width
            and getattr(self, "blPara", None) is known[3]
        ):
            self.width, self.height = known[1], known[2]
            return known[1], known[2]
        width, height = super().wrap(available_width, available_height)
        if width == available_width:  # not the "cannot fit here" answer
            self._wrapped = (available_width, width, height, self.blPara)
        return width, height


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of untrusted ``text``."""
    return _Para(markup(text), style)


def _prescriber_block(p: model.Prescription, s: _Styles) -> list[Flowable]:
    who = p.prescriber
    place = who.facility
    block: list[Flowable] = [
        _para(who.name, s.name),
        _para(f"{who.specialty} — RPPS {who.rpps}", s.text),
        _Para(f"<b>{markup(place.name)}</b>", s.text),
        _para(place.address, s.text),
    ]
    contact = [f"FINESS {place.finess}"] if place.finess else []
    if place.phone:
        contact.append(f"Tél. {place.phone}")
    if contact:
        block.append(_para(" · ".join(contact), s.text))
    return block


def _date_block(p: model.Prescription, s: _Styles) -> list[Flowable]:
    issued = rules.local_date(p.issued_at)
    return [
        _Para(f"<b>{DIGITAL_TITLE}</b>", s.right),
        _para(f"Le {french_date(issued)}", s.right),
        _para(f"N° {ids.grouped(p.id)}", s.right_small),
    ]


def _patient_block(p: model.Prescription, s: _Styles) -> list[Flowable]:
    who = p.patient
    issued = rules.local_date(p.issued_at)
    adult = _years(who.birth_date, issued) >= ADULT_AGE
    title = {"F": "Mme ", "M": "M. "}.get(who.sex or "", "") if adult else ""
    born = wording.born(who.sex).capitalize()
    age = _age(who.birth_date, issued)
    facts = f"{born} le {french_date(who.birth_date)} ({age})"
    if who.weight_kg is not None:
        facts += f" — Poids : {french_number(who.weight_kg)} kg"
    block: list[Flowable] = [
        _Para(f"{title}{markup(who.family_name.upper())} {markup(who.given_name)}", s.patient),
        _para(facts, s.text),
    ]
    if any(line.narcotic for line in p.lines):
        block.append(_Boxed(_Para(SECURE_PAPER, s.secure), gap=1.5 * mm, fit=False))
    return block


def _years(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def patient_noun(sex: str | None) -> str:
    """« La patiente », « Le patient », « Le patient ou la patiente » when the sex is unknown."""
    return {"F": "La patiente", "M": "Le patient"}.get(sex or "", "Le patient ou la patiente")


def _line_block(number: int, line: model.Line, s: _Styles) -> list[Flowable]:
    title = f"{number}. {markup(line.label)}"
    # No-break spaces: a code never wraps away from its name.
    codes = [f"CIP13\u00a0{line.cip13}"] if line.cip13 else []
    if line.cis:
        codes.append(f"CIS\u00a0{line.cis}")
    if codes:
        # Identifiers in small grey after the label: they help the pharmacist, not the patient.
        title += f'  <font face="{REGULAR}" size="{s.small.fontSize}" color="#595959">'
        title += f"{' · '.join(codes)}</font>"
    parts: list[Flowable] = [_Para(title, s.label), _para(line.posology, s.detail)]
    facts = markup(f"Durée : {_plural(line.duration_days, 'jour')} · Quantité : {_quantity(line)}")
    if line.renewals:
        facts += f" · <b>À renouveler {line.renewals} fois</b>"
    parts.append(_Para(facts, s.detail))
    if not line.substitutable and line.ns_reason:
        meaning = NS_MEANING.get(line.ns_reason, "")
        parts.append(
            _Para(
                f"<b>NS ({markup(line.ns_reason)}) — Non substituable</b> : {markup(meaning)}",
                s.detail,
            )
        )
    if line.pack_months:
        parts.append(
            _para(
                f"Conditionnement de {line.pack_months} mois : peut être délivré en une fois",
                s.detail,
            )
        )
    if line.contraceptive:
        parts.append(
            _para("Contraceptif : jusqu'à 12 semaines peuvent être délivrées en une fois", s.detail)
        )
    if line.narcotic:
        parts.append(_narcotic_words(line, s))
    if line.days_per_dispensing:
        parts.append(
            _para(
                f"Délivrance fractionnée : {_plural(line.days_per_dispensing, 'jour')} "
                "par délivrance",
                s.detail,
            )
        )
    return parts


def _narcotic_words(line: model.Line, s: _Styles) -> Paragraph:
    """Dosage, posology (units per intake, intakes) and quantity in words (R.5132-29)."""
    items = []
    dosage = dosage_words(line.label)
    if dosage:
        items.append(f"dosage : {dosage}")
    items.append(f"posologie : {spell_numbers(line.posology)}")
    items.append(f"quantité : {quantity_words(line.quantity, line.unit)}")
    days = in_words(line.duration_days)
    items.append(f"durée : {days} jour{'s' if line.duration_days > 1 else ''}")
    text = " ; ".join(markup(item) for item in items)
    return _Para(f"<b>Stupéfiant — en toutes lettres</b> : {text}.", s.words)


class _ZoneMark(Flowable):  # type: ignore[misc]
    """Zero-size marker: records which bizone zone the flow is in when it is drawn, so that a
    page continuing a zone repeats its caption."""

    def __init__(self, tracker: dict[str, str | None], zone: str | None) -> None:
        super().__init__()
        self.tracker = tracker
        self.zone = zone
        self.width = self.height = 0

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.tracker["zone"] = self.zone


class _Boxed(Flowable):  # type: ignore[misc]
    """A paragraph in a ruled box after a gap: as wide as its text (``fit``) or as the column.
    The number of lines prescribed is boxed so that a line added by hand contradicts it."""

    PAD = 0.9 * mm

    def __init__(self, paragraph: Paragraph, gap: float = 1.5 * mm, fit: bool = True) -> None:
        super().__init__()
        self.paragraph = paragraph
        self.gap = gap
        self.fit = fit
        self.box = (0.0, 0.0)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        inner = available_width - 2 * self.PAD
        _, height = self.paragraph.wrap(inner, available_height)
        if self.fit:
            inner = max(self.paragraph.getActualLineWidths0(), default=inner)
            self.paragraph.wrap(inner + 0.01, available_height)
        self.box = (inner + 2 * self.PAD, height + 2 * self.PAD)
        self.width, self.height = self.box[0], self.box[1] + self.gap
        return self.width, self.height

    def draw(self) -> None:
        width, height = self.box
        self.canv.saveState()
        self.canv.setLineWidth(0.8)
        self.canv.rect(0, 0, width, height, stroke=1, fill=0)
        self.canv.restoreState()
        self.paragraph.drawOn(self.canv, self.PAD, self.PAD)


def _zone(
    head: list[Flowable], blocks: list[list[Flowable]], marks: tuple[Flowable, Flowable] | None
) -> list[Flowable]:
    """A zone's caption kept with its first line, then its other lines, each kept whole.

    KeepTogether must not be nested: an inner one reports a huge height and would push the
    outer one to the next page.
    """
    start, end = marks if marks else (None, None)
    first = blocks[0] if blocks else []
    group = ([start] if start else []) + head + first
    zone: list[Flowable] = [KeepTogether(group)] if group else []
    zone += [KeepTogether(block) for block in blocks[1:]]
    return zone + ([end] if end else [])


def _body(
    p: model.Prescription, s: _Styles, tracker: dict[str, str | None] | None = None
) -> list[Flowable]:
    numbered = list(enumerate(p.lines, start=1))
    story: list[Flowable] = []
    tracker = {} if tracker is None else tracker

    def marks(zone: str) -> tuple[Flowable, Flowable]:
        return _ZoneMark(tracker, zone), _ZoneMark(tracker, None)

    if p.has_ald:
        ald = [_line_block(n, line, s) for n, line in numbered if line.ald]
        other = [_line_block(n, line, s) for n, line in numbered if not line.ald]
        story += _zone([_para(ALD_CAPTION, s.caption)], ald, marks("ald"))
        separator = HRFlowable(
            width="100%", thickness=1.2, color=colors.black, spaceBefore=3 * mm, spaceAfter=0
        )
        story += _zone([separator, _para(OTHER_CAPTION, s.caption)], other, marks("other"))
    else:
        story += _zone([], [_line_block(n, line, s) for n, line in numbered], None)
    count = len(p.lines)
    count_text = f"Nombre de lignes prescrites : <b>{count}</b>"
    if any(line.narcotic for line in p.lines):
        count_text = f"Nombre de spécialités prescrites : <b>{count}</b> ({in_words(count)})"
    story.append(_Boxed(_Para(count_text, s.count)))
    if p.notes:
        story.append(_Para(f"<b>Remarques :</b> {markup(p.notes, newlines=True)}", s.notes))
    if p.share_opposition:
        story.append(
            _para(
                f"{patient_noun(p.patient.sex)} s'oppose au partage des informations de "
                "délivrance avec le prescripteur.",
                s.mention,
            )
        )
    return story


# --------------------------------------------------------------------------------------------
# Page furniture


def _stack(
    flowables: Iterable[Flowable], width: float
) -> tuple[list[tuple[Flowable, float]], float]:
    """Wrap flowables in a column; return (flowable, height) pairs and the total height."""
    placed = []
    total = 0.0
    for item in flowables:
        _, height = item.wrap(width, 10_000)
        placed.append((item, height))
        total += height
    return placed, total


def _draw_stack(canvas: Any, placed: list[tuple[Flowable, float]], x: float, top: float) -> None:
    y = top
    for item, height in placed:
        y -= height
        item.drawOn(canvas, x, y)


def draw_qr(canvas: Any, symbol: QrSymbol, x: float, y: float) -> None:
    """Draw the symbol with its quiet zone's lower-left corner at (x, y), as one vector path.

    Dark modules are merged into horizontal runs and filled as a single path, so a rasteriser
    leaves no hairline seams between neighbouring modules.
    """
    module = symbol.module_mm * mm
    n = symbol.modules
    canvas.saveState()
    canvas.setFillColor(colors.white)
    canvas.rect(x, y, symbol.side_mm * mm, symbol.side_mm * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.black)
    # The operators PDFPathObject writes for "n" then one rect() per run, byte for byte, made
    # without a method call per run (a code has ~1,500 runs): every coordinate is one of n
    # columns, n rows or n widths, so each is formatted once.
    left = [fp_str(x + (QUIET_ZONE + c) * module) for c in range(n)]
    bottom = [fp_str(y + (QUIET_ZONE + n - r) * module - module) for r in range(n)]
    width = [fp_str(k * module) for k in range(n + 1)]
    height = fp_str(module)
    path = PDFPathObject(
        code=["n", *(f"{left[c]} {bottom[r]} {width[k]} {height} re" for r, c, k in symbol.runs)]
    )
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def _frame(name: str, x: float, y: float, width: float, height: float) -> Frame:
    return Frame(
        x, y, width, height, leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id=name
    )


class _Layout:
    """Geometry of one page size for one prescription."""

    def __init__(self, p: model.Prescription, symbol: QrSymbol, page: str) -> None:
        width_mm, height_mm = PAGE_SIZES_MM[page]
        self.page_size = (width_mm * mm, height_mm * mm)
        self.margin = MARGIN_MM[page] * mm
        self.font_size = FONT_SIZE[page]
        self.styles = _Styles(self.font_size)
        self.symbol = symbol
        self.p = p
        inner = self.page_size[0] - 2 * self.margin
        self.inner = inner
        s = self.styles
        self.left_width = inner * 0.62
        self.right_width = inner - self.left_width - 3 * mm
        self.left, left_h = _stack(_prescriber_block(p, s), self.left_width)
        self.right, right_h = _stack(_date_block(p, s), self.right_width)
        self.patient, patient_h = _stack(_patient_block(p, s), inner)
        self.top_block = max(left_h, right_h)
        self.header_height = self.top_block + 3 * mm + patient_h + 3 * mm
        # Footer: identifier and mention under the code, code box, gap.
        self.text_line = (self.font_size + 1) * 1.2
        self.qr_bottom = self.margin + 2 * self.text_line
        self.qr_side = symbol.side_mm * mm
        self.qr_module = symbol.module_mm * mm
        self.quiet = QUIET_ZONE * self.qr_module
        self.footer_top = self.qr_bottom + self.qr_side + 2 * mm
        # Right of the code: how a pharmacy checks the ordonnance, then the signature box.
        self.box_left = max(
            self.margin + self.qr_side + 4 * mm,
            self.page_size[0] - self.margin - SIGNATURE_BOX_MAX_MM * mm,
        )
        self.mention, self.mention_height = _stack(
            [_Para(DIGITAL_MENTION, s.furniture)],
            self.page_size[0] - self.margin - self.box_left,
        )
        frame_top = self.page_size[1] - self.margin - self.header_height
        if frame_top - self.footer_top < 30 * mm:
            from eprescrire.errors import InputError

            raise InputError("the prescription header is too long to lay out on this page size")
        self.first_frame = _frame(
            "lines", self.margin, self.footer_top, inner, frame_top - self.footer_top
        )
        # Later pages of a bizone ordonnance keep a strip for the caption of the zone they
        # continue: a reader must never take an ALD line for an intercurrent one.
        self.tracker: dict[str, str | None] = {"zone": None}
        self.continued = {
            zone: _stack([_para(f"{caption} (suite)", s.caption)], inner)
            for zone, caption in (("ald", ALD_CAPTION), ("other", OTHER_CAPTION))
        }
        strip = max(h for _, h in self.continued.values()) + 3 * mm if p.has_ald else 0.0
        self.frame_top = frame_top
        self.later_frame = _frame(
            "more-lines", self.margin, self.footer_top, inner, frame_top - strip - self.footer_top
        )

    def draw_later_page(self, canvas: Any, doc: Any) -> None:
        """A continuation page: the furniture, and the caption of the zone it continues."""
        self.draw_page(canvas, doc)
        zone = self.tracker.get("zone")
        if zone:
            placed, _ = self.continued[zone]
            canvas.saveState()
            _draw_stack(canvas, placed, self.margin, self.frame_top - 1 * mm)
            canvas.restoreState()

    def draw_page(self, canvas: Any, _doc: Any) -> None:
        """Header and footer of every page (the page number is added once the count is known)."""
        width, height = self.page_size
        m = self.margin
        top = height - m
        canvas.saveState()
        _draw_stack(canvas, self.left, m, top)
        _draw_stack(canvas, self.right, width - m - self.right_width, top)
        rule_y = top - self.top_block - 1.5 * mm
        canvas.setStrokeColor(colors.black)
        canvas.setLineWidth(0.6)
        canvas.line(m, rule_y, width - m, rule_y)
        _draw_stack(canvas, self.patient, m, rule_y - 1.5 * mm)
        rule_y = top - self.header_height + 1.5 * mm
        canvas.setLineWidth(0.3)
        canvas.line(m, rule_y, width - m, rule_y)
        # The code bottom-left; the identifier in clear beneath it, aligned on the modules.
        draw_qr(canvas, self.symbol, m, self.qr_bottom)
        text_x = m + self.quiet
        canvas.setFillColor(colors.black)
        canvas.setFont(IDENT_FONT, self.font_size + 1)
        canvas.drawString(text_x, self.margin + self.text_line + 0.5 * mm, ids.grouped(self.p.id))
        canvas.setFont(REGULAR, self.font_size - 1)
        canvas.drawString(text_x, self.margin + 0.5 * mm, "Ordonnance signée électroniquement")
        # Bottom-right, level with the code's modules: how to check the ordonnance, and the
        # box for the handwritten signature under it.
        box_left = self.box_left
        box_bottom = self.qr_bottom + self.quiet
        top = self.qr_bottom + self.qr_side - self.quiet
        _draw_stack(canvas, self.mention, box_left, top)
        box_height = top - self.mention_height - 1.5 * mm - box_bottom
        canvas.setLineWidth(0.5)
        canvas.rect(box_left, box_bottom, width - m - box_left, box_height, stroke=1, fill=0)
        canvas.setFont(REGULAR, self.font_size - 1)
        canvas.setFillColor(GREY)
        canvas.drawString(
            box_left + 1.5 * mm,
            box_bottom + box_height - self.font_size - 1 * mm,
            SIGNATURE_TITLE,
        )
        canvas.restoreState()

    def canvas_class(self) -> type:
        """A canvas that writes "n/N" on every page once the number of pages is known."""
        layout = self

        class NumberedCanvas(pdfcanvas.Canvas):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._pages: list[dict[str, Any]] = []

            def showPage(self) -> None:
                self._pages.append(dict(self.__dict__))
                self._startPage()

            def save(self) -> None:
                total = len(self._pages)
                for number, state in enumerate(self._pages, start=1):
                    self.__dict__.update(state)
                    self.setFont(REGULAR, layout.font_size - 1)
                    self.setFillColor(colors.black)
                    self.drawRightString(
                        layout.page_size[0] - layout.margin,
                        layout.margin / 2,
                        f"{number}/{total}",
                    )
                    super().showPage()
                super().save()

        return NumberedCanvas


def build(p: model.Prescription, symbol: QrSymbol, page: str) -> bytes:
    """The ordonnance of ``p`` as PDF bytes, with ``symbol`` as its QR code."""
    _primary()
    layout = _Layout(p, symbol, page)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=layout.page_size,
        leftMargin=layout.margin,
        rightMargin=layout.margin,
        topMargin=layout.margin,
        bottomMargin=layout.margin,
        title=f"Ordonnance {ids.grouped(p.id)}",
        subject="Ordonnance signée électroniquement",
        creator="eprescrire",
        author="",
        lang="fr-FR",
        invariant=1,
    )
    doc.addPageTemplates(
        [
            PageTemplate(
                id="first",
                frames=[layout.first_frame],
                onPage=layout.draw_page,
                autoNextPageTemplate="later",
            ),
            PageTemplate(id="later", frames=[layout.later_frame], onPage=layout.draw_later_page),
        ]
    )
    doc.build(_body(p, layout.styles, layout.tracker), canvasmaker=layout.canvas_class())
    return buffer.getvalue()
