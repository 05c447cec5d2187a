"""The RX1 QR payload codec: round trips, golden vectors, one asset per bad input, bounds."""

from __future__ import annotations

import datetime as dt
import json
import re
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean, luhn
from stdnum.fr import nir
from stdnum.iso7064 import mod_37_2

from eprescrire import ids, jws, model, qr, rules, signing
from eprescrire.errors import ExitCode, Reason, VerificationError
from eprescrire.keys import Credentials
from eprescrire.trust import TrustStore

VECTORS = Path(__file__).resolve().parent / "assets" / "qr"
GOLDEN = json.loads((VECTORS / "golden.json").read_text())
CASES: dict[str, dict[str, str]] = json.loads((VECTORS / "cases.json").read_text())
QR_ALPHANUMERIC = re.compile(r"^[0-9A-Z $%*+\-./:]*$")
AT = dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC)


def case_text(name: str) -> str:
    return (VECTORS / f"{name}.txt").read_text(encoding="utf-8")


def reason_of(text: str, store: TrustStore) -> Reason:
    """The first reason a pharmacist would be given for this QR text."""
    try:
        token = qr.decode(text)
    except VerificationError as e:
        assert e.reason is not None
        return e.reason
    verdict = signing.verify_token("qr", token, store, AT)
    assert verdict.reasons, "an altered code must not verify"
    return verdict.reasons[0].code


# --------------------------------------------------------------------------------------------
# Base45


def test_base45_rfc9285_examples() -> None:
    assert qr.base45_encode(b"AB") == "BB8"
    assert qr.base45_encode(b"Hello!!") == "%69 VD92EX0"
    assert qr.base45_encode(b"base-45") == "UJCLQE7W581"
    assert qr.base45_decode("QED8WEX0") == b"ietf!"
    assert qr.base45_encode(b"") == "" and qr.base45_decode("") == b""


@given(st.binary(max_size=200))
def test_base45_round_trip(data: bytes) -> None:
    text = qr.base45_encode(data)
    assert QR_ALPHANUMERIC.match(text)
    assert qr.base45_decode(text) == data
    # The last character is never a space, so stripping a scanner's whitespace loses nothing.
    assert not text.endswith(" ")


@pytest.mark.parametrize("text", ["GGW", "A", "ABCD", "ab", "A€", ":::"])
def test_base45_refuses_invalid_text(text: str) -> None:
    with pytest.raises(ValueError):
        qr.base45_decode(text)


# --------------------------------------------------------------------------------------------
# Golden vector and the reference prescription


def golden_document() -> signing.SignedDocument:
    return signing.load_document((VECTORS / "golden-rx.json").read_bytes())


def test_golden_vector_decodes_to_the_exact_jws() -> None:
    assert qr.decode(GOLDEN["qr"]) == GOLDEN["jws"]
    assert golden_document().token == GOLDEN["jws"]


def test_golden_vector_encodes_back() -> None:
    text = qr.encode(golden_document())
    assert qr.decode(text) == GOLDEN["jws"]
    if GOLDEN["zlib"] == zlib.ZLIB_RUNTIME_VERSION:  # DEFLATE output may differ across zlibs
        assert text == GOLDEN["qr"]


def test_golden_vector_verifies(demo_trust: TrustStore) -> None:
    verdict = signing.verify_token("qr", qr.decode(GOLDEN["qr"] + "\r\n"), demo_trust, AT)
    assert verdict.status == "valid", verdict.to_json()
    assert verdict.prescription == golden_document().prescription


def test_rebuilt_jws_verifies_with_joserfc(demo_credentials: Credentials) -> None:
    from joserfc import jws as jose
    from joserfc.jwk import ECKey

    public_key = ECKey.import_key(demo_credentials.certificate.public_key())
    token = qr.decode(GOLDEN["qr"])
    result = jose.deserialize_compact(token, public_key, algorithms=["ES256"])
    assert result.protected == {"alg": "ES256", "kid": jws.parse(token).kid}
    assert result.payload == model.signed_bytes(golden_document().prescription)


def test_fresh_reference_prescription(issue_document: Any, demo_trust: TrustStore) -> None:
    document = issue_document()
    text = qr.encode(document)
    assert text.startswith("RX1:") and QR_ALPHANUMERIC.match(text)
    assert qr.decode(text) == document.token
    code = segno.make(text, error="m", micro=False, boost_error=False)
    assert code.mode == "alphanumeric"
    assert code.version <= 16  # the product's size target; measured in bench/qr_size.py
    verdict = signing.verify_token(
        "qr", qr.decode(text), demo_trust, document.prescription.issued_at
    )
    assert verdict.status == "valid"


def test_every_example_round_trips(issue_document: Any) -> None:
    from conftest import EXAMPLE_FILES

    for path in EXAMPLE_FILES:
        document = issue_document(path.name)
        assert qr.decode(qr.encode(document)) == document.token, path.name


@pytest.mark.parametrize("noise", ["\n", "\r\n", " ", "\t\r\n", "  \n"])
def test_scanner_whitespace_is_tolerated(noise: str) -> None:
    assert qr.decode(noise + GOLDEN["qr"] + noise) == GOLDEN["jws"]


def test_preset_dictionary_is_pinned() -> None:
    data = qr.preset_dictionary()
    assert data.endswith(b"\x00") and "\x00Médecine générale\x00".encode() in data
    assert len(data) <= 32 * 1024  # DEFLATE's window: a longer dictionary would be cut


# --------------------------------------------------------------------------------------------
# One asset per bad input


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_case(name: str, demo_trust: TrustStore) -> None:
    expected = Reason(CASES[name]["reason"])
    assert reason_of(case_text(name), demo_trust) == expected, CASES[name]["what"]


def test_exit_codes_follow_the_reason() -> None:
    for name, exit_code in [
        ("foreign-url", ExitCode.UNREADABLE),
        ("truncated-deflate", ExitCode.REJECTED),
    ]:
        with pytest.raises(VerificationError) as raised:
            qr.decode(case_text(name))
        assert raised.value.exit_code == exit_code


def test_inflate_bomb_in_a_qr_code_is_refused_in_bounded_memory() -> None:
    text = case_text("inflate-bomb")
    assert len(text.strip()) <= qr.MAX_TEXT_LENGTH  # it fits in a real QR code
    tracemalloc.start()
    try:
        with pytest.raises(VerificationError) as raised:
            qr.decode(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.reason is Reason.MALFORMED
    assert "64 KiB" in str(raised.value)
    assert peak < 1 << 20  # the bomb inflates to 2 MiB; at most 64 KiB + 1 is ever produced


def test_hundred_megabyte_bomb_is_capped_by_the_inflater() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    stream = b"".join(compressor.compress(chunk) for _ in range(100)) + compressor.flush()
    tracemalloc.start()
    try:
        with pytest.raises(VerificationError) as raised:
            qr._inflate(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.reason is Reason.MALFORMED
    assert peak < 1 << 20
    # Through the public entry point it never gets that far: no QR code holds 100 KiB.
    head = qr.base45_decode(GOLDEN["qr"][4:])[:72] + b"\x00"
    with pytest.raises(VerificationError) as raised:
        qr.decode(qr.PREFIX + qr.base45_encode(head + stream))
    assert raised.value.reason is Reason.MALFORMED


def test_inflate_limit_is_exact() -> None:
    def stream(size: int) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(bytes(size)) + compressor.flush()

    assert len(qr._inflate(stream(qr.MAX_INFLATED))) == qr.MAX_INFLATED
    with pytest.raises(VerificationError):
        qr._inflate(stream(qr.MAX_INFLATED + 1))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=4), replacement=st.sampled_from(qr._BASE45))
def test_any_altered_character_is_rejected(
    position: int, replacement: str, demo_trust: TrustStore
) -> None:
    text = GOLDEN["qr"]
    position %= len(text)
    position = max(position, 4)
    altered = text[:position] + replacement + text[position + 1 :]
    if altered == text:
        return
    assert reason_of(altered, demo_trust) in {
        Reason.MALFORMED,
        Reason.SIGNATURE_INVALID,
        Reason.UNKNOWN_SIGNER,  # a changed kid names no known certificate
    }


@given(st.binary(max_size=600))
def test_decode_only_raises_verification_errors(data: bytes) -> None:
    head = qr.base45_decode(GOLDEN["qr"][4:])[:72]
    for frame in (data, head + data):
        with pytest.raises(VerificationError) as raised:
            qr.decode(qr.PREFIX + qr.base45_encode(frame))
        assert raised.value.reason is Reason.MALFORMED


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=1 << 900),
    st.lists(st.text(alphabet="ab é\n", max_size=4), max_size=60),
)
def test_decode_of_well_framed_garbage_never_crashes(number: int, fields: list[str]) -> None:
    """A frame that passes Base45, framing and inflation but carries nonsense: a verdict, never
    a traceback (and never a JWS that was not rebuilt from a whole prescription)."""
    numbers = number.to_bytes((number.bit_length() + 7) // 8, "big")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=qr.preset_dictionary())
    text_section = b"".join(f.encode() + b"\x00" for f in fields)
    stream = compressor.compress(text_section) + compressor.flush()
    frame = bytes(72) + qr._varint(len(numbers)) + numbers + stream
    try:
        token = qr.decode(qr.PREFIX + qr.base45_encode(frame))
    except VerificationError as e:
        assert e.reason is Reason.MALFORMED
    else:
        assert jws.parse(token).signature == bytes(64)


# --------------------------------------------------------------------------------------------
# Round trips over generated prescriptions


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


# What the input rules accept: no control, format (bidi, zero-width) or separator character;
# a line break only in the notes.
_TEXT = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"), max_codepoint=0x1F600
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: s == s.strip() and s != "")
_NOTES = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"),
        include_characters="\n",
        max_codepoint=0x1F600,
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: s == s.strip() and s != "")


@st.composite
def _finess(draw: Any) -> str:
    prefix = draw(st.sampled_from(["2A", "2B", None]))
    if prefix is None:
        body = draw(_digits(8))
        return body + luhn.calc_check_digit(body)
    middle = draw(_digits(6))
    return prefix + middle + luhn.calc_check_digit("20" + middle)


@st.composite
def _phone(draw: Any) -> str:
    digits = draw(_digits(9))
    return draw(
        st.sampled_from(
            [
                "0" + digits[0] + "".join(" " + digits[i : i + 2] for i in range(1, 9, 2)),
                "0" + digits,
                "+33 " + digits[0] + " " + digits[1:5] + " " + digits[5:],
                "(0)" + digits[:7],
            ]
        )
    )


@st.composite
def _line(draw: Any) -> dict[str, Any]:
    narcotic = draw(st.booleans())
    duration = draw(st.integers(1, 28 if narcotic else 365))
    renewals = 0 if narcotic else draw(st.integers(0, min(11, 365 // duration - 1)))
    line: dict[str, Any] = {
        "label": draw(_TEXT),
        "posology": draw(_TEXT),
        "duration_days": duration,
        "quantity": draw(st.integers(1, 999)),
        "renewals": renewals,
        "narcotic": narcotic,
        "ald": draw(st.booleans()),
    }
    reason = draw(st.sampled_from([None, "MTE", "EFG", "CIF"]))
    if reason is not None:
        line["substitutable"] = False
        line["ns_reason"] = reason
    if draw(st.booleans()):
        line["unit"] = draw(_TEXT.filter(lambda s: len(s) <= 40))
    if draw(st.booleans()):
        body = "3400" + draw(_digits(8))
        line["cip13"] = body + ean.calc_check_digit(body)
    if draw(st.booleans()):
        line["cis"] = draw(_digits(8))
    pack_months = draw(st.sampled_from([None, None, 2, 3]))
    if pack_months is not None:
        line["pack_months"] = pack_months
    if draw(st.booleans()):
        line["contraceptive"] = True
    units_per_box = draw(st.sampled_from([None, None, None, 1, 14, 999]))
    if units_per_box is not None:
        line["units_per_box"] = units_per_box
    if draw(st.booleans()):
        cap = rules.legal_days_at_once(pack_months, line.get("contraceptive", False))
        line["days_per_dispensing"] = draw(st.integers(1, min(duration, cap)))
    return line


@st.composite
def prescriptions(draw: Any) -> model.Prescription:
    now = draw(
        st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31))
    ).replace(tzinfo=dt.UTC)
    birth = draw(
        st.dates(min_value=dt.date(1890, 1, 1), max_value=now.date() - dt.timedelta(days=1))
    )
    sex = draw(st.sampled_from([None, "F", "M"]))
    patient: dict[str, Any] = {
        "family_name": draw(_TEXT),
        "given_name": draw(_TEXT),
        "birth_date": birth.isoformat(),
    }
    if sex is not None:
        patient["sex"] = sex
    if draw(st.booleans()):
        first = {"F": "2", "M": "1", None: draw(st.sampled_from("12"))}[sex]
        department = draw(st.sampled_from(["2A", "2B", "75", "13", "99"]))
        body = f"{first}{birth.year % 100:02d}{birth.month:02d}{department}" + draw(_digits(6))
        patient["ins"] = body + nir.calc_check_digits(body)
    if draw(st.booleans()):
        patient["weight_kg"] = draw(
            st.one_of(st.integers(1, 400), st.integers(30, 40000).map(lambda c: c / 100))
        )
    facility: dict[str, Any] = {"name": draw(_TEXT), "address": draw(_TEXT)}
    if draw(st.booleans()):
        facility["finess"] = draw(_finess())
    if draw(st.booleans()):
        facility["phone"] = draw(_phone())
    rpps = draw(_digits(10))
    data: dict[str, Any] = {
        "prescriber": {
            "name": draw(_TEXT),
            "rpps": rpps + luhn.calc_check_digit(rpps),
            "specialty": draw(_TEXT),
            "facility": facility,
        },
        "patient": patient,
        "lines": draw(st.lists(_line(), min_size=1, max_size=4)),
        "share_opposition": draw(st.booleans()),
    }
    if draw(st.booleans()):
        data["notes"] = draw(_NOTES)
    if rules.add_months(birth, 72) <= rules.local_date(now):  # NS EFG: a child under 6 only
        for line in data["lines"]:
            if line.get("ns_reason") == "EFG":
                line["ns_reason"] = "MTE"
    # Both identifier forms: the current one and the older one (base-36, MOD 37-2).
    if draw(st.booleans()):
        body = draw(st.text(alphabet=ids.LEGACY_ALPHABET, min_size=15, max_size=15))
        pid = ids.PrescriptionId(body + mod_37_2.calc_check_digit(body))
    else:
        body = draw(st.text(alphabet=ids.ALPHABET, min_size=14, max_size=14))
        pid = ids.PrescriptionId(body + ids.check_character(body))
    return model.from_input(data, now=now, prescription_id=pid)


@settings(max_examples=200, deadline=None)
@given(prescriptions(), st.binary(min_size=8, max_size=8), st.binary(min_size=64, max_size=64))
def test_round_trip_rebuilds_the_exact_jws(
    prescription: model.Prescription, kid: bytes, signature: bytes
) -> None:
    kid_text = jws.b64url_encode(kid)
    text = qr.encode_parts(prescription, kid_text, signature)
    assert text.startswith(qr.PREFIX) and QR_ALPHANUMERIC.match(text)
    token = qr.decode(text + "\n")
    assert token == jws.assemble(kid_text, model.signed_bytes(prescription), signature)
    parsed = jws.parse(token)
    assert model.from_payload(json.loads(parsed.payload)) == prescription


# --------------------------------------------------------------------------------------------
# What cannot be carried is refused at encoding, never printed


def _reference() -> model.Prescription:
    return golden_document().prescription


@pytest.mark.parametrize(
    "change",
    [
        lambda p: {"notes": "a\x00b"},
        lambda p: {"lines": (model.Line("X", "Y", 30, 1, renewals=12),)},
        lambda p: {"lines": (model.Line("X", "Y", 30, 1000),)},
        lambda p: {"lines": (model.Line("X", "Y", 30, 1, substitutable=False),)},
        lambda p: {"patient": model.Patient("A", "B", dt.date(1980, 1, 1), weight_kg=16.0)},
        lambda p: {"patient": model.Patient("A", "B", p.issued_at.date() + dt.timedelta(days=9))},
        lambda p: {"id": "7K3Q9ZP2M4XD8RTA"},
        lambda p: {"version": 2},
    ],
    ids=[
        "nul",
        "renewals",
        "quantity",
        "ns-reason",
        "weight-float",
        "birth-after",
        "id",
        "version",
    ],
)
def test_unrepresentable_prescriptions_are_refused(change: Any) -> None:
    import dataclasses

    prescription = _reference()
    altered = dataclasses.replace(prescription, **change(prescription))
    with pytest.raises(ValueError, match="cannot carry"):
        qr.encode_parts(altered, "JS0wWpJ4KJU", bytes(64))


def test_encode_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        qr.encode_parts(_reference(), "JS0wWpJ4KJU", bytes(63))
    with pytest.raises(ValueError):
        qr.encode_parts(_reference(), "JS0w", bytes(64))


def test_too_large_for_any_qr_code_is_refused() -> None:
    import dataclasses
    import random

    rng = random.Random(7)
    lines = tuple(
        model.Line("".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=200)), "x" * 10, 30, 1)
        for _ in range(40)
    )
    prescription = dataclasses.replace(_reference(), lines=lines)
    with pytest.raises(ValueError, match="too large for a QR code"):
        qr.encode_parts(prescription, "JS0wWpJ4KJU", bytes(64))


def test_flipping_any_bit_of_the_last_byte_is_refused(issue_document) -> None:
    """DEFLATE ignores the padding bits of its last byte; the decoder must not."""
    from eprescrire import qr
    from eprescrire.errors import VerificationError

    for name in ("reference.toml", "antibiotic.toml", "narcotic.toml"):
        document = issue_document(name)
        text = qr.encode(document)
        frame = bytearray(qr.base45_decode(text[len(qr.PREFIX) :]))
        for bit in range(8):
            altered = bytearray(frame)
            altered[-1] ^= 1 << bit
            try:
                token = qr.decode(qr.PREFIX + qr.base45_encode(bytes(altered)))
            except VerificationError:
                continue
            assert token != document.token
