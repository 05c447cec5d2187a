"""The short way of verifying a QR code's content is the long way, proved.

A code's prescription is rebuilt by the QR decoder and its signed bytes computed from it;
:func:`model.as_signed` stands for ``from_payload(canonical.loads(signed_bytes(p)))`` and its
canonical comparison. It may answer False for a valid prescription (the long way then decides),
never True for one that way would refuse or change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE_FILES, KEYS, load_example
from eprescrire import canonical, inputs, jws, model, qr, signing, verifying
from eprescrire.errors import ValidationError
from eprescrire.keys import kid_of
from eprescrire.trust import TrustStore

AT = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
ISSUED = dt.datetime(2026, 11, 25, 17, 30, tzinfo=dt.UTC)


def _reference() -> model.Prescription:
    return model.from_input(load_example(), now=ISSUED)


def _long_way(p: model.Prescription) -> model.Prescription | None:
    """What verify_token does with the signed bytes: None when it refuses them."""
    data = model.signed_bytes(p)
    try:
        rebuilt = model.from_payload(canonical.loads(data))
    except (canonical.StrictJSONError, ValidationError):
        return None
    return rebuilt if model.signed_bytes(rebuilt) == data else None


def _texts(max_length: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "Texte",
                "x" * max_length,
                "x" * (max_length + 1),
                "",
                " avant",
                "après ",
                "tab\tulation",
                "ligne\nsuivante",
                "nul\x00",
                "\u2028séparateur",
                "espace\u00a0insécable",
                "\u00a0",
            ]
        ),
        st.text(max_size=6),
    )


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


_WHOLE = st.one_of(st.integers(-2, 1000), st.booleans(), st.sampled_from([1.0, 30.0, "30"]))
_BIRTHS = [
    dt.date(1956, 3, 14),
    dt.date(1956, 4, 14),
    dt.date(1889, 12, 31),
    dt.date(1890, 1, 1),
    dt.date(2024, 3, 14),
    dt.datetime(1956, 3, 14),
    "1956-03-14",
]
_ISSUED = [
    ISSUED,
    ISSUED.replace(microsecond=5),
    ISSUED.replace(tzinfo=None),
    ISSUED.astimezone(dt.timezone(dt.timedelta(hours=1))),
    dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
]
#: Every field of the model, with values a decoder could rebuild: valid, edge or wrong.
_TOP: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["", "3JSV6X2ZKSWRKQS", "3jsv6x2zkswrkqs", "3JSV6X2ZKSWRKQ"]),
    "issued_at": st.sampled_from(_ISSUED),
    "notes": _optional(_texts(1000)),
    "share_opposition": st.sampled_from([False, True, 0]),
    "version": st.sampled_from([1, True, 2, 1.0]),
}
_PRESCRIBER: dict[str, st.SearchStrategy[Any]] = {
    "name": _texts(100),
    "rpps": st.sampled_from(["10003456786", "10003456787", "1000345678", "١0003456786"]),
    "specialty": _texts(100),
}
_FACILITY: dict[str, st.SearchStrategy[Any]] = {
    "name": _texts(200),
    "address": _texts(300),
    "finess": st.sampled_from([None, "750001232", "750001233", "2A0000014", "75000123"]),
    "phone": st.sampled_from([None, "01 43 55 12 34", "0143551234", "+33 1 43", "12", "tél"]),
}
_PATIENT: dict[str, st.SearchStrategy[Any]] = {
    "family_name": _texts(100),
    "given_name": _texts(100),
    "birth_date": st.sampled_from(_BIRTHS),
    "sex": st.sampled_from([None, "F", "M", "X", ""]),
    "ins": st.sampled_from([None, "256037511234510", "156037511234510", "256037511234511", ""]),
    "weight_kg": st.sampled_from(
        [None, 70, 70.0, 70.5, 0.3, 0.29, 400, 400.01, 12.345, True, float("nan"), "70"]
    ),
}
_LINE: dict[str, st.SearchStrategy[Any]] = {
    "label": _texts(200),
    "posology": _texts(500),
    "duration_days": st.one_of(st.sampled_from([1, 7, 28, 29, 30, 365, 366]), _WHOLE),
    "quantity": st.one_of(st.sampled_from([1, 2, 999, 1000]), _WHOLE),
    "unit": _optional(_texts(40)),
    "renewals": st.one_of(st.sampled_from([0, 1, 11, 12]), _WHOLE),
    "substitutable": st.sampled_from([True, False, 1, None]),
    "ns_reason": st.sampled_from([None, "MTE", "EFG", "CIF", "XYZ", ""]),
    "ald": st.sampled_from([False, True, 0]),
    "narcotic": st.sampled_from([False, True, 1]),
    "cip13": st.sampled_from(
        [None, "3400936501935", "3400936501936", "3500936501935", "340093650193", ""]
    ),
    "cis": st.sampled_from([None, "60234100", "6023410", "6023410a", " 60234100"]),
    "days_per_dispensing": _optional(st.one_of(st.sampled_from([1, 28, 30, 31]), _WHOLE)),
    "pack_months": st.sampled_from([None, 2, 3, 1, 4, True, 2.0]),
    "contraceptive": st.sampled_from([False, True, 0, None]),
    "units_per_box": _optional(st.one_of(st.sampled_from([1, 30, 999, 1000]), _WHOLE)),
}
_EXAMPLES = [model.from_input(inputs.read_input(path), now=ISSUED) for path in EXAMPLE_FILES]


def _changed(draw: st.DrawFn, value: Any, fields: dict[str, st.SearchStrategy[Any]]) -> Any:
    """``value`` with none, one or a few of its fields given another value."""
    names = draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True))
    return dataclasses.replace(value, **{name: draw(fields[name]) for name in names})


@st.composite
def _prescriptions(draw: st.DrawFn) -> model.Prescription:
    """The examples, a few fields at a time replaced by an edge or a wrong value or type."""
    p = draw(st.sampled_from(_EXAMPLES))
    facility = _changed(draw, p.prescriber.facility, _FACILITY)
    prescriber = _changed(draw, p.prescriber, _PRESCRIBER)
    lines: Any = [_changed(draw, line, _LINE) for line in p.lines]
    lines = draw(st.sampled_from([tuple(lines), tuple(lines[:1]), (), lines, tuple(lines * 14)]))
    return dataclasses.replace(
        _changed(draw, p, _TOP),
        prescriber=dataclasses.replace(prescriber, facility=facility),
        patient=_changed(draw, p.patient, _PATIENT),
        lines=lines,
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_prescriptions())
@example(_reference())
def test_as_signed_never_stands_for_a_refused_or_changed_prescription(
    p: model.Prescription,
) -> None:
    try:
        data = model.signed_bytes(p)
    except (AttributeError, TypeError, ValueError):
        return  # no signed bytes: no code carries this
    short = model.as_signed(p, len(data))
    event("short way" if short else "long way")
    if short:
        rebuilt = _long_way(p)
        assert rebuilt is not None, "the long way refuses it"
        assert rebuilt == p
        assert model.signed_bytes(rebuilt) == data


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: Path(path).name)
def test_every_example_takes_the_short_way(path: Path) -> None:
    p = model.from_input(inputs.read_input(path), now=ISSUED)
    assert model.as_signed(p, len(model.signed_bytes(p)))
    assert _long_way(p) == p


def test_as_signed_refuses_what_the_long_way_refuses() -> None:
    p = _reference()
    size = len(model.signed_bytes(p))
    line = p.lines[0]
    for broken in (
        dataclasses.replace(line, label=line.label + " "),
        dataclasses.replace(line, narcotic=True, duration_days=29, renewals=0),
        dataclasses.replace(line, duration_days=200, renewals=1),
        dataclasses.replace(line, days_per_dispensing=line.duration_days + 1),
        dataclasses.replace(line, cip13="3400936501936"),
        dataclasses.replace(line, substitutable=False, ns_reason=None),
    ):
        changed = dataclasses.replace(p, lines=(broken, *p.lines[1:]))
        assert _long_way(changed) is None
        assert not model.as_signed(changed, size)
    for patient in (
        dataclasses.replace(p.patient, sex="M"),  # the INS says a woman
        dataclasses.replace(p.patient, birth_date=dt.date(1957, 3, 14)),
        dataclasses.replace(p.patient, weight_kg=0.29),
    ):
        changed = dataclasses.replace(p, patient=patient)
        assert _long_way(changed) is None
        assert not model.as_signed(changed, size)
    # 70.0 is written 70.0 but read back as 70: not the canonical form.
    heavy = dataclasses.replace(p, patient=dataclasses.replace(p.patient, weight_kg=70.0))
    assert _long_way(heavy) is None
    assert not model.as_signed(heavy, size)
    assert not model.as_signed(p, canonical.MAX_DOCUMENT_BYTES + 1)


# --------------------------------------------------------------------------------------------
# QR codes signed by a trusted key: the counter's way and verify_token agree


@pytest.fixture(scope="module")
def store() -> TrustStore:
    return TrustStore.open(KEYS / "demo-trust")


def _code(p: model.Prescription, credentials: Any) -> str:
    """The QR text of ``p`` signed with the demo prescriber's key, valid or not."""
    kid = kid_of(credentials.certificate)
    token = jws.sign(model.signed_bytes(p), credentials.key, kid)
    return qr.encode_parts(p, kid, jws.parse(token).signature)


def _agree(text: str, store: TrustStore) -> dict[str, Any]:
    short = verifying.verify_text("scan", text, store, AT)
    long = signing.verify_token("scan", qr.decode(text), store, AT)
    assert short.to_json() == long.to_json()
    assert short.token == long.token
    return short.to_json()


def test_a_valid_code_verifies_the_same_both_ways(demo_credentials: Any, store: TrustStore) -> None:
    assert _agree(_code(_reference(), demo_credentials), store)["status"] == "valid"


def test_signed_codes_breaking_a_rule_are_refused_the_same_both_ways(
    demo_credentials: Any, store: TrustStore
) -> None:
    p = _reference()
    line = p.lines[0]
    broken = [
        dataclasses.replace(p, lines=(dataclasses.replace(line, label=line.label + " "),)),
        dataclasses.replace(p, lines=(dataclasses.replace(line, narcotic=True, renewals=2),)),
        dataclasses.replace(p, notes="tab\there"),
        dataclasses.replace(p, patient=dataclasses.replace(p.patient, sex="M")),
        dataclasses.replace(p, patient=dataclasses.replace(p.patient, weight_kg=0.01)),
        dataclasses.replace(p, issued_at=dt.datetime(1999, 6, 1, tzinfo=dt.UTC)),
        dataclasses.replace(p, prescriber=dataclasses.replace(p.prescriber, specialty="x" * 101)),
    ]
    for changed in broken:
        verdict = _agree(_code(changed, demo_credentials), store)
        assert verdict["status"] == "rejected"
        assert [r["code"] for r in verdict["reasons"]] == ["malformed"], verdict["reasons"]


def test_an_altered_code_is_refused_the_same_both_ways(
    demo_credentials: Any, store: TrustStore
) -> None:
    p = _reference()
    text = _code(p, demo_credentials)
    signed = qr.decode_signed(text)
    # Another prescription under the same signature: the rebuilt signed bytes differ.
    other = dataclasses.replace(p, notes="Renouvellement autorisé deux fois.")
    forged = qr.encode_parts(other, signed.kid, signed.signature)
    verdict = _agree(forged, store)
    assert [r["code"] for r in verdict["reasons"]] == ["signature_invalid"]
    # A signature from an algorithm the trust store does not pin is refused before any key.
    pinned = TrustStore.open(KEYS / "demo-trust")
    pinned.algorithms = frozenset({jws.PS256})
    verdict = _agree(text, pinned)
    assert [r["code"] for r in verdict["reasons"]] == ["signature_invalid"]


def test_the_json_text_of_a_verdict_is_its_json(demo_credentials: Any, store: TrustStore) -> None:
    p = _reference()
    broken = dataclasses.replace(p, notes="tab\there")
    texts = [
        _code(p, demo_credentials),
        _code(broken, demo_credentials),
        "RX1:AAAA",
        "https://example.org/",
    ]
    verdicts = [verifying.verify_text("scan", text, store, AT) for text in texts]
    late = verifying.verify_text("scan", texts[0], store, AT + dt.timedelta(days=400))
    assert [v.status for v in verdicts] == ["valid", "rejected", "rejected", "unreadable"]
    assert late.status == "rejected" and late.authentic
    annotated = dataclasses.replace(
        verdicts[0],
        input='scan "n°1"\\',
        warnings=['« CRL » "due"'],
        dispensing={"lines": [{"line": 1, "available_now": 1}], "cancelled": None},
    )
    for verdict in [*verdicts, late, annotated]:
        text = verdict.to_json_text()
        assert "\n" not in text
        assert json.loads(text) == verdict.to_json()
        assert verdict.to_json_bytes() == text.encode("utf-8")
    # The prescription is written as the signed bytes, for that prescription only.
    assert model.signed_bytes(p).decode() in verdicts[0].to_json_text()
    other = dataclasses.replace(verdicts[0], prescription=broken)
    assert json.loads(other.to_json_text())["prescription"] == model.to_payload(broken)


def test_a_valid_code_is_not_parsed_again(
    demo_credentials: Any, store: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _code(_reference(), demo_credentials)

    def refuse(*_: object) -> None:
        raise AssertionError("the long way was taken")

    monkeypatch.setattr(model, "from_payload", refuse)
    monkeypatch.setattr(canonical, "loads", refuse)
    assert verifying.verify_text("scan", text, store, AT).status == "valid"


@settings(max_examples=400, deadline=None)
@given(
    numbers=st.binary(min_size=1, max_size=120),
    texts=st.lists(_texts(60), min_size=40, max_size=40),
)
def test_keys_the_decoder_computed_need_no_second_check(numbers: bytes, texts: list[str]) -> None:
    """Whatever the compact form holds, the prescription the decoder rebuilds is judged the
    same whether its identifier and check characters are checked again or not."""
    try:
        p = qr._expand(numbers, qr._Texts(texts))
        size = len(model.signed_bytes(p))
    except (ValueError, OverflowError):
        return
    judged = model.as_signed(p, size)
    event(f"as signed: {judged}")
    assert model.as_signed(p, size, keys_computed=True) == judged


@given(
    identifier=st.integers(0, qr._ID_RADIX - 1),
    legacy=st.booleans(),
    rpps=st.integers(0, 10**10 - 1),
    finess=st.tuples(st.integers(1, 3), st.integers(0, 10**8 - 1)),
    ins=st.tuples(st.integers(1, 3), st.integers(0, 10**13 - 1)),
    cip13=st.integers(0, 10**8 - 1),
)
def test_every_key_the_decoder_computes_passes_its_check(
    identifier: int,
    legacy: bool,
    rpps: int,
    finess: tuple[int, int],
    ins: tuple[int, int],
    cip13: int,
) -> None:
    """What keys_computed takes for granted, for every value the compact form can carry."""
    from eprescrire import checkdigits, ids

    try:
        text = qr._id_text(identifier, legacy)
    except ValueError:
        pass  # out of range: the decoder refuses the code
    else:
        assert ids.is_canonical(text)
    body = f"{rpps:010d}"
    assert ids.check_rpps(body + checkdigits.luhn_digit(body))
    kind, value = finess
    model._finess(qr._finess_text(kind, value % (10**6 if kind > 1 else 10**8)))
    kind, value = ins
    number = qr._ins_text(kind, value % (10**11 if kind > 1 else 10**13))
    if model._INS.fullmatch(number):
        model._ins(number)
    model._cip13(qr._cip13_text(cip13))


_DIGITISH = st.text(st.sampled_from("0123456789٣²a 3"), min_size=0, max_size=14)


@given(body=_DIGITISH)
@example(body="3400936501935")
@example(body="3400٣36501935")
@example(body="10003456786")
@example(body="1234567²")
def test_identifier_shapes_are_the_patterns(body: str) -> None:
    """The shapes ``as_signed`` checks with str methods are the module's patterns."""
    for value in (body, "3400" + body):
        assert (len(value) == 13 and value.startswith("3400") and value[4:].isdecimal()) == bool(
            model._CIP13.fullmatch(value)
        )
        assert (len(value) == 8 and value.isdecimal()) == bool(model._CIS.fullmatch(value))
        assert (len(value) == 11 and value.isascii() and value.isdigit()) == bool(
            model._RPPS_DIGITS.fullmatch(value)
        )
