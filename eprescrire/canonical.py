"""Canonical bytes and strict JSON parsing.

Every signed byte comes from :func:`dumps`: keys sorted, no insignificant whitespace, UTF-8
(not ``\\u`` escapes), integers and short decimals only. :func:`loads` refuses what an attacker
could use to make two parsers disagree: duplicate keys, NaN/Infinity, huge numbers, deep nesting.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DOCUMENT_BYTES = 1 << 20  # a signed prescription is a few KiB; refuse anything near a MiB
MAX_NUMBER_DIGITS = 15  # beyond this a number is not a quantity, it is an attack
MAX_DEPTH = 16


class StrictJSONError(ValueError):
    """The text is not strict JSON as eprescrire accepts it."""


# One encoder for every call (json.dumps with these options builds a new one each time).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def dumps(value: Any) -> bytes:
    """Canonical UTF-8 bytes of a JSON value."""
    return _ENCODER.encode(value).encode("utf-8")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # a key given twice
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a number")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS and len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise StrictJSONError("number too large")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS + 2 or "e" in text.lower():
        raise StrictJSONError("number too large or too precise")
    return float(text)


def _depth(value: Any) -> None:
    """Refuse a value nested deeper than MAX_DEPTH: no member (of any kind) below that level.

    Level by level over the containers only: a non-empty container at level MAX_DEPTH has
    members below it.
    """
    level = 0
    frontier = [value] if isinstance(value, (dict, list)) else []
    while frontier:
        deeper: list[Any] = []
        for container in frontier:
            members = container.values() if isinstance(container, dict) else container
            if members and level >= MAX_DEPTH:
                raise StrictJSONError("nesting too deep")
            deeper += [m for m in members if isinstance(m, (dict, list))]
        frontier = deeper
        level += 1


def loads(data: bytes | str) -> Any:
    """Parse strict JSON. On failure, raises :class:`StrictJSONError`."""
    if isinstance(data, bytes):
        if len(data) > MAX_DOCUMENT_BYTES:
            raise StrictJSONError("document too large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrictJSONError("not UTF-8") from e
    else:
        text = data
        if len(text) > MAX_DOCUMENT_BYTES:
            raise StrictJSONError("document too large")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as e:
        raise StrictJSONError(f"not valid JSON ({e.__class__.__name__})") from e
    _depth(value)
    return value
