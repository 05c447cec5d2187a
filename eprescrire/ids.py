"""Prescription identifiers: unguessable, short enough to type, safe on paper and in a shell.

Identifiers issued now are 15 characters of Crockford's base-32 alphabet
(``0-9`` and ``A-Z`` without ``I``, ``L``, ``O``, ``U``): 14 random characters (70 bits) and one
check character from the same alphabet, printed in three groups of five (``7K3Q9-ZP2M4-XD8RT``).
No character is shell-special, and no pair is confused when read from paper: ``O`` and ``0``,
``I``/``L`` and ``1`` cannot both occur, so typed input maps ``O`` to ``0`` and ``I``, ``L`` to
``1``, ignores case, spaces, dots and dashes.

The check character is a weighted sum over GF(32), the field of Bech32 (polynomial
x⁵ + x² + 1): with α the class of x, the characters' values v₁ … v₁₅ satisfy
``Σ vᵢ · α^(15−i) = 0``, computed by Horner's rule ``s ← α·s ⊕ v`` (Damm's totally
anti-symmetric quasigroup ``s ∘ v = α·s ⊕ v``). Every single substitution changes the sum; since
α has order 31, so does every transposition of two different characters at any distance up to
30, and every twin error (``aa`` → ``bb``). Crockford's own check symbols (``*``, ``~``, ``$``,
``=``, ``U``) are shell-special or excluded, which is why they are not used.

Identifiers issued before (16 characters: 15 random base-36 characters and an ISO 7064
MOD 37-2 check character, which may be ``*``, printed ``7K3Q-9ZP2-M4XD-8RT*``) keep verifying
and keep their ledger records: their length tells them apart, and for them only case, spaces
and separators are forgiven (their alphabet holds both ``O`` and ``0``). File names made from
an identifier use :func:`file_stem`, which never contains a shell-special character.
"""

from __future__ import annotations

import re
from typing import NewType

from eprescrire import checkdigits

PrescriptionId = NewType("PrescriptionId", str)

#: Crockford's base-32 alphabet: the identifiers issued now.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH = 14
LENGTH = RANDOM_LENGTH + 1
#: The identifiers issued before: 15 base-36 characters and an ISO 7064 MOD 37-2 check.
LEGACY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LEGACY_RANDOM_LENGTH = 15
LEGACY_LENGTH = LEGACY_RANDOM_LENGTH + 1

_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_CONFUSIONS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_LEGACY = re.compile(r"^[0-9A-Z]{15}[0-9A-Z*]$")
_CURRENT = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")
_SEPARATORS = re.compile(r"[\s\-.]")
_POLYNOMIAL = 0b100101  # x^5 + x^2 + 1, primitive: alpha has order 31


def _times_alpha(s: int) -> int:
    s <<= 1
    return s ^ _POLYNOMIAL if s & 0b100000 else s


def _fold(values: list[int]) -> int:
    s = 0
    for v in values:
        s = _times_alpha(s) ^ v
    return s


def check_character(body: str) -> str:
    """The check character of a body of Crockford base-32 characters (canonical, upper-case)."""
    return ALPHABET[_times_alpha(_fold([_VALUES[c] for c in body]))]


def new_id() -> PrescriptionId:
    """Return a fresh random identifier with its check character (compact form)."""
    import secrets

    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PrescriptionId(body + check_character(body))


def compact(text: str) -> str:
    """Remove separators and spaces, upper-case (no other change)."""
    return _SEPARATORS.sub("", text).upper()


def is_legacy(value: str) -> bool:
    """True for the 16-character form issued before (base-36, MOD 37-2)."""
    return len(compact(value)) == LEGACY_LENGTH


def parse(text: str) -> PrescriptionId:
    """Return the canonical compact identifier of what a person typed or a file holds.

    Case, spaces, dots and dashes are ignored; in the current form ``O`` reads as ``0`` and
    ``I``, ``L`` as ``1``. On failure, raises ValueError naming the problem.
    """
    value = compact(text)
    if len(value) == LEGACY_LENGTH and _LEGACY.match(value):
        if checkdigits.mod37_2_checksum(value) != 1:  # ISO 7064 MOD 37-2
            raise ValueError("check character does not match (mistyped identifier?)")
        return PrescriptionId(value)
    if len(value) != LENGTH:
        raise ValueError(
            f"an identifier is {LENGTH} characters (XXXXX-XXXXX-XXXXX), "
            f"or {LEGACY_LENGTH} for the older form (XXXX-XXXX-XXXX-XXXX)"
        )
    value = value.translate(_CONFUSIONS)
    wrong = sorted({c for c in value if c not in _VALUES})
    if wrong:
        raise ValueError(f"an identifier never contains {', '.join(map(repr, wrong))}")
    if _fold([_VALUES[c] for c in value]):
        raise ValueError("check character does not match (mistyped identifier?)")
    return PrescriptionId(value)


def is_valid(text: str) -> bool:
    """True when ``text`` (grouped or compact, as typed) reads as an identifier whose check holds."""
    try:
        parse(text)
    except ValueError:
        return False
    return True


def is_canonical(value: str) -> bool:
    """True when ``value`` is an identifier exactly as issued (compact, upper-case, no confusion)."""
    if _CURRENT.fullmatch(value):  # what parse would leave unchanged: only its check remains
        return not _fold([_VALUES[c] for c in value])
    try:
        return parse(value) == value
    except ValueError:
        return False


def grouped(value: str) -> str:
    """Printed form: three groups of five (four groups of four for the older form)."""
    value = compact(value)
    size = 4 if len(value) == LEGACY_LENGTH else 5
    return "-".join(value[i : i + size] for i in range(0, len(value), size))


def file_stem(value: str) -> str:
    """A file name stem for an identifier: never a shell-special character (an older
    identifier's ``*`` check character becomes ``_``)."""
    return compact(value).replace("*", "_")


def to_number(value: str) -> tuple[int, bool]:
    """(the random part as an integer, whether the identifier is of the older form); the check
    character is dropped (:func:`from_number` recomputes it). Raises ValueError."""
    if not is_canonical(value):
        raise ValueError("identifier is not valid")
    if len(value) == LEGACY_LENGTH:
        return int(value[:LEGACY_RANDOM_LENGTH], 36), True
    number = 0
    for c in value[:RANDOM_LENGTH]:
        number = number * 32 + _VALUES[c]
    return number, False


def from_number(number: int, legacy: bool) -> PrescriptionId:
    """The identifier whose random part is ``number`` (inverse of :func:`to_number`)."""
    alphabet, length = (
        (LEGACY_ALPHABET, LEGACY_RANDOM_LENGTH) if legacy else (ALPHABET, RANDOM_LENGTH)
    )
    if not 0 <= number < len(alphabet) ** length:
        raise ValueError("identifier out of range")
    body = ""
    for _ in range(length):
        number, digit = divmod(number, len(alphabet))
        body = alphabet[digit] + body
    check = checkdigits.mod37_2_digit(body) if legacy else check_character(body)
    return PrescriptionId(body + check)


# --------------------------------------------------------------------------------------------
# Identifiers of health professionals and facilities

_RPPS = re.compile(r"\d{11}")
_FINESS = re.compile(r"(\d{2}|2A|2B)\d{7}")


def check_rpps(value: str) -> str:
    """An RPPS number (prescriber or pharmacist): 11 digits with a valid Luhn key.

    On failure, raises :class:`stdnum.exceptions.InvalidFormat` or
    :class:`~stdnum.exceptions.InvalidChecksum` (both ``ValueError``)."""
    if not _RPPS.fullmatch(value):
        raise _invalid_format("an RPPS number is 11 digits")
    _luhn(value)
    return value


def check_finess(value: str) -> str:
    """A FINESS number (facility, pharmacy): 9 characters with a valid Luhn key; Corsican
    numbers start with 2A/2B and are checked as 20. Returns it in upper case.

    On failure, raises :class:`stdnum.exceptions.InvalidFormat` or
    :class:`~stdnum.exceptions.InvalidChecksum` (both ``ValueError``)."""
    value = value.strip().upper()
    if not _FINESS.fullmatch(value):
        raise _invalid_format("a FINESS number is 9 characters")
    _luhn(value[:2].replace("2A", "20").replace("2B", "20") + value[2:])
    return value


def _luhn(value: str) -> None:
    """``stdnum.luhn.validate``: ASCII digits checked here (stdnum is not even imported on
    that path, the one every verification takes); anything else is stdnum's to judge."""
    if value.isascii():
        if checkdigits.is_ascii_digits(value) and checkdigits.luhn_checksum(value) == 0:
            return
        from stdnum.exceptions import InvalidChecksum

        raise InvalidChecksum() if value.isdigit() else _invalid_format("not digits")
    from stdnum import luhn

    luhn.validate(value)


def _invalid_format(message: str) -> ValueError:
    from stdnum.exceptions import InvalidFormat

    return InvalidFormat(message)
