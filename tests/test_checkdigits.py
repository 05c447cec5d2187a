"""The check characters computed without stdnum agree with stdnum, value for value; what is not
plain ASCII is still stdnum's to judge; verifying a code never imports stdnum."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import ean, luhn
from stdnum.fr import nir
from stdnum.iso7064 import mod_37_2

from conftest import KEYS
from eprescrire import checkdigits, ids, model, qr, signing

DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=20)


@settings(max_examples=500)
@given(DIGITS)
def test_luhn_agrees_with_stdnum(body: str) -> None:
    assert checkdigits.luhn_checksum(body) == luhn.checksum(body)
    assert checkdigits.luhn_digit(body) == luhn.calc_check_digit(body)


@settings(max_examples=500)
@given(DIGITS)
def test_ean_agrees_with_stdnum(body: str) -> None:
    assert checkdigits.ean_digit(body) == ean.calc_check_digit(body)


@settings(max_examples=500)
@given(
    st.text(alphabet="0123456789", min_size=5, max_size=5),
    st.sampled_from(["2A", "2B", *(f"{n:02d}" for n in range(100))]),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
)
def test_nir_key_agrees_with_stdnum(head: str, department: str, tail: str) -> None:
    body = head + department + tail
    assert checkdigits.nir_key(body) == nir.calc_check_digits(body)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=16))
def test_mod37_2_agrees_with_stdnum(body: str) -> None:
    assert checkdigits.mod37_2_checksum(body) == mod_37_2.checksum(body)
    assert checkdigits.mod37_2_digit(body) == mod_37_2.calc_check_digit(body)


def test_non_ascii_digits_are_refused_by_the_arithmetic() -> None:
    for call in (checkdigits.luhn_checksum, checkdigits.ean_digit, checkdigits.nir_key):
        with pytest.raises(ValueError):
            call("１２３４５６７８９０１２３")  # full-width
    with pytest.raises(ValueError):
        checkdigits.luhn_checksum("")
    with pytest.raises(ValueError):
        checkdigits.mod37_2_checksum("abc")


@settings(max_examples=500)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_rpps_check_agrees_with_stdnum(value: str) -> None:
    ours = _outcome(ids.check_rpps, value)
    assert ours == ("ok" if luhn.is_valid(value) else "InvalidChecksum")


@settings(max_examples=500)
@given(st.sampled_from(["", "2A", "2B"]), st.text(alphabet="0123456789", min_size=7, max_size=9))
def test_finess_check_agrees_with_stdnum(prefix: str, digits: str) -> None:
    value = (prefix + digits)[:9]
    expected = "InvalidFormat"
    if len(value) == 9:
        as_luhn = value[:2].replace("2A", "20").replace("2B", "20") + value[2:]
        expected = "ok" if luhn.is_valid(as_luhn) else "InvalidChecksum"
    assert _outcome(ids.check_finess, value) == expected


@settings(max_examples=500)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_cip13_rule_agrees_with_stdnum(digits: str) -> None:
    value = "3400" + digits[:8]  # a right key for half of them, any digit for the others
    value += ean.calc_check_digit(value) if digits[0] < "5" else digits[8]
    assert _valid(model._cip13, value) == _valid(ean.validate, value)


@settings(max_examples=500)
@given(
    st.sampled_from("12"),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.sampled_from(["2A", "2B", "75", "13"]),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)
def test_ins_rule_agrees_with_stdnum(sex: str, birth: str, department: str, tail: str) -> None:
    body = sex + birth + department + tail[:6]
    value = body + (nir.calc_check_digits(body) if tail[6] < "5" else tail[6:])
    assert _valid(model._ins, value) == _valid(nir.validate, value)


def test_other_digits_are_judged_by_stdnum_as_before() -> None:
    # Full-width digits: stdnum reads them as digits for an EAN or a NIR, not for Luhn.
    cip = "3400" + "９３００７６５１"
    cip += ean.calc_check_digit("340093007651")  # the ASCII reading of those digits
    assert _valid(model._cip13, cip) and _valid(ean.validate, cip)
    assert _outcome(ids.check_rpps, "１０００３４５６７８６") == "InvalidFormat"
    ins = "2560375" + "１１５" + "１２３"
    ascii_ins = "2560375115123"
    ins += nir.calc_check_digits(ascii_ins)
    assert _valid(model._ins, ins) and _valid(nir.validate, ins)


def test_verifying_a_code_does_not_import_stdnum(
    issue_document: Callable[..., signing.SignedDocument],
) -> None:
    """stdnum's package imports pydoc and ssl: more than a whole verification costs."""
    code = (
        "import sys, datetime as dt\n"
        "from pathlib import Path\n"
        "from eprescrire import verifying\n"
        "from eprescrire.trust import TrustStore\n"
        "verdict = verifying.verify_text('x', sys.argv[1], TrustStore.open(Path(sys.argv[2])),"
        " dt.datetime.now(dt.UTC))\n"
        "assert verdict.status == 'valid', verdict.to_json()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'stdnum'))\n"
    )
    text = qr.encode(issue_document())
    out = subprocess.run(
        [sys.executable, "-c", code, text, str(KEYS / "demo-trust")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


def _outcome(check: Callable[[str], object], value: str) -> str:
    """ "ok", or the kind of refusal: stdnum's exception class, "invalid" for ours."""
    try:
        check(value)
    except ValueError as e:
        return type(e).__name__ if type(e).__module__.startswith("stdnum") else "invalid"
    return "ok"


def _valid(check: Callable[[str], object], value: str) -> bool:
    return _outcome(check, value) == "ok"
