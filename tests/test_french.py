"""Numbers in French words (narcotics on an ordonnance sécurisée)."""

from __future__ import annotations

import pytest

from eprescrire import french


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zéro"),
        (1, "un"),
        (16, "seize"),
        (17, "dix-sept"),
        (21, "vingt et un"),
        (22, "vingt-deux"),
        (60, "soixante"),
        (70, "soixante-dix"),
        (71, "soixante et onze"),
        (72, "soixante-douze"),
        (80, "quatre-vingts"),
        (81, "quatre-vingt-un"),
        (90, "quatre-vingt-dix"),
        (91, "quatre-vingt-onze"),
        (99, "quatre-vingt-dix-neuf"),
        (100, "cent"),
        (101, "cent un"),
        (180, "cent quatre-vingts"),
        (200, "deux cents"),
        (201, "deux cent un"),
        (1000, "mille"),
        (1001, "mille un"),
        (2000, "deux mille"),
        (80_000, "quatre-vingt mille"),
        (200_000, "deux cent mille"),
        (201_080, "deux cent un mille quatre-vingts"),
        (1_000_000, "un million"),
        (80_000_000, "quatre-vingts millions"),
        (2_000_000_000, "deux milliards"),
    ],
)
def test_in_words(number: int, words: str) -> None:
    assert french.in_words(number) == words


def test_feminine_agrees_with_a_final_un() -> None:
    assert french.in_words(1, feminine=True) == "une"
    assert french.in_words(21, feminine=True) == "vingt et une"
    assert french.in_words(81, feminine=True) == "quatre-vingt-une"
    assert french.in_words(2, feminine=True) == "deux"


@pytest.mark.parametrize("bad", [-1, french.MAX + 1, True, 1.5])
def test_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        french.in_words(bad)  # type: ignore[arg-type]


def test_numbers_in_text() -> None:
    assert (
        french.spell_numbers("1 gélule matin et soir (toutes les 12 h), 21 gélules, 2,5 mg")
        == "une gélule matin et soir (toutes les douze heures), vingt et une gélules, "
        "deux virgule cinq milligrammes"
    )
    assert french.spell_numbers("0,05 mg ; 1 mg ; 1 comprimé") == (
        "zéro virgule zéro cinq milligramme ; un milligramme ; un comprimé"
    )
    assert french.spell_numbers("sans chiffre") == "sans chiffre"


def test_quantity_and_dosage() -> None:
    assert french.quantity_words(1, "boîte de 14 gélules") == "une boîte de quatorze gélules"
    assert french.quantity_words(2, "flacon de 125 ml") == (
        "deux flacons de cent vingt-cinq millilitres"
    )
    assert french.quantity_words(3, None) == "trois unités"
    assert french.dosage_words("MORPHINE (SULFATE) 30 mg, gélule") == "trente milligrammes"
    assert french.dosage_words("FENTANYL 12 µg/h, dispositif transdermique") == (
        "douze microgrammes par heure"
    )
    assert french.dosage_words("OXYCODONE 5 mg/5 ml") == ("cinq milligrammes par cinq millilitres")
    assert french.dosage_words("MÉTHADONE, sirop") is None
