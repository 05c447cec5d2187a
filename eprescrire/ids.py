"""Prescription identifiers: unguessable, short enough to type, with an ISO 7064 check character.

Format: 15 random base-36 characters (77 bits) followed by one ISO 7064 MOD 37-2 check
character, printed in four groups of four (``7K3Q-9ZP2-M4XD-8RT*``). The check character
catches every single substitution and every adjacent transposition when the identifier is
typed from the paper.
"""

from __future__ import annotations

import re
import secrets
from typing import NewType

from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_37_2

PrescriptionId = NewType("PrescriptionId", str)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RANDOM_LENGTH = 15
_COMPACT = re.compile(r"^[0-9A-Z]{15}[0-9A-Z*]$")


def new_id() -> PrescriptionId:
    """Return a fresh random identifier with its check character (compact form)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PrescriptionId(body + mod_37_2.calc_check_digit(body))


def compact(text: str) -> str:
    """Remove separators and spaces, upper-case."""
    return re.sub(r"[\s\-.]", "", text).upper()


def is_valid(text: str) -> bool:
    """True when ``text`` (grouped or compact) is a well-formed identifier whose check holds."""
    value = compact(text)
    if not _COMPACT.match(value):
        return False
    try:
        mod_37_2.validate(value)
    except StdnumError:
        return False
    return True


def parse(text: str) -> PrescriptionId:
    """Return the compact identifier; raise ValueError naming the problem."""
    value = compact(text)
    if not _COMPACT.match(value):
        raise ValueError("an identifier is 16 characters: 15 of 0-9/A-Z and a check character")
    if not is_valid(value):
        raise ValueError("check character does not match (mistyped identifier?)")
    return PrescriptionId(value)


def grouped(value: str) -> str:
    """Printed form, in groups of four."""
    value = compact(value)
    return "-".join(value[i : i + 4] for i in range(0, len(value), 4))


# --------------------------------------------------------------------------------------------
# Identifiers of health professionals and facilities

_RPPS = re.compile(r"\d{11}")
_FINESS = re.compile(r"(\d{2}|2A|2B)\d{7}")


def check_rpps(value: str) -> str:
    """An RPPS number (prescriber or pharmacist): 11 digits with a valid Luhn key.

    On failure, raises :class:`stdnum.exceptions.InvalidFormat` or
    :class:`~stdnum.exceptions.InvalidChecksum` (both ``ValueError``)."""
    from stdnum import luhn
    from stdnum.exceptions import InvalidFormat

    if not _RPPS.fullmatch(value):
        raise InvalidFormat("an RPPS number is 11 digits")
    luhn.validate(value)
    return value


def check_finess(value: str) -> str:
    """A FINESS number (facility, pharmacy): 9 characters with a valid Luhn key; Corsican
    numbers start with 2A/2B and are checked as 20. Returns it in upper case.

    On failure, raises :class:`stdnum.exceptions.InvalidFormat` or
    :class:`~stdnum.exceptions.InvalidChecksum` (both ``ValueError``)."""
    from stdnum import luhn
    from stdnum.exceptions import InvalidFormat

    value = value.strip().upper()
    if not _FINESS.fullmatch(value):
        raise InvalidFormat("a FINESS number is 9 characters")
    luhn.validate(value[:2].replace("2A", "20").replace("2B", "20") + value[2:])
    return value
