"""Reading the five BDPM files: encodings, line ends, numbers and dates as the ANSM writes them.

The files are tab-separated, without header, in Windows-1252 or UTF-8 depending on the file and
the year, with CRLF or LF line ends, sometimes a trailing tab. Prices use a comma for decimals
*and* for thousands (``1,466,29`` is 1466.29 €); rates are written ``65%`` or ``65 %``; dates
``DD/MM/YYYY``. Each file's encoding is detected on its own (UTF-8 when its non-ASCII lines are
UTF-8, else Windows-1252).

A row whose key fields are wrong (field count, CIS, CIP13...) is *skipped*; a row with a bad
optional value (a price, a date) is *kept* without that value. Both are reported as a
:class:`Problem` naming the file and the line. Nothing here touches the catalogue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stdnum import ean

from eprescrire.drugs.interface import Component, GroupMember, Presentation

DRUGS = "CIS_bdpm.txt"
PRESENTATIONS = "CIS_CIP_bdpm.txt"
COMPOSITIONS = "CIS_COMPO_bdpm.txt"
GROUPS = "CIS_GENER_bdpm.txt"
CONDITIONS = "CIS_CPD_bdpm.txt"
FILES = (DRUGS, PRESENTATIONS, COMPOSITIONS, GROUPS, CONDITIONS)

MAX_FILE_BYTES = 200 * 1024 * 1024  # the largest file is ~4 MB; anything this big is not BDPM


class RowError(ValueError):
    """A row that cannot be used (it is skipped)."""


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    skipped: bool  # True: the row was left out; False: kept without the bad value

    def __str__(self) -> str:
        what = "skipped" if self.skipped else "kept"
        return f"{self.file}:{self.line}: {self.message} ({what})"


@dataclass
class DrugRow:
    cis: str
    name: str
    form: str
    routes: str
    authorisation: str
    procedure: str
    marketing: str
    authorised_on: dt.date | None
    bdm_status: str
    eu_number: str
    holders: str
    reinforced_monitoring: bool


@dataclass
class FileRead:
    """One file read: its rows (parsed), what was wrong, and how it was written."""

    name: str
    encoding: str
    line_ending: str
    sha256: str
    modified: dt.datetime
    rows: list[Any] = field(default_factory=list)
    row_lines: list[int] = field(default_factory=list)  # the line of each row
    problems: list[Problem] = field(default_factory=list)
    lines: int = 0

    @property
    def skipped(self) -> int:
        return sum(1 for p in self.problems if p.skipped)


# --------------------------------------------------------------------------------------------
# Decoding


def _decode_lines(data: bytes) -> tuple[str, str, list[tuple[int, str | None]]]:
    """(encoding, line ending, [(line number, text or None when undecodable)])."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    crlf = sum(1 for line in raw if line.endswith(b"\r"))
    ending = "CRLF" if raw and crlf == len(raw) else ("LF" if crlf == 0 else "mixed")
    raw = [line[:-1] if line.endswith(b"\r") else line for line in raw]
    utf8_ok = utf8_bad = 0
    for line in raw:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_ok += 1
        except UnicodeDecodeError:
            utf8_bad += 1
    encoding = "utf-8" if utf8_ok >= utf8_bad else "windows-1252"
    decoded: list[tuple[int, str | None]] = []
    for number, line in enumerate(raw, start=1):
        try:
            decoded.append((number, line.decode(encoding)))
        except UnicodeDecodeError:
            decoded.append((number, None))
    return encoding, ending, decoded


# --------------------------------------------------------------------------------------------
# Values


def _fields(text: str, minimum: int, maximum: int) -> list[str]:
    parts = text.split("\t")
    while len(parts) > maximum and parts[-1].strip() == "":
        parts.pop()  # a trailing tab
    if not minimum <= len(parts) <= maximum:
        expected = str(maximum) if minimum == maximum else f"{minimum} to {maximum}"
        raise RowError(f"{len(parts)} fields, expected {expected}")
    parts += [""] * (maximum - len(parts))
    if "  " in text or "\xa0" in text:  # stray spaces: doubled, non-breaking
        return [" ".join(p.split()) for p in parts]
    return [p.strip() for p in parts]


_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_PRICE = re.compile(r"(\d{1,3}(?:[,.]\d{3})*|\d+)(?:[,.](\d{1,2}))?")
_RATE = re.compile(r"(\d{1,3}) ?%")


def _cis(value: str) -> str:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        raise RowError(f"CIS {value[:20]!r} is not 8 digits")
    return value


def _cip13(value: str) -> str:
    if (
        len(value) != 13
        or not value.isascii()
        or not value.isdigit()
        or ean.calc_check_digit(value[:12]) != value[12]
    ):
        raise RowError(f"CIP13 {value[:20]!r} is not 13 digits with a valid EAN-13 key")
    return value


def _text(value: str, what: str) -> str:
    if not value:
        raise RowError(f"{what} is empty")
    return value


class _Soft:
    """Collects bad optional values of one row: the row is kept without them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def date(self, value: str, what: str) -> dt.date | None:
        if not value:
            return None
        match = _DATE.fullmatch(value)
        if match:
            day, month, year = map(int, match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                pass
        self.messages.append(f"{what} {value[:20]!r} is not a date DD/MM/YYYY")
        return None

    def price(self, value: str, what: str) -> int | None:
        """Cents from ``30,52``, ``1,466,29`` (thousands by comma too), ``1 466,29``, ``12``."""
        if not value:
            return None
        compact = value.replace(" ", "").replace("\u202f", "")
        match = _PRICE.fullmatch(compact)
        if match:
            whole = int(re.sub(r"[,.]", "", match.group(1)))
            cents = int((match.group(2) or "0").ljust(2, "0"))
            return whole * 100 + cents
        self.messages.append(f"{what} {value[:20]!r} is not a price")
        return None

    def rate(self, value: str) -> int | None:
        if not value:
            return None
        match = _RATE.fullmatch(value)
        if match and int(match.group(1)) <= 100:
            return int(match.group(1))
        self.messages.append(f"reimbursement rate {value[:20]!r} is not a percentage")
        return None

    def yes_no(self, value: str, what: str) -> bool | None:
        folded = value.lower()
        if folded in ("oui", "non"):
            return folded == "oui"
        if value:
            self.messages.append(f"{what} {value[:20]!r} is neither oui nor non")
        return None


# --------------------------------------------------------------------------------------------
# Rows, one parser per file


def _drug(text: str, soft: _Soft) -> DrugRow:
    f = _fields(text, 11, 12)
    return DrugRow(
        cis=_cis(f[0]),
        name=_text(f[1], "name"),
        form=f[2],
        routes=f[3],
        authorisation=f[4],
        procedure=f[5],
        marketing=f[6],
        authorised_on=soft.date(f[7], "authorisation date"),
        bdm_status=f[8],
        eu_number=f[9],
        holders=f[10],
        reinforced_monitoring=soft.yes_no(f[11], "reinforced monitoring") or False,
    )


def _presentation(text: str, soft: _Soft) -> Presentation:
    f = _fields(text, 10, 13)
    cip7 = f[1]
    if len(cip7) != 7 or not cip7.isascii() or not cip7.isdigit():
        raise RowError(f"CIP7 {cip7[:20]!r} is not 7 digits")
    return Presentation(
        cis=_cis(f[0]),
        cip7=cip7,
        label=f[2],
        status=f[3],
        marketing=f[4],
        declared_on=soft.date(f[5], "declaration date"),
        cip13=_cip13(f[6]),
        hospital_approval=soft.yes_no(f[7], "hospital approval"),
        reimbursement_rate=soft.rate(f[8]),
        price_cents=soft.price(f[9], "price"),
        price_with_fees_cents=soft.price(f[10], "price with fees"),
        fees_cents=soft.price(f[11], "dispensing fees"),
        reimbursement_notes=f[12],
    )


def _component(text: str, soft: _Soft) -> tuple[str, Component]:
    f = _fields(text, 8, 8)
    return _cis(f[0]), Component(
        element=f[1],
        substance_code=f[2],
        substance=_text(f[3], "substance name"),
        dosage=f[4],
        reference=f[5],
        nature=f[6],
        link=f[7],
    )


def _member(text: str, soft: _Soft) -> GroupMember:
    f = _fields(text, 5, 5)
    if not re.fullmatch(r"\d{1,9}", f[0]):
        raise RowError(f"generic group {f[0][:20]!r} is not a number")
    if not re.fullmatch(r"\d", f[3]):
        raise RowError(f"generic type {f[3][:20]!r} is not a digit")
    order = int(f[4]) if re.fullmatch(r"\d{1,9}", f[4]) else 0
    if not re.fullmatch(r"\d{1,9}", f[4]):
        soft.messages.append(f"sort order {f[4][:20]!r} is not a number")
    return GroupMember(
        group_id=int(f[0]),
        group_label=_text(f[1], "group label"),
        cis=_cis(f[2]),
        type=int(f[3]),
        order=order,
    )


def _condition(text: str, soft: _Soft) -> tuple[str, str]:
    f = _fields(text, 2, 2)
    return _cis(f[0]), _text(f[1], "condition")


PARSERS: dict[str, Callable[[str, _Soft], Any]] = {
    DRUGS: _drug,
    PRESENTATIONS: _presentation,
    COMPOSITIONS: _component,
    GROUPS: _member,
    CONDITIONS: _condition,
}


def read_file(path: Path, name: str) -> FileRead:
    """Read and parse one BDPM file. Raises OSError when it cannot be read."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RowError(f"{size} bytes is too large for a BDPM file")
    data = path.read_bytes()
    encoding, ending, lines = _decode_lines(data)
    read = FileRead(
        name=name,
        encoding=encoding,
        line_ending=ending,
        sha256=hashlib.sha256(data).hexdigest(),
        modified=dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(microsecond=0),
    )
    parse = PARSERS[name]
    for number, text in lines:
        if text is None:
            read.lines += 1
            read.problems.append(Problem(name, number, f"not valid {encoding}", True))
            continue
        if not text.strip():
            continue  # blank lines carry nothing
        read.lines += 1
        soft = _Soft()
        try:
            row = parse(text, soft)
        except RowError as e:
            read.problems.append(Problem(name, number, str(e), True))
            continue
        read.problems.extend(Problem(name, number, m, False) for m in soft.messages)
        read.rows.append(row)
        read.row_lines.append(number)
    return read


def iter_problems(files: list[FileRead]) -> Iterator[Problem]:
    for read in files:
        yield from read.problems
