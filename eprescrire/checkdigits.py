"""Check characters of the identifiers a prescription carries, for ASCII digits.

Luhn (RPPS, FINESS), EAN-13 (CIP13), the NIR key (INS) and ISO 7064 MOD 37-2 (the older
prescription identifiers): the same arithmetic as python-stdnum (``stdnum.luhn``,
``stdnum.ean``, ``stdnum.fr.nir``, ``stdnum.iso7064.mod_37_2``), which the tests check value for
value. Verifying a code runs these at every scan, and importing stdnum costs more than a whole
verification (its ``stdnum.util`` loads ``pydoc`` and ``ssl``): stdnum stays the reference, and
the callers hand it whatever is not plain ASCII, so that its own reading of other characters
(full-width digits, say) keeps deciding for them.
"""

from __future__ import annotations

_DIGITS = "0123456789"
_MOD37_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_MOD37_VALUES = {c: i for i, c in enumerate(_MOD37_ALPHABET)}
#: Luhn: the value a doubled digit adds (2d, less 9 when it has two digits).
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
#: bytes.translate table: an ASCII digit to the value its doubling adds.
_DOUBLED_BYTES = bytes.maketrans(b"0123456789", bytes(_DOUBLED))


def is_ascii_digits(value: str) -> bool:
    """True when ``value`` is one or more of the ASCII digits 0-9 and nothing else."""
    return value.isascii() and value.isdigit()


def luhn_checksum(digits: str) -> int:
    """The Luhn checksum of ASCII digits (0 for a valid number). Raises ValueError otherwise."""
    if not is_ascii_digits(digits):
        raise ValueError("not ASCII digits")
    data = digits.encode("ascii")
    kept, doubled = data[::-2], data[-2::-2]  # from the right: every other digit doubled
    return (sum(kept) - 48 * len(kept) + sum(doubled.translate(_DOUBLED_BYTES))) % 10


def luhn_digit(body: str) -> str:
    """The Luhn check digit to append to ``body`` (ASCII digits)."""
    return _DIGITS[-luhn_checksum(body + "0")]


def ean_digit(body: str) -> str:
    """The EAN check digit to append to ``body`` (ASCII digits): weights 3, 1, ... from the
    right."""
    if not is_ascii_digits(body):
        raise ValueError("not ASCII digits")
    data = body.encode("ascii")
    threes, ones = data[::-2], data[-2::-2]
    total = 3 * (sum(threes) - 48 * len(threes)) + sum(ones) - 48 * len(ones)
    return _DIGITS[-total % 10]


def nir_key(number: str) -> str:
    """The two-digit key of a NIR (INS): 97 - (the first 13 characters mod 97), Corsican 2A
    and 2B counted as 19 and 18. ``number`` is at least its 13 first characters."""
    department = number[5:7]
    if department == "2A":
        number = number[:5] + "19" + number[7:]
    elif department == "2B":
        number = number[:5] + "18" + number[7:]
    body = number[:13]
    if not is_ascii_digits(body):
        raise ValueError("not ASCII digits")
    return f"{97 - int(body) % 97:02d}"


def mod37_2_checksum(value: str) -> int:
    """ISO 7064 MOD 37-2 checksum over ``0-9A-Z*`` (1 for a valid value); raises ValueError on
    any other character."""
    check = 0
    try:
        for c in value:
            check = (2 * check + _MOD37_VALUES[c]) % 37
    except KeyError:
        raise ValueError("character outside 0-9A-Z*") from None
    return check


def mod37_2_digit(body: str) -> str:
    """The ISO 7064 MOD 37-2 check character to append to ``body``."""
    return _MOD37_ALPHABET[(1 - 2 * mod37_2_checksum(body)) % 37]
