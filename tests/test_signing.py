"""Signing and verification: standard JWS, properties, verdict shapes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eprescrire import jws, model, signing
from eprescrire.keys import kid_of
from eprescrire.trust import TrustStore


def test_issued_jws_verifies_with_an_independent_jose_library(issue_document) -> None:
    """joserfc, given only the signer certificate's public key, accepts the token."""
    from cryptography.hazmat.primitives import serialization
    from joserfc import jws as jose_jws
    from joserfc.jwk import ECKey

    document = issue_document()
    public_pem = (
        document.certificates[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key = ECKey.import_key(public_pem)
    result = jose_jws.deserialize_compact(document.token, key, algorithms=["ES256"])
    assert result.headers()["alg"] == "ES256"
    assert result.headers()["kid"] == kid_of(document.certificates[0])
    assert json.loads(result.payload) == model.to_payload(document.prescription)


def test_signed_document_verifies_and_shows_what_was_signed(issue_document, demo_trust) -> None:
    document = issue_document("chronic-ald.toml")
    verdict = signing.verify_document(
        "rx.json", document.to_json_bytes(), demo_trust, dt.datetime.now(dt.UTC)
    )
    assert verdict.status == "valid", verdict.reasons
    shown = verdict.to_json()
    assert shown["prescription"] == model.to_payload(document.prescription)
    assert shown["signer"] == {
        "rpps": "10003456786",
        "name": "Dr Claire Martin",
        "kid": kid_of(document.certificates[0]),
    }
    assert set(shown) >= {
        "input",
        "status",
        "id",
        "reasons",
        "prescription",
        "signer",
        "dispensing",
    }


def test_qr_like_verification_needs_the_signer_in_the_trust_store(
    issue_document, demo_trust, tmp_path
) -> None:
    """A bare token (as from a QR code) carries no certificate: the store must know the signer."""
    document = issue_document()
    now = dt.datetime.now(dt.UTC)
    assert signing.verify_token("qr", document.token, demo_trust, now).status == "valid"
    empty = TrustStore.create(tmp_path / "empty")
    for authority in demo_trust.authorities:
        empty.add_certificate(authority, now=now)
    verdict = signing.verify_token("qr", document.token, empty, now)
    assert [r.code.value for r in verdict.reasons] == ["unknown_signer"]


def test_missing_crl_means_revocation_unknown(issue_document, demo_trust) -> None:
    for crl in (demo_trust.path / "crls").glob("*.pem"):
        crl.unlink()
    store = TrustStore.open(demo_trust.path)
    verdict = signing.verify_document(
        "rx", issue_document().to_json_bytes(), store, dt.datetime.now(dt.UTC)
    )
    assert [r.code.value for r in verdict.reasons] == ["revocation_unknown"]
    assert verdict.status == "rejected"
    assert "CRL" in verdict.reasons[0].message


def test_revocation_through_the_library(
    issue_document, demo_trust, demo_authority, demo_credentials
) -> None:
    from eprescrire import keys

    now = dt.datetime.now(dt.UTC)
    (crl,) = demo_trust.crls
    demo_trust.add_crl(
        keys.revoke(demo_authority, crl, demo_credentials.certificate.serial_number, now=now)
    )
    verdict = signing.verify_document(
        "rx", issue_document().to_json_bytes(), TrustStore.open(demo_trust.path), now
    )
    assert [r.code.value for r in verdict.reasons] == ["certificate_revoked"]


# ------------------------------------------------------------------------------ properties

_text = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", categories=("L", "N", "P", "Zs"), exclude_characters="\u2028\u2029"
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@st.composite
def prescription_inputs(draw: st.DrawFn) -> dict[str, Any]:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        narcotic = draw(st.booleans())
        duration = draw(st.integers(1, 28 if narcotic else 120))
        substitutable = draw(st.booleans())
        line: dict[str, Any] = {
            "label": draw(_text),
            "posology": draw(_text),
            "duration_days": duration,
            "quantity": draw(st.integers(1, 999)),
            "renewals": 0 if narcotic else draw(st.integers(0, min(11, 365 // duration - 1))),
            "substitutable": substitutable,
            "ald": draw(st.booleans()),
            "narcotic": narcotic,
        }
        if not substitutable:
            line["ns_reason"] = draw(st.sampled_from(model.NS_REASONS))
        if draw(st.booleans()):
            line["unit"] = draw(_text)
        lines.append(line)
    birth = draw(st.dates(dt.date(1900, 1, 1), dt.date(2026, 11, 1)))
    patient: dict[str, Any] = {
        "family_name": draw(_text),
        "given_name": draw(_text),
        "birth_date": birth.isoformat(),
    }
    if birth <= dt.date(2020, 11, 25):  # NS EFG only for a child under 6 on the issue date
        for line in lines:
            if line.get("ns_reason") == "EFG":
                line["ns_reason"] = "MTE"
    if draw(st.booleans()):
        patient["weight_kg"] = draw(st.integers(3, 1500)) / 10
    return {
        "prescriber": {
            "name": draw(_text),
            "rpps": "10003456786",
            "specialty": draw(_text),
            "facility": {"name": draw(_text), "address": draw(_text)},
        },
        "patient": patient,
        "lines": lines,
        "share_opposition": draw(st.booleans()),
    }


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=prescription_inputs())
def test_sign_verify_round_trip(data: dict[str, Any], demo_credentials, demo_trust) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    prescription = model.from_input(data, now=now)
    document = signing.sign(prescription, demo_credentials, allow_name_mismatch=True)
    verdict = signing.verify_document("rx", document.to_json_bytes(), demo_trust, now)
    assert verdict.status == "valid", verdict.reasons
    assert verdict.prescription == prescription


_SIGNED: dict[str, bytes] = {}


@settings(
    max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(0, 10**9), flip=st.integers(1, 255))
def test_any_single_byte_change_is_refused(
    position: int, flip: int, issue_document, demo_trust
) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    if "doc" not in _SIGNED:
        _SIGNED["doc"] = issue_document(now=now).to_json_bytes()
    original = _SIGNED["doc"]
    index = position % len(original)
    changed = bytearray(original)
    changed[index] ^= flip
    verdict = signing.verify_document("rx", bytes(changed), demo_trust, now)
    assert verdict.status != "valid", (index, original[index : index + 1], bytes([changed[index]]))


def test_unchanged_document_is_valid_and_line_endings_do_not_matter(
    issue_document, demo_trust
) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    data = issue_document(now=now).to_json_bytes()
    assert signing.verify_document("rx", data, demo_trust, now).status == "valid"
    assert (
        signing.verify_document("rx", data.replace(b"\n", b"\r\n"), demo_trust, now).status
        == "valid"
    )


def test_token_parts_are_strict() -> None:
    import pytest

    from eprescrire.errors import VerificationError

    for token in ("a.b", "a.b.c.d", "!!.e30.AA", jws.b64url_encode(b"[]") + ".e30.AA"):
        with pytest.raises(VerificationError):
            jws.parse(token)


def _profiled_prescriber(authority, *, eku, signing_usage=True):  # type: ignore[no-untyped-def]
    """A prescriber certificate from the demo authority with a chosen key profile."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from eprescrire import keys

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Dr Claire Martin"),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "810003456786"),
                ]
            )
        )
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=signing_usage,
                content_commitment=False,
                key_encipherment=not signing_usage,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    certificate = builder.sign(authority.key, hashes.SHA256())
    return keys.Credentials(key=key, certificate=certificate, chain=(authority.certificate,))


def test_only_document_signing_certificates_may_sign(demo_authority, demo_trust) -> None:
    """A login (clientAuth) or encryption certificate from the same authority is refused."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from eprescrire.keys import DOCUMENT_SIGNING_EKU

    now = dt.datetime.now(dt.UTC)
    prescription = model.from_input(__import__("conftest").load_example(), now=now)
    cases = {
        "document signing": (dict(eku=[DOCUMENT_SIGNING_EKU]), "valid"),
        "login only": (dict(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), "rejected"),
        "no extended key usage": (dict(eku=None), "rejected"),
        "encryption key usage": (dict(eku=[DOCUMENT_SIGNING_EKU], signing_usage=False), "rejected"),
    }
    for name, (profile, expected) in cases.items():
        credentials = _profiled_prescriber(demo_authority, **profile)
        document = signing.sign(prescription, credentials)
        verdict = signing.verify_document("rx", document.to_json_bytes(), demo_trust, now)
        assert verdict.status == expected, (name, verdict.reasons)
        if expected == "rejected":
            assert [r.code.value for r in verdict.reasons] == ["untrusted_chain"], name
