"""Numbers in French words, as the Code de la santé publique wants them on an ordonnance
sécurisée (R.5132-29: dosage, units per intake and quantity of a narcotic « en toutes
lettres »).

Traditional spelling (hyphens below a hundred only): « soixante et onze », « quatre-vingts »,
« quatre-vingt-un », « deux cents », « deux cent un », « deux cent mille ». ``feminine`` makes
a final « un » agree with a feminine noun: « une gélule », « vingt et une gélules ».
"""

from __future__ import annotations

import re

_UNITS = [
    "zéro",
    "un",
    "deux",
    "trois",
    "quatre",
    "cinq",
    "six",
    "sept",
    "huit",
    "neuf",
    "dix",
    "onze",
    "douze",
    "treize",
    "quatorze",
    "quinze",
    "seize",
    "dix-sept",
    "dix-huit",
    "dix-neuf",
]
_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}

#: Largest number :func:`in_words` spells.
MAX = 999_999_999_999


def _below_100(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    if tens in (7, 9):  # soixante-dix-..., quatre-vingt-dix-...
        head = "soixante" if tens == 7 else "quatre-vingt"
        joiner = " et " if n == 71 else "-"
        return head + joiner + _UNITS[10 + unit]
    if tens == 8:
        return "quatre-vingts" if unit == 0 else "quatre-vingt-" + _UNITS[unit]
    if unit == 0:
        return _TENS[tens]
    return _TENS[tens] + (" et un" if unit == 1 else "-" + _UNITS[unit])


def _below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _below_100(rest)
    head = "cent" if hundreds == 1 else _UNITS[hundreds] + " cent"
    if rest == 0:
        return head + ("s" if hundreds > 1 else "")
    return head + " " + _below_100(rest)


def _invariable(words: str) -> str:
    """« quatre-vingts » and « deux cents » lose their s before « mille »."""
    if words.endswith(("vingts", "cents")):
        return words[:-1]
    return words


def in_words(n: int, *, feminine: bool = False) -> str:
    """``n`` (0 to :data:`MAX`) in French words; ``feminine`` for « une », « vingt et une »."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX:
        raise ValueError(f"in_words takes a whole number from 0 to {MAX}")
    if n == 0:
        return _UNITS[0]
    parts: list[str] = []
    billions, rest = divmod(n, 1_000_000_000)
    millions, rest = divmod(rest, 1_000_000)
    thousands, units = divmod(rest, 1000)
    for count, name in ((billions, "milliard"), (millions, "million")):
        if count:  # nouns: they take an s, and « quatre-vingts millions » keeps its own
            parts.append(f"{_below_1000(count)} {name}{'s' if count > 1 else ''}")
    if thousands:
        parts.append("mille" if thousands == 1 else _invariable(_below_1000(thousands)) + " mille")
    if units:
        parts.append(_below_1000(units))
    text = " ".join(parts)
    if feminine and text.endswith("un"):
        text += "e"
    return text


#: Nouns of a posology that are feminine (singular, lower case): « une gélule ».
FEMININE = frozenset(
    [
        "ampoule",
        "application",
        "bouffée",
        "boîte",
        "capsule",
        "cartouche",
        "cuillère",
        "cuillerée",
        "dose",
        "dose-poids",
        "fois",
        "goutte",
        "gélule",
        "heure",
        "inhalation",
        "injection",
        "journée",
        "mesure",
        "minute",
        "nuit",
        "pastille",
        "perle",
        "pipette",
        "plaquette",
        "poche",
        "prise",
        "pulvérisation",
        "semaine",
        "seringue",
        "solution",
        "suspension",
        "tablette",
        "unité",
    ]
)

#: Unit symbols written out (singular, plural).
_UNIT_WORDS = {
    "mg": ("milligramme", "milligrammes"),
    "g": ("gramme", "grammes"),
    "µg": ("microgramme", "microgrammes"),
    "μg": ("microgramme", "microgrammes"),
    "mcg": ("microgramme", "microgrammes"),
    "ml": ("millilitre", "millilitres"),
    "mL": ("millilitre", "millilitres"),
    "l": ("litre", "litres"),
    "kg": ("kilogramme", "kilogrammes"),
    "h": ("heure", "heures"),
    "%": ("pour cent", "pour cent"),
    "UI": ("unité internationale", "unités internationales"),
}
_NUMBER = re.compile(r"(?<![\w.,])(\d+)(?:[.,](\d+))?(?![\w])")
_NEXT_WORD = re.compile(r"\s*([%µμ]\w*|[^\W\d]+(?:-[^\W\d]+)*)")


def number_words(whole: str, decimals: str | None = None, *, feminine: bool = False) -> str:
    """« 2 », « 5 » -> « deux virgule cinq »; the digits of a decimal part are read as a
    number, with its leading zeros: « 0,05 » -> « zéro virgule zéro cinq »."""
    if len(whole.lstrip("0")) > 12 or (decimals is not None and len(decimals) > 12):
        return whole if decimals is None else f"{whole},{decimals}"
    if decimals is None:
        return in_words(int(whole), feminine=feminine)
    zeros = len(decimals) - len(decimals.lstrip("0"))
    tail = ["zéro"] * zeros + ([in_words(int(decimals))] if decimals.lstrip("0") else [])
    return f"{in_words(int(whole))} virgule {' '.join(tail or ['zéro'])}"


def spell_numbers(text: str) -> str:
    """``text`` with every number written in words, unit symbols after a number written out,
    and « un » agreeing with a feminine noun that follows:
    « 1 gélule de 30 mg toutes les 12 h » -> « une gélule de trente milligrammes toutes les
    douze heures »."""
    out: list[str] = []
    position = 0
    for match in _NUMBER.finditer(text):
        whole, decimals = match.group(1), match.group(2)
        following = _NEXT_WORD.match(text, match.end())
        noun = following.group(1) if following else ""
        singular = noun.lower()[:-1] if noun.lower().endswith("s") else noun.lower()
        feminine = noun.lower() in FEMININE or singular in FEMININE
        out.append(text[position : match.start()])
        out.append(number_words(whole, decimals, feminine=feminine))
        position = match.end()
        if following and noun in _UNIT_WORDS:
            one = float(f"{whole}.{decimals or 0}") < 2
            singular_word, plural_word = _UNIT_WORDS[noun]
            out.append(" " + (singular_word if one else plural_word))
            position = following.end()
    out.append(text[position:])
    return "".join(out)


def quantity_words(count: int, unit: str | None) -> str:
    """A quantity in words with its unit: « une boîte de quatorze gélules », « deux flacons
    de cent vingt-cinq millilitres », « trois unités »."""
    if not unit:
        unit = "unité"
    head, sep, rest = unit.partition(" ")
    feminine = head.lower() in FEMININE
    if count >= 2 and not head.endswith(("s", "x", "z")):
        head += "x" if head.endswith(("eau", "au", "eu")) else "s"
    return f"{in_words(count, feminine=feminine)} {head}{sep}{spell_numbers(rest)}"


_DOSE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:%|mg|g|µg|μg|mcg|UI|ml|mL)(?![\w])"
    r"(?:\s*/\s*(?:\d+(?:[.,]\d+)?\s*)?(?:ml|mL|h|dose)(?![\w]))?"
)


def dosage_words(label: str) -> str | None:
    """The dosage(s) a drug label states, in words (« MORPHINE 30 mg, gélule » -> « trente
    milligrammes »), or None when the label states none."""
    found = []
    for match in _DOSE.finditer(label):
        words = re.sub(r"\s*/\s*h$", " par heure", spell_numbers(match.group(0)))
        found.append(re.sub(r"\s*/\s*", " par ", words))
    return ", ".join(found) if found else None
