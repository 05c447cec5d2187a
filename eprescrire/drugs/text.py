"""Accent- and case-folding of drug names, substances and queries.

The catalogue stores folded text and the query is folded the same way, so that « Paracétamol »,
« PARACETAMOL » and « paracetamol » are one word. SQLite's FTS5 ``unicode61`` tokenizer also
removes diacritics, but it leaves ligatures (« œ ») and symbols (« µ ») alone: folding first in
Python keeps the stored text and the query under one rule.
"""

from __future__ import annotations

import re
import unicodedata

_SPECIAL = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "µ": "u"})
_WORD = re.compile(r"[0-9a-z]+")

#: Short French words that carry no meaning in a drug search (« acide de », « pour enfant »).
STOP_WORDS = frozenset(
    {"a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "par", "pour"}
)


def _slow_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


# Latin letters (up to Latin Extended-B) folded once: importing folds ~100,000 strings.
_TABLE = {code: _slow_fold(chr(code)) for code in range(0x80, 0x250)}
_BEYOND = re.compile(r"[^\x00-\u024f]")


def fold(text: str) -> str:
    """Lower case, without accents, ligatures spelled out: ``"Œstrogène µg"`` -> ``"oestrogene ug"``."""
    if text.isascii():
        return text.lower()
    if _BEYOND.search(text):
        return _slow_fold(text)
    return text.translate(_TABLE).lower()


def words(text: str) -> list[str]:
    """The folded words (letters and digits) of ``text``, in order."""
    return _WORD.findall(fold(text))


def query_words(text: str) -> list[str]:
    """The words of a search: stop words dropped unless nothing else is left."""
    found = words(text)
    kept = [w for w in found if w not in STOP_WORDS]
    return kept or found
