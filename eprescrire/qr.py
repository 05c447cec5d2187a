"""The QR payload: the whole signed prescription in QR alphanumeric mode (``RX1``, ``RX2``).

An ES256 code carries ``RX1:`` followed by the Base45 (RFC 9285) text of::

    kid (8 bytes) | signature (64 bytes, ES256 r||s) | varint n | numbers (n bytes) | text

A code of any algorithm (the encoder uses it for PS256 and RS256, RSA signatures of tokens
such as CPS cards) carries ``RX2:`` and names the algorithm::

    alg (1 byte) | kid (8 bytes) | [RSA: varint signature length] | signature | varint n | …

*numbers* is one mixed-radix integer holding every number, flag and identifier of the
prescription with no wasted bit (identifiers without their check characters, which are
recomputed); *text* is the raw DEFLATE (RFC 1951), with a versioned preset dictionary of French
prescription vocabulary, of the free-text fields, each followed by a NUL byte. The byte-level
description is in ``docs/qr-format.md``.

The QR form is not signed itself: :func:`decode` rebuilds the prescription's canonical signed
bytes from it and returns the exact standard compact JWS that was signed, which the caller
verifies (:func:`eprescrire.signing.verify_token`). Any field lost or altered on the way makes
that signature check fail, so this module needs no key. :func:`encode` refuses a prescription
that would not round-trip exactly.

Decoding is bounded: the text is at most a QR code's worth of characters, inflation stops at
:data:`MAX_INFLATED` bytes (a decompression bomb is refused, not inflated), and truncated
streams, trailing bytes and out-of-range numbers are ``malformed``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eprescrire import checkdigits, ids, jws, model
from eprescrire.errors import Reason, VerificationError

if TYPE_CHECKING:
    from eprescrire.signing import SignedDocument

__all__ = [
    "MAX_INFLATED",
    "MAX_TEXT_LENGTH",
    "PREFIX",
    "PREFIX_ALGORITHM",
    "Decoded",
    "base45_decode",
    "base45_encode",
    "decode",
    "decode_signed",
    "encode",
    "encode_parts",
    "preset_dictionary",
]

PREFIX = "RX1:"  # ES256, the algorithm implied
PREFIX_ALGORITHM = "RX2:"  # the frame starts with the algorithm's code
#: RX2 algorithm codes (one byte); 0 and the others are malformed.
ALGORITHM_CODES = {jws.ALGORITHM: 1, jws.PS256: 2, jws.RS256: 3}
_ALGORITHMS_BY_CODE = {code: alg for alg, code in ALGORITHM_CODES.items()}
_RSA_SIGNATURE_BYTES = (jws.MIN_RSA_BITS // 8, jws.MAX_RSA_BITS // 8)
#: The largest QR code (version 40, level L) holds 4296 alphanumeric characters.
MAX_TEXT_LENGTH = 4296
#: Inflation stops here; the largest valid text section is about 31 KiB.
MAX_INFLATED = 64 * 1024
#: Preset dictionary of RX1: its file and the SHA-256 of its bytes, fixed forever for RX1.
DICTIONARY_FILE = "qr-dictionary-1.txt"
DICTIONARY_SHA256 = "94d3a77a1bd8739ea427e687159551761ecce0a9ab66e2d1b601a10f5fe6664a"

_KID_BYTES = jws.KID_BYTES
_SIG_BYTES = jws.SIGNATURE_BYTES
_SEPARATOR = b"\x00"
_PREFIX_LIKE = re.compile(r"^RX\d+:")
_PREFIXES = (PREFIX, PREFIX_ALGORITHM)

# Ranges of RX1 (the model's rules when the format was fixed). A value outside cannot be
# represented and encode() refuses it; changing one is a new format version.
_MAX_LINES = 40
_MAX_DAYS = 365
_MAX_QUANTITY = 999
_RENEWALS = 12  # 0..11
_MAX_CENTIKG = 40_000  # 400 kg, two decimals
_AGE_RADIX = 1 << 16  # days between birth and the issue date, plus one
_TIME_RADIX = 1 << 32  # Unix seconds, until 2106
_NS_REASONS = (None, *model.NS_REASONS)  # None: substitutable
_SEXES = (None, "F", "M")
_PACK_MONTHS = (None, *model.PACK_MONTHS)
_UNITS_PER_BOX = model.MAX_UNITS_PER_BOX + 1  # 0: none
_PHONE_SPACED = re.compile(r"0[0-9]( [0-9]{2}){4}")
_PHONE_COMPACT = re.compile(r"0[0-9]{9}")
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Base45 (RFC 9285)

_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_INVALID = 0xFF
#: bytes.translate table: each Base45 character to its value, every other byte to 0xFF.
_BASE45_TABLE = bytes(
    _BASE45.index(chr(b)) if chr(b) in _BASE45 else _BASE45_INVALID for b in range(256)
)


def base45_encode(data: bytes) -> str:
    """RFC 9285 Base45: two bytes to three characters, a last odd byte to two."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        c, n = divmod(n, 45)[::-1]
        d, e = divmod(n, 45)[::-1]
        out.append(_BASE45[c] + _BASE45[d] + _BASE45[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out.append(_BASE45[c] + _BASE45[d])
    return "".join(out)


def base45_decode(text: str) -> bytes:
    """Strict RFC 9285 Base45. On failure, raises ValueError (each text has one meaning)."""
    if len(text) % 3 == 1:
        raise ValueError("Base45 length is not a multiple of three characters (plus two)")
    if not text.isascii():
        raise ValueError("character outside the Base45 alphabet")
    values = text.encode("ascii").translate(_BASE45_TABLE)
    if _BASE45_INVALID in values:
        raise ValueError("character outside the Base45 alphabet")
    full = len(values) - len(values) % 3
    groups = [
        a + b * 45 + c * 2025
        for a, b, c in zip(values[0:full:3], values[1:full:3], values[2:full:3], strict=True)
    ]
    if groups and max(groups) > 0xFFFF:
        raise ValueError("Base45 group out of range")
    out = struct.pack(f">{len(groups)}H", *groups)
    if full < len(values):
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise ValueError("Base45 group out of range")
        out += bytes((n,))
    return out


# --------------------------------------------------------------------------------------------
# Preset dictionary


@functools.cache
def preset_dictionary() -> bytes:
    """The RX1 DEFLATE preset dictionary: French prescription vocabulary, NUL-separated.

    The file keeps one entry per line, least frequent first (DEFLATE reaches the end of the
    dictionary with the shortest distances). Its bytes are pinned: a changed dictionary would
    silently break every RX1 code already printed, so it must be a new format version.
    """
    raw = _package_data(DICTIONARY_FILE)
    entries = [
        line
        for line in raw.decode("utf-8").split("\n")
        if line.strip() and not line.startswith("#")
    ]
    data = (_SEPARATOR.join(e.encode("utf-8") for e in entries)) + _SEPARATOR
    digest = hashlib.sha256(data).hexdigest()
    if digest != DICTIONARY_SHA256:
        raise RuntimeError(
            f"the RX1 QR dictionary {DICTIONARY_FILE} was modified (sha256 {digest}); "
            "a new dictionary needs a new QR format version"
        )
    return data


def _package_data(name: str) -> bytes:
    """A file of ``eprescrire/data``: read from the package directory (importlib.resources,
    with its zipfile and tempfile imports, only when the package is not a directory)."""
    path = Path(__file__).with_name("data") / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        from importlib import resources

        return resources.files("eprescrire").joinpath("data", name).read_bytes()


# --------------------------------------------------------------------------------------------
# Mixed-radix numbers


class _Unrepresentable(ValueError):
    """The prescription has a value RX1 cannot carry."""


class _Digits:
    """Collects (value, radix) pairs; packs them into one integer, first pair least significant."""

    def __init__(self) -> None:
        self.pairs: list[tuple[int, int]] = []

    def put(self, value: int, radix: int, what: str) -> None:
        if not 0 <= value < radix:
            raise _Unrepresentable(f"{what} is out of the range RX1 can carry")
        self.pairs.append((value, radix))

    def flag(self, value: bool) -> None:
        self.pairs.append((int(value), 2))

    def to_bytes(self) -> bytes:
        number = 0
        for value, radix in reversed(self.pairs):
            number = number * radix + value
        return number.to_bytes((number.bit_length() + 7) // 8, "big")


class _Malformed(ValueError):
    pass


class _DigitReader:
    def __init__(self, data: bytes) -> None:
        if data[:1] == b"\x00":
            raise _Malformed("number block is not minimal")
        self.number = int.from_bytes(data, "big")

    def take(self, radix: int) -> int:
        self.number, value = divmod(self.number, radix)
        return value

    def flag(self) -> bool:
        return bool(self.take(2))

    def finish(self) -> None:
        if self.number:
            raise _Malformed("number block has extra data")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 3, len(data))):  # at most 3 bytes: the block is < 2 MiB
        byte = data[i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise _Malformed("length is not minimal")
            return value, i + 1
    raise _Malformed("truncated length")


# --------------------------------------------------------------------------------------------
# Identifiers: check characters are recomputed, never carried


# The identifier digit has the radix of the older form (36^15); an identifier of the current
# form (32^14 values, fewer) is carried in the same digit, and a last, most significant binary
# digit says which form it is. Codes printed before end without that digit (it is 0 there), so
# they decode unchanged.
_ID_RADIX = 36**ids.LEGACY_RANDOM_LENGTH


def _id_value(value: str) -> tuple[int, bool]:
    try:
        return ids.to_number(value)
    except ValueError:
        raise _Unrepresentable("identifier is not valid") from None


def _id_text(value: int, legacy: bool) -> ids.PrescriptionId:
    try:
        return ids.from_number(value, legacy)
    except ValueError:
        raise _Malformed("identifier out of range") from None


def _digits(value: str, width: int, what: str) -> int:
    if len(value) != width or not value.isascii() or not value.isdigit():
        raise _Unrepresentable(f"{what} is not {width} digits")
    return int(value)


def _finess_parts(value: str) -> tuple[int, int]:
    """(kind, value): 1 = nine digits, 2/3 = Corsican 2A/2B; the Luhn key is dropped."""
    kind = {"2A": 2, "2B": 3}.get(value[:2], 1)
    body = value[2:8] if kind > 1 else value[:8]
    return kind, _digits(body, 6 if kind > 1 else 8, "FINESS")


def _finess_text(kind: int, value: int) -> str:
    if kind == 1:
        body = f"{value:08d}"
        return body + checkdigits.luhn_digit(body)
    prefix = "2A" if kind == 2 else "2B"
    return prefix + f"{value:06d}" + checkdigits.luhn_digit("20" + f"{value:06d}")


def _ins_parts(value: str) -> tuple[int, int]:
    """(kind, value): 1 = numeric, 2/3 = born in Corsica (2A/2B); the NIR key is dropped."""
    department = value[5:7]
    kind = {"2A": 2, "2B": 3}.get(department, 1)
    body = value[:5] + value[7:13] if kind > 1 else value[:13]
    return kind, _digits(body, 11 if kind > 1 else 13, "INS")


def _ins_text(kind: int, value: int) -> str:
    if kind == 1:
        body = f"{value:013d}"
    else:
        digits = f"{value:011d}"
        body = digits[:5] + ("2A" if kind == 2 else "2B") + digits[5:]
    return body + checkdigits.nir_key(body)


def _cip13_value(value: str) -> int:
    if not value.startswith("3400"):
        raise _Unrepresentable("CIP13 does not start with 3400")
    return _digits(value[4:12], 8, "CIP13")


def _cip13_text(value: int) -> str:
    body = f"3400{value:08d}"
    return body + checkdigits.ean_digit(body)


# --------------------------------------------------------------------------------------------
# Compact form


@dataclass
class _Compact:
    """The number block and the text fields of the compact form."""

    numbers: bytes
    texts: list[str]


def _compact(p: model.Prescription) -> _Compact:
    if p.version != model.FORMAT_VERSION or model.FORMAT_VERSION != 1:
        raise _Unrepresentable("RX1 carries version 1 prescriptions only")
    d = _Digits()
    texts: list[str] = []
    prescriber, facility, patient = p.prescriber, p.prescriber.facility, p.patient
    d.put(len(p.lines) - 1, _MAX_LINES, "number of lines")
    id_number, id_legacy = _id_value(p.id)
    d.put(id_number, _ID_RADIX, "identifier")
    if p.issued_at.tzinfo is None:
        raise _Unrepresentable("issue time has no time zone")
    d.put(int((p.issued_at - _UNIX_EPOCH).total_seconds()), _TIME_RADIX, "issue time")
    rpps = _digits(prescriber.rpps, 11, "RPPS")
    d.put(rpps // 10, 10**10, "RPPS")
    texts += [prescriber.name, prescriber.specialty, facility.name, facility.address]
    if facility.finess is None:
        d.put(0, 4, "FINESS")
    else:
        kind, value = _finess_parts(facility.finess)
        d.put(kind, 4, "FINESS")
        d.put(value, 10**6 if kind > 1 else 10**8, "FINESS")
    phone = facility.phone
    if phone is None:
        d.put(0, 4, "phone")
    elif _PHONE_SPACED.fullmatch(phone):
        d.put(1, 4, "phone")
        d.put(int(phone.replace(" ", "")), 10**9, "phone")
    elif _PHONE_COMPACT.fullmatch(phone):
        d.put(2, 4, "phone")
        d.put(int(phone), 10**9, "phone")
    else:
        d.put(3, 4, "phone")
        texts.append(phone)
    texts += [patient.family_name, patient.given_name]
    d.put(_SEXES.index(patient.sex), len(_SEXES), "sex")
    if patient.ins is None:
        d.put(0, 4, "INS")
    else:
        kind, value = _ins_parts(patient.ins)
        d.put(kind, 4, "INS")
        d.put(value, 10**11 if kind > 1 else 10**13, "INS")
    issue_day = p.issued_at.astimezone(dt.UTC).date()
    d.put((issue_day - patient.birth_date).days + 1, _AGE_RADIX, "birth date")
    d.flag(patient.weight_kg is not None)
    if patient.weight_kg is not None:
        d.put(round(patient.weight_kg * 100), _MAX_CENTIKG + 1, "weight")
    for line in p.lines:
        if line.substitutable == (line.ns_reason is not None):
            raise _Unrepresentable("substitution flag and reason disagree")
        d.put(_NS_REASONS.index(line.ns_reason), len(_NS_REASONS), "substitution")
        d.flag(line.ald)
        d.flag(line.narcotic)
        d.put(line.duration_days - 1, _MAX_DAYS, "duration")
        d.put(line.quantity - 1, _MAX_QUANTITY, "quantity")
        d.put(line.renewals, _RENEWALS, "renewals")
        d.flag(line.cip13 is not None)
        if line.cip13 is not None:
            d.put(_cip13_value(line.cip13), 10**8, "CIP13")
        d.flag(line.cis is not None)
        if line.cis is not None:
            d.put(_digits(line.cis, 8, "CIS"), 10**8, "CIS")
        d.flag(line.days_per_dispensing is not None)
        if line.days_per_dispensing is not None:
            d.put(line.days_per_dispensing - 1, _MAX_DAYS, "days per dispensing")
        d.flag(line.unit is not None)
        texts += [line.label, line.posology]
        if line.unit is not None:
            texts.append(line.unit)
    d.flag(p.notes is not None)
    if p.notes is not None:
        texts.append(p.notes)
    d.flag(p.share_opposition)
    d.flag(not id_legacy)  # most significant: 0 (absent) for the older identifiers
    # Line extension (long packs and contraceptives, R.5123-2): a flag in the most significant
    # place, so that it adds nothing when unset and codes made before it read the same.
    extended = any(line.pack_months is not None or line.contraceptive for line in p.lines)
    d.flag(extended)
    if extended:
        for line in p.lines:
            if line.pack_months not in _PACK_MONTHS:
                raise _Unrepresentable("pack months is out of the range RX1 can carry")
            d.put(_PACK_MONTHS.index(line.pack_months), len(_PACK_MONTHS), "pack months")
            d.flag(line.contraceptive)
    # Units extension (units per box, R.5132-33), most significant again: its 0 adds nothing,
    # so codes made before it, with or without the line extension, read the same.
    units = any(line.units_per_box is not None for line in p.lines)
    d.flag(units)
    if units:
        for line in p.lines:
            d.put(line.units_per_box or 0, _UNITS_PER_BOX, "units per box")
    return _Compact(d.to_bytes(), texts)


class _Texts:
    """The fields of the text section, in order; running out is malformed."""

    def __init__(self, fields: list[str]) -> None:
        self._fields: Iterator[str] = iter(fields)

    def next(self) -> str:
        value = next(self._fields, None)
        if value is None:
            raise _Malformed("text section is missing fields")
        return value

    def finish(self) -> None:
        if next(self._fields, None) is not None:
            raise _Malformed("text section has extra fields")


def _expand(numbers: bytes, texts: _Texts) -> model.Prescription:
    """Rebuild the model from the compact form (no validation: the signature check decides)."""
    r = _DigitReader(numbers)
    count = r.take(_MAX_LINES) + 1
    id_number = r.take(_ID_RADIX)
    issued_at = _UNIX_EPOCH + dt.timedelta(seconds=r.take(_TIME_RADIX))
    rpps_body = f"{r.take(10**10):010d}"
    rpps = rpps_body + checkdigits.luhn_digit(rpps_body)
    name, specialty, facility_name, address = [texts.next() for _ in range(4)]
    kind = r.take(4)
    finess = _finess_text(kind, r.take(10**6 if kind > 1 else 10**8)) if kind else None
    kind = r.take(4)
    if kind in (1, 2):
        digits = f"{r.take(10**9):09d}"
        phone: str | None = (
            "0" + digits[0] + "".join(" " + digits[i : i + 2] for i in range(1, 9, 2))
            if kind == 1
            else "0" + digits
        )
    else:
        phone = texts.next() if kind == 3 else None
    family_name, given_name = texts.next(), texts.next()
    sex = _SEXES[r.take(len(_SEXES))]
    kind = r.take(4)
    ins = _ins_text(kind, r.take(10**11 if kind > 1 else 10**13)) if kind else None
    birth_date = issued_at.date() - dt.timedelta(days=r.take(_AGE_RADIX) - 1)
    weight: float | None = None
    if r.flag():
        centi = r.take(_MAX_CENTIKG + 1)
        weight = centi // 100 if centi % 100 == 0 else centi / 100
    lines = []
    for _ in range(count):
        ns_reason = _NS_REASONS[r.take(len(_NS_REASONS))]
        ald, narcotic = r.flag(), r.flag()
        duration = r.take(_MAX_DAYS) + 1
        quantity = r.take(_MAX_QUANTITY) + 1
        renewals = r.take(_RENEWALS)
        cip13 = _cip13_text(r.take(10**8)) if r.flag() else None
        cis = f"{r.take(10**8):08d}" if r.flag() else None
        per = r.take(_MAX_DAYS) + 1 if r.flag() else None
        has_unit = r.flag()
        label, posology = texts.next(), texts.next()
        lines.append(
            model.Line(
                label=label,
                posology=posology,
                duration_days=duration,
                quantity=quantity,
                unit=texts.next() if has_unit else None,
                renewals=renewals,
                substitutable=ns_reason is None,
                ns_reason=ns_reason,
                ald=ald,
                narcotic=narcotic,
                cip13=cip13,
                cis=cis,
                days_per_dispensing=per,
            )
        )
    notes = texts.next() if r.flag() else None
    share_opposition = r.flag()
    identifier = _id_text(id_number, legacy=not r.flag())
    if r.flag():
        extras = [(_PACK_MONTHS[r.take(len(_PACK_MONTHS))], r.flag()) for _ in lines]
        if all(months is None and not contraceptive for months, contraceptive in extras):
            raise _Malformed("empty line extension")
        lines = [
            dataclasses.replace(line, pack_months=months, contraceptive=contraceptive)
            for line, (months, contraceptive) in zip(lines, extras, strict=True)
        ]
    if r.flag():
        per_box = [r.take(_UNITS_PER_BOX) or None for _ in lines]
        if all(units is None for units in per_box):
            raise _Malformed("empty units extension")
        lines = [
            dataclasses.replace(line, units_per_box=units)
            for line, units in zip(lines, per_box, strict=True)
        ]
    r.finish()
    return model.Prescription(
        id=identifier,
        issued_at=issued_at,
        prescriber=model.Prescriber(
            name=name,
            rpps=rpps,
            specialty=specialty,
            facility=model.Facility(
                name=facility_name, address=address, finess=finess, phone=phone
            ),
        ),
        patient=model.Patient(
            family_name=family_name,
            given_name=given_name,
            birth_date=birth_date,
            sex=sex,  # type: ignore[arg-type]
            ins=ins,
            weight_kg=weight,
        ),
        lines=tuple(lines),
        notes=notes,
        share_opposition=share_opposition,
    )


# --------------------------------------------------------------------------------------------
# Compression


def _deflate(data: bytes) -> bytes:
    """Smallest raw DEFLATE among zlib's strategies (any of them inflates the same way)."""
    zdict = preset_dictionary()
    best: bytes | None = None
    for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_FIXED):
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, strategy, zdict=zdict)
        out = compressor.compress(data) + compressor.flush()
        if best is None or len(out) < len(best):
            best = out
    assert best is not None
    return best


def _inflate(data: bytes) -> bytes:
    """Bounded raw inflate: refuses output above MAX_INFLATED, truncation and trailing bytes.

    Memory and time stay bounded whatever the input: at most MAX_INFLATED + 1 bytes are ever
    produced. On failure, raises :class:`VerificationError` (``malformed``).
    """
    inflater = zlib.decompressobj(-15, zdict=preset_dictionary())
    try:
        out = inflater.decompress(data, MAX_INFLATED + 1)
    except zlib.error as e:
        raise VerificationError(Reason.MALFORMED, f"QR content is not valid DEFLATE ({e})") from e
    if len(out) > MAX_INFLATED or inflater.unconsumed_tail:
        raise VerificationError(
            Reason.MALFORMED,
            f"QR content inflates beyond {MAX_INFLATED // 1024} KiB (decompression bomb?)",
        )
    if not inflater.eof:
        raise VerificationError(Reason.MALFORMED, "QR content is truncated")
    if inflater.unused_data:
        raise VerificationError(Reason.MALFORMED, "QR content has trailing data")
    if _nonzero_padding(data, out):
        raise VerificationError(Reason.MALFORMED, "QR content has altered padding bits")
    return out


def _quiet_inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj(-15, zdict=preset_dictionary())
    try:
        out = inflater.decompress(data, MAX_INFLATED + 1)
    except zlib.error:
        return None
    return out if inflater.eof and not inflater.unused_data else None


def _nonzero_padding(data: bytes, out: bytes) -> bool:
    """True when the unused high bits of the stream's last byte are not zero.

    DEFLATE ends inside a byte; the bits after its final code are ignored by every inflater,
    so without this check a changed character at the end of the code would still verify. zlib
    writes them as zeros: any other value is an alteration.
    """
    last = data[-1]
    for used in range(1, 8):
        high = last & ~((1 << used) - 1) & 0xFF
        if not high:
            return False  # the bits that could be padding are already zero
        if _quiet_inflate(data[:-1] + bytes([last & ((1 << used) - 1)])) == out:
            return True  # those high bits were padding, and they were set
    return False


# --------------------------------------------------------------------------------------------
# Public API


def encode_parts(
    prescription: model.Prescription, kid: str, signature: bytes, alg: str = jws.ALGORITHM
) -> str:
    """The QR text (``RX1:``/``RX2:`` + Base45, QR alphanumeric characters only) of a signed
    prescription.

    ``kid`` is the JWS kid (base64url of 8 bytes) and ``signature`` the raw signature (64 bytes
    ``r || s`` for ES256, the RSA signature for PS256/RS256) of
    ``jws.assemble(kid, model.signed_bytes(prescription), signature, alg)``. ES256 codes are
    ``RX1`` (readable by every eprescrire verifier), the others ``RX2``. Raises
    ValueError when the prescription cannot be carried exactly (a value outside RX1's ranges,
    a NUL character, a model field RX1 does not know: the QR code would never verify) or is
    too large for the largest QR code.
    """
    kid_bytes = jws.b64url_decode(kid)
    if len(kid_bytes) != _KID_BYTES:
        raise ValueError("the kid must be 8 bytes")
    if alg not in ALGORITHM_CODES:
        raise ValueError(f"no QR form for the algorithm {alg!r}")
    if alg == jws.ALGORITHM:
        if len(signature) != _SIG_BYTES:
            raise ValueError("an ES256 signature is 64 bytes")
        prefix, head = PREFIX, kid_bytes + signature
    else:
        if not _RSA_SIGNATURE_BYTES[0] <= len(signature) <= _RSA_SIGNATURE_BYTES[1]:
            raise ValueError(f"an {alg} signature is 256 to 512 bytes")
        prefix = PREFIX_ALGORITHM
        head = bytes([ALGORITHM_CODES[alg]]) + kid_bytes + _varint(len(signature)) + signature
    try:
        compact = _compact(prescription)
    except _Unrepresentable as e:
        raise ValueError(f"cannot carry this prescription in a QR code: {e}") from e
    if any("\x00" in t for t in compact.texts):
        raise ValueError("cannot carry this prescription in a QR code: text contains NUL")
    body = b"".join(t.encode("utf-8") + _SEPARATOR for t in compact.texts)
    frame = head + _varint(len(compact.numbers)) + compact.numbers + _deflate(body)
    text = prefix + base45_encode(frame)
    expected = jws.assemble(kid, model.signed_bytes(prescription), signature, alg)
    # The compact form must rebuild the signed bytes exactly, or the code would never verify.
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(
            f"prescription too large for a QR code ({len(text)} characters, at most "
            f"{MAX_TEXT_LENGTH}): split it into several prescriptions"
        )
    if decode(text) != expected:
        raise ValueError("cannot carry this prescription in a QR code: it does not round-trip")
    return text


def encode(document: SignedDocument) -> str:
    """The QR text of a signed document.

    Raises ValueError when the document's token is not the canonical JWS of its prescription
    or the prescription cannot be carried exactly.
    """
    try:
        token = jws.parse(document.token)
    except VerificationError as e:
        raise ValueError(f"the document's JWS is not usable: {e}") from e
    # encode_parts decodes its own text and checks it rebuilds this very JWS; comparing that
    # JWS with the document's token makes a second decode unnecessary.
    payload = model.signed_bytes(document.prescription)
    if jws.assemble(token.kid, payload, token.signature, token.alg) != document.token:
        raise ValueError("the document's JWS is not the canonical token of its prescription")
    return encode_parts(document.prescription, token.kid, token.signature, token.alg)


@dataclass(frozen=True)
class Decoded:
    """What a code carries, *not verified*: made by :func:`decode_signed`.

    ``form`` is the prescription rebuilt from the compact form with its signed bytes, the
    bytes the signature must cover. :attr:`token` is the compact JWS :func:`decode` returns.
    """

    alg: str
    kid: str  # base64url, as in the JWS header
    signature: bytes
    form: model.SignedForm

    @property
    def token(self) -> str:
        return jws.assemble(self.kid, self.form.payload, self.signature, self.alg)


def decode(text: str) -> str:
    """Rebuild the exact compact JWS (``jws.assemble(kid, signed bytes, signature, alg)``).

    Surrounding whitespace (a scanner's CR/LF) is ignored. The JWS is *not verified* here: pass
    it to :func:`eprescrire.signing.verify_token`. On failure, raises
    :class:`VerificationError`: ``not_a_prescription`` for a code that is not RX1/RX2 (a URL,
    another health certificate), ``malformed`` for a damaged code.
    """
    return decode_signed(text).token


def decode_signed(text: str) -> Decoded:
    """What :func:`decode` rebuilds, in parts: the algorithm, kid and signature, the
    prescription read from the compact form and its signed bytes (for
    :func:`eprescrire.signing.verify_decoded`). The same checks and errors as :func:`decode`.
    """
    if not isinstance(text, str):
        raise VerificationError(Reason.NOT_A_PRESCRIPTION, "QR content is not text")
    text = text.strip()
    prefix = next((p for p in _PREFIXES if text.startswith(p)), None)
    if prefix is None:
        if _PREFIX_LIKE.match(text):
            version = text.split(":", 1)[0]
            raise VerificationError(
                Reason.NOT_A_PRESCRIPTION,
                f"QR format {version} is not supported by this version of eprescrire",
            )
        raise VerificationError(Reason.NOT_A_PRESCRIPTION, "not an eprescrire QR code")
    if len(text) > MAX_TEXT_LENGTH:
        raise VerificationError(Reason.MALFORMED, "QR text is longer than any QR code holds")
    try:
        frame = base45_decode(text[len(prefix) :])
    except ValueError as e:
        raise VerificationError(Reason.MALFORMED, f"QR text is not valid Base45: {e}") from e
    try:
        alg, kid, signature, header = _signature_header(frame, prefix)
        size, start = _read_varint(frame, header)
        numbers = frame[start : start + size]
        if len(numbers) != size:
            raise _Malformed("QR content is truncated")
        body = _inflate(frame[start + size :])
        if not body.endswith(_SEPARATOR):
            raise _Malformed("text section is not terminated")
        texts = _Texts(body[:-1].decode("utf-8").split("\x00"))
        prescription = _expand(numbers, texts)
        texts.finish()
        # The identifier and every check character were computed here, none read from the code.
        form = model.signed_form(prescription, keys_computed=True)
    except UnicodeDecodeError as e:
        raise VerificationError(Reason.MALFORMED, "QR text section is not UTF-8") from e
    except (_Malformed, ValueError, OverflowError) as e:
        raise VerificationError(Reason.MALFORMED, f"QR content is malformed: {e}") from e
    return Decoded(alg, jws.b64url_encode(kid), signature, form)


def _signature_header(frame: bytes, prefix: str) -> tuple[str, bytes, bytes, int]:
    """(algorithm, kid, signature, offset of the number block's length) of a frame."""
    if prefix == PREFIX:
        alg, pos, size = jws.ALGORITHM, 0, _SIG_BYTES
    else:
        if not frame:
            raise _Malformed("QR content is truncated")
        found = _ALGORITHMS_BY_CODE.get(frame[0])
        if found is None:
            raise _Malformed(f"unknown signature algorithm code {frame[0]}")
        alg, pos, size = found, 1, _SIG_BYTES
    kid = frame[pos : pos + _KID_BYTES]
    pos += _KID_BYTES
    if alg in jws.RSA_ALGORITHMS:
        size, pos = _read_varint(frame, pos)
        if not _RSA_SIGNATURE_BYTES[0] <= size <= _RSA_SIGNATURE_BYTES[1]:
            raise _Malformed(f"an {alg} signature of {size} bytes")
    signature = frame[pos : pos + size]
    pos += size
    if len(kid) != _KID_BYTES or len(signature) != size or len(frame) <= pos:
        raise _Malformed("QR content is truncated")
    return alg, kid, signature, pos
