"""Identifiers: unguessable, check character (ISO 7064 MOD 37-2) catches typing errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eprescrire import ids


def test_new_ids_are_valid_unique_and_printable() -> None:
    values = {ids.new_id() for _ in range(2000)}
    assert len(values) == 2000
    for value in list(values)[:50]:
        assert ids.is_valid(value) and len(value) == 16
        assert ids.parse(ids.grouped(value)) == value
        assert ids.grouped(value).count("-") == 3


@settings(max_examples=300)
@given(st.data())
def test_single_substitution_is_detected(data: st.DataObject) -> None:
    value = ids.new_id()
    position = data.draw(st.integers(0, 15))
    replacement = data.draw(st.sampled_from(ids.ALPHABET + "*"))
    changed = value[:position] + replacement + value[position + 1 :]
    assert ids.is_valid(changed) == (changed == value)


def test_adjacent_transposition_is_detected() -> None:
    for _ in range(200):
        value = ids.new_id()
        for i in range(15):
            swapped = value[:i] + value[i + 1] + value[i] + value[i + 2 :]
            if swapped != value:
                assert not ids.is_valid(swapped)


def test_parse_explains_what_is_wrong() -> None:
    import pytest

    with pytest.raises(ValueError, match="16 characters"):
        ids.parse("ABC")
    value = ids.new_id()
    wrong = value[:-1] + ("0" if value[-1] != "0" else "1")
    with pytest.raises(ValueError, match="check character"):
        ids.parse(wrong)
    assert ids.parse(ids.grouped(value).lower()) == value
