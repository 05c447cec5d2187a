"""Signed text, shown safely: one rule for the terminal and for the paper.

A prescription's free text (names, labels, posology, notes) is signed, but a trusted signer may
still be malicious, and documents signed before the input rules were tightened keep verifying.
Text that reaches a person therefore goes through :func:`printable` first: characters that
could move the cursor, start a terminal escape sequence, reorder what follows (bidi overrides
and isolates), hide text (zero-width characters) or break a line are shown as visible escapes
(``\\n``, ``\\x9b``, ``\\u202e``) instead of acting. A label can then never print a second
``VALIDE`` line or a fake numbered line.

:func:`unsafe_characters` is the same set, for refusing such text at ``issue``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["french_spacing", "is_unsafe", "printable", "unsafe_characters"]

#: Unicode general categories never shown as they are: controls (C0, DEL, C1), format
#: characters (bidi marks, overrides and isolates, zero-width space/joiners, word joiner, BOM,
#: soft hyphen...), line and paragraph separators, surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_unsafe(char: str) -> bool:
    """Whether one character must not reach a terminal or a page as it is."""
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def unsafe_characters(text: str, *, allow_newline: bool = False) -> list[str]:
    """The distinct unsafe characters of ``text``, in order of appearance (``\\n`` excepted
    when ``allow_newline``)."""
    found: dict[str, None] = {}
    for char in text:
        if is_unsafe(char) and not (allow_newline and char == "\n"):
            found.setdefault(char)
    return list(found)


def _escape(char: str) -> str:
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every unsafe character replaced by a visible escape.

    ``newlines=True`` keeps ``\\n`` as a line break (multi-line free text such as the notes,
    shown where a line break cannot be taken for another field); every other unsafe character
    is escaped. Safe text is returned unchanged.
    """
    if not any(is_unsafe(c) for c in text):
        return text
    return "".join(c if not is_unsafe(c) or (newlines and c == "\n") else _escape(c) for c in text)


def describe(chars: list[str]) -> str:
    """Name characters for an error message: ``U+000A (line feed), U+202E``."""
    parts = []
    for char in chars[:5]:
        name = unicodedata.name(char, "")
        parts.append(f"U+{ord(char):04X}" + (f" ({name.lower()})" if name else ""))
    more = f" and {len(chars) - 5} more" if len(chars) > 5 else ""
    return ", ".join(parts) + more


#: A space before « : ; ! ? » » or after « « », where French typography never breaks a line.
_BREAKLESS = re.compile(r" (?=[:;!?\u00bb])|(?<=\u00ab) ")


def french_spacing(text: str) -> str:
    """``text`` with the spaces French punctuation keeps to its word made non-breaking
    (U+00A0), so that a wrapped line never starts with « : » or ends with « « »."""
    return _BREAKLESS.sub("\u00a0", text) if " " in text else text
