"""Identifiers: unguessable, safe on paper and in a shell; the check character catches typing
errors; identifiers of the older form keep verifying."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from eprescrire import ids

SHELL_SPECIAL = set("*?[]~$=!&|;<>()`'\"\\#{} \t\n%^")
# An identifier of the older form (base-36 + MOD 37-2), issued before: it must keep working.
LEGACY = "7K3Q9ZP2M4XD8RT"
LEGACY_ID = LEGACY + mod_37_2.calc_check_digit(LEGACY)


def test_new_ids_are_valid_unique_printable_and_shell_safe() -> None:
    values = {ids.new_id() for _ in range(2000)}
    assert len(values) == 2000
    for value in values:
        assert len(value) == 15 and ids.is_canonical(value)
        assert not set(value) & (SHELL_SPECIAL | set("ILOU"))
        assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){2}", ids.grouped(value))
        assert ids.parse(ids.grouped(value)) == value


def test_typed_input_forgives_case_separators_and_confusions() -> None:
    value = ids.new_id()
    body = value.replace("0", "O").replace("1", "l")
    typed = " " + "-".join(body[i : i + 3] for i in range(0, 15, 3)).lower() + " "
    assert ids.parse(typed) == value
    assert ids.parse(value.replace("1", "I")) == value


@settings(max_examples=300)
@given(st.data())
def test_single_substitution_is_detected(data: st.DataObject) -> None:
    value = ids.new_id()
    position = data.draw(st.integers(0, 14))
    replacement = data.draw(st.sampled_from(ids.ALPHABET))
    changed = value[:position] + replacement + value[position + 1 :]
    assert ids.is_valid(changed) == (changed == value)


def test_every_transposition_and_twin_error_is_detected() -> None:
    for _ in range(200):
        value = ids.new_id()
        for i in range(15):
            for j in range(i + 1, 15):
                chars = list(value)
                chars[i], chars[j] = chars[j], chars[i]
                swapped = "".join(chars)
                if swapped != value:
                    assert not ids.is_valid(swapped)
            if i < 14 and value[i] == value[i + 1]:
                other = "X" if value[i] != "X" else "Y"
                assert not ids.is_valid(value[:i] + other * 2 + value[i + 2 :])


def test_older_identifiers_still_parse_group_and_round_trip() -> None:
    assert ids.parse(LEGACY_ID.lower()) == LEGACY_ID
    assert ids.grouped(LEGACY_ID) == "-".join(LEGACY_ID[i : i + 4] for i in range(0, 16, 4))
    assert ids.is_canonical(LEGACY_ID) and ids.is_legacy(LEGACY_ID)
    star = next(
        body + "*" for n in range(10_000) if mod_37_2.calc_check_digit(body := f"{n:015d}") == "*"
    )
    assert ids.parse(star) == star and ids.file_stem(star) == star[:-1] + "_"
    number, legacy = ids.to_number(LEGACY_ID)
    assert legacy and ids.from_number(number, legacy=True) == LEGACY_ID
    wrong = LEGACY_ID[:-1] + ("0" if LEGACY_ID[-1] != "0" else "1")
    with pytest.raises(ValueError, match="check character"):
        ids.parse(wrong)


def test_number_round_trip_of_new_ids() -> None:
    for _ in range(200):
        value = ids.new_id()
        number, legacy = ids.to_number(value)
        assert not legacy and ids.from_number(number, legacy=False) == value
        assert ids.file_stem(value) == value


def test_parse_explains_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="15 characters"):
        ids.parse("ABC")
    value = ids.new_id()
    wrong = value[:-1] + ("0" if value[-1] != "0" else "2")
    with pytest.raises(ValueError, match="check character"):
        ids.parse(wrong)
    with pytest.raises(ValueError, match="never contains 'U'"):
        ids.parse("U" + value[1:])
    assert not ids.is_canonical(value.lower()) and ids.is_valid(value.lower())


def test_both_forms_travel_in_the_qr_code(demo_credentials, demo_trust) -> None:  # type: ignore[no-untyped-def]
    """A code of the current form carries its form digit; codes printed before (older form,
    such as the golden vector) decode and encode byte for byte as they did."""
    import datetime as dt
    import json

    from conftest import ASSETS, load_example
    from eprescrire import model, qr, signing

    golden = json.loads((ASSETS / "qr" / "golden.json").read_text())
    old = signing.load_document((ASSETS / "qr" / "golden-rx.json").read_bytes())
    assert ids.is_legacy(old.prescription.id)
    assert qr.decode(golden["qr"]) == old.token and qr.encode(old) == golden["qr"]
    now = dt.datetime.now(dt.UTC)
    for pid in (ids.new_id(), ids.PrescriptionId(LEGACY_ID)):
        prescription = model.from_input(load_example(), now=now, prescription_id=pid)
        document = signing.sign(prescription, demo_credentials)
        assert qr.decode(qr.encode(document)) == document.token
        verdict = signing.verify_token("qr", qr.decode(qr.encode(document)), demo_trust, now)
        assert verdict.status == "valid" and verdict.id == pid


def test_file_names_from_an_older_identifier_hold_no_shell_character(  # type: ignore[no-untyped-def]
    demo_credentials, run_cli, cli_env, tmp_path
) -> None:
    import datetime as dt

    from conftest import load_example
    from eprescrire import model, signing

    star = next(
        body + "*"
        for n in range(10_000)
        if mod_37_2.calc_check_digit(body := f"7K3Q9ZP2M{n:06d}") == "*"
    )
    now = dt.datetime.now(dt.UTC)
    prescription = model.from_input(
        load_example(), now=now, prescription_id=ids.PrescriptionId(star)
    )
    rx = tmp_path / "rx.json"
    rx.write_bytes(signing.sign(prescription, demo_credentials).to_json_bytes())
    result = run_cli("render", rx, "--out-dir", tmp_path / "pdf")
    assert result.code == 0, result.stderr
    [pdf] = (tmp_path / "pdf").iterdir()
    assert pdf.name == star[:-1] + "_.pdf" and not set(pdf.name) & SHELL_SPECIAL
