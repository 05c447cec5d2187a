"""QR codes of RSA signers (RX2: PS256, RS256) next to the ES256 codes (RX1) already printed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import segno
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import load_example
from eprescrire import jws, keys, model, qr, render, signing
from eprescrire.errors import Reason, TrustStoreError, VerificationError
from eprescrire.trust import TrustStore

VECTORS = Path(__file__).resolve().parent / "assets" / "qr"
GOLDEN = json.loads((VECTORS / "golden.json").read_text())
NOW = dt.datetime(2026, 3, 2, 9, 15, 27, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture()
def rsa_credentials(demo_authority: keys.Credentials, rsa_key: rsa.RSAPrivateKey):
    certificate = keys.certify_prescriber(
        demo_authority,
        rsa_key.public_key(),
        name="Dr Claire Martin",
        rpps="10003456786",
        specialty="Médecine générale",
        not_before=NOW - dt.timedelta(days=1),
        days=365,
    )
    return keys.Credentials(key=rsa_key, certificate=certificate)


def reference(alg_credentials: keys.Credentials) -> signing.SignedDocument:
    prescription = model.from_input(load_example(), now=NOW)
    return signing.sign(prescription, alg_credentials)


def level_m_version(text: str) -> int:
    code = segno.make(text, error="m", micro=False, boost_error=False)
    return int(code.version)


def test_es256_codes_are_still_rx1_and_the_same_size(issue_document) -> None:
    # The golden RX1 code printed before RX2 existed still decodes to the exact JWS.
    assert GOLDEN["qr"].startswith("RX1:")
    assert qr.decode(GOLDEN["qr"]) == GOLDEN["jws"]
    document = issue_document(now=NOW)
    text = qr.encode(document)
    assert text.startswith("RX1:")
    assert level_m_version(text) == 12  # the reference prescription, as before


@pytest.mark.parametrize("alg", [jws.PS256, jws.RS256])
def test_rsa_codes_round_trip_and_verify(
    alg: str, rsa_credentials: keys.Credentials, demo_trust: TrustStore, monkeypatch
) -> None:
    prescription = model.from_input(load_example(), now=NOW)
    token = jws.sign(
        model.signed_bytes(prescription),
        rsa_credentials.key,
        rsa_credentials.kid,
        rsa_algorithm=alg,
    )
    document = signing.SignedDocument(token, (rsa_credentials.certificate,), prescription)
    text = qr.encode(document)
    assert text.startswith("RX2:")
    assert qr.decode(text) == token
    assert json.loads(jws.b64url_decode(token.split(".")[0]))["alg"] == alg
    # Not accepted until the trust store pins the algorithm.
    demo_trust.add_certificate(rsa_credentials.certificate, now=NOW)
    verdict = signing.verify_token("qr", qr.decode(text), demo_trust, NOW)
    assert [r.code for r in verdict.reasons] == [Reason.SIGNATURE_INVALID]
    demo_trust.algorithms = frozenset({jws.ALGORITHM, alg})
    verdict = signing.verify_token("qr", qr.decode(text), demo_trust, NOW)
    assert verdict.status == "valid", verdict.to_json()


def test_ps256_reference_size_and_print(rsa_credentials: keys.Credentials) -> None:
    document = reference(rsa_credentials)
    text = qr.encode(document)
    assert level_m_version(text) <= 18
    for page, box in render.QR_BOX_MM.items():
        symbol = render.choose_symbol(text, box)
        assert symbol.module_mm >= render.MIN_MODULE_MM, page
    # Measured on the printed ordonnance, rasterised at 600 dpi.
    image = (
        pdfium.PdfDocument(render.pdf_bytes(document))[0]
        .render(scale=600 / 72, grayscale=True)
        .to_pil()
    )
    (barcode,) = zxingcpp.read_barcodes(image)
    assert barcode.text == text
    side_px = barcode.position.top_right.x - barcode.position.top_left.x
    symbol = render.choose_symbol(text, render.QR_BOX_MM["A5"])
    assert side_px / symbol.modules / 600 * 25.4 >= render.MIN_MODULE_MM - 0.01


def _rx2(frame: bytes) -> str:
    return "RX2:" + qr.base45_encode(frame)


def test_rx2_frames_are_checked(rsa_credentials: keys.Credentials) -> None:
    document = reference(rsa_credentials)
    frame = qr.base45_decode(qr.encode(document)[4:])
    assert frame[0] == qr.ALGORITHM_CODES[jws.PS256]
    for bad, what in (
        (b"\x00" + frame[1:], "unknown signature algorithm"),
        (b"\x09" + frame[1:], "unknown signature algorithm"),
        (frame[:9] + b"\xff\x01" + frame[11:], "signature of 255 bytes"),
        (frame[:9] + b"\x81\x04" + frame[11:], "signature of 513 bytes"),
        (frame[:200], "truncated"),
        (frame[:1], "truncated"),
        (b"", "truncated"),
    ):
        with pytest.raises(VerificationError) as error:
            qr.decode(_rx2(bad))
        assert error.value.reason is Reason.MALFORMED
        assert what in str(error.value)
    # An RX2 frame may also carry ES256 (alg 1, 64-byte signature): same JWS as the RX1 code.
    es_text = GOLDEN["qr"]
    es_frame = qr.base45_decode(es_text[4:])
    assert qr.decode(_rx2(b"\x01" + es_frame)) == GOLDEN["jws"]


def test_encode_parts_checks_the_algorithm(rsa_credentials: keys.Credentials) -> None:
    prescription = reference(rsa_credentials).prescription
    kid = rsa_credentials.kid
    with pytest.raises(ValueError, match="no QR form"):
        qr.encode_parts(prescription, kid, bytes(256), "HS256")
    with pytest.raises(ValueError, match="256 to 512"):
        qr.encode_parts(prescription, kid, bytes(128), jws.PS256)
    with pytest.raises(ValueError, match="64 bytes"):
        qr.encode_parts(prescription, kid, bytes(256), jws.ALGORITHM)


# --------------------------------------------------------------------------------------------
# The JWS layer and the trust store's pinned algorithms


def test_rsa_keys_below_2048_bits_and_mismatched_keys_are_refused(
    rsa_credentials: keys.Credentials, demo_credentials: keys.Credentials
) -> None:
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(VerificationError, match="2048"):
        jws.parse(jws.sign(b"{}", weak, "JS0wWpJ4KJU", rsa_algorithm=jws.PS256))
    with pytest.raises(VerificationError, match="1024 bits"):
        jws.check_key(jws.PS256, weak.public_key())
    good = jws.parse(jws.sign(b"{}", rsa_credentials.key, rsa_credentials.kid))
    jws.verify(good, rsa_credentials.certificate.public_key())  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="not RSA"):
        jws.verify(good, demo_credentials.certificate.public_key())  # type: ignore[arg-type]
    relabelled = dataclasses.replace(good, alg=jws.RS256)
    with pytest.raises(VerificationError, match="does not match"):
        jws.verify(relabelled, rsa_credentials.certificate.public_key())  # type: ignore[arg-type]
    es = jws.parse(jws.sign(b"{}", demo_credentials.key, demo_credentials.kid))
    with pytest.raises(VerificationError, match="not P-256"):
        jws.verify(es, rsa_credentials.certificate.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        'algorithms = ["none"]',
        'algorithms = ["HS256"]',
        'algorithms = ["ES256", "ES384"]',
        "algorithms = []",
        'algorithms = "PS256"',
        "algorithms = [[1]]",
    ],
)
def test_trust_store_refuses_unsupported_algorithms(demo_trust: TrustStore, config: str) -> None:
    (demo_trust.path / "trust.toml").write_text(config + "\n")
    with pytest.raises(TrustStoreError, match="algorithms"):
        TrustStore.open(demo_trust.path)


def test_trust_store_algorithms_default_and_on_request(demo_trust: TrustStore) -> None:
    assert TrustStore.open(demo_trust.path).algorithms == {"ES256"}
    (demo_trust.path / "trust.toml").write_text('algorithms = ["ES256", "PS256", "RS256"]\n')
    assert TrustStore.open(demo_trust.path).algorithms == {"ES256", "PS256", "RS256"}
