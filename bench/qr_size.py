"""QR size benchmark: our RX1 code against SMART Health Cards and EU DCC encodings.

For every prescription in examples/ (reference first), signed with the demo prescriber key at
a fixed time, prints the QR version at error correction level M, the module count per side and
the character count of:

  RX1        ours: RX1: + Base45 of kid | signature | mixed-radix numbers | DEFLATE+dictionary
  RX2-PS256  ours for an RSA-2048 signer (a CPS card): RX2: + Base45 of alg | kid | signature
             length | 256-byte PS256 signature | the same numbers and text
  RX2-RS256  the same with an RS256 (PKCS#1 v1.5) signature, also 256 bytes
  RX1-nodict the same frame with DEFLATE and no preset dictionary (what the dictionary buys)
  RX1-stored the same frame with the text not compressed at all (what compression buys)
  SHC        SMART Health Cards: compact JWS, header {"zip":"DEF","alg":"ES256","kid":<RFC 7638
             thumbprint>}, payload = raw DEFLATE of the minified signed JSON, then shc:/ and two
             digits per base64url character; QR segments: byte "shc:/" + numeric
  DCC        EU Digital COVID Certificate: CWT claims {iss, iat, exp, -260: {1: payload}} in CBOR,
             COSE_Sign1 (protected {alg: ES256, kid: 8 bytes}, raw 64-byte signature), zlib,
             Base45, HC1: prefix; alphanumeric mode
  JWS-byte   the plain compact JWS of the signed JSON in byte mode (no compression)

The SHC and DCC rows carry the same JSON as our signed payload (full field names, no FHIR or
DCC schema wrapping, which would only make them larger). Both are really signed with the demo
key. Then prints median encode/decode times of RX1 over several runs, with their ratio to the
EU DCC decoding pipeline (Base45 + zlib + CBOR) measured in the same run, and the printed module
size of the reference code on the ordonnance (A5 and A4 boxes) for ES256 and PS256.

Run: .venv/bin/python bench/qr_size.py [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import statistics
import sys
import time
import zlib
from pathlib import Path

import cbor2
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from segno import consts as segno_consts

from eprescrire import ids, inputs, jws, keys, model, qr, render, signing

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 3, 2, 9, 15, 27, tzinfo=dt.UTC)


def qr_size(content: object) -> tuple[int, int] | None:
    """(version, modules per side) of the smallest level-M QR code holding ``content``, or
    None when even version 40 cannot hold it."""
    try:
        code = segno.make(content, error="m", micro=False, boost_error=False)
    except segno.DataOverflowError:
        return None
    assert code.error == "M"
    return int(code.version), int(code.symbol_size(border=0)[0])


def es256(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return jws.raw_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 JWK thumbprint, the kid SMART Health Cards use."""
    numbers = key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": jws.b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": jws.b64url_encode(numbers.y.to_bytes(32, "big")),
    }
    return jws.b64url_encode(
        hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    )


def raw_deflate(data: bytes, zdict: bytes | None = None) -> bytes:
    if zdict is None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    else:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=zdict)
    return compressor.compress(data) + compressor.flush()


def fixed_id(name: str) -> ids.PrescriptionId:
    """A stable identifier per example, so that every run measures the same bytes."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:12], "big")
    return ids.from_number(digest % len(ids.ALPHABET) ** ids.RANDOM_LENGTH, legacy=False)


def rx1_variant(document: signing.SignedDocument, compress: bool) -> str:
    """Our frame with a dictionary-less DEFLATE, or with the text stored as is (not decodable
    by RX1: for comparison only)."""
    compact = qr._compact(document.prescription)
    token = jws.parse(document.token)
    body = b"".join(t.encode("utf-8") + b"\x00" for t in compact.texts)
    frame = (
        jws.b64url_decode(token.kid)
        + token.signature
        + qr._varint(len(compact.numbers))
        + compact.numbers
        + (raw_deflate(body) if compress else body)
    )
    return qr.PREFIX + qr.base45_encode(frame)


def shc(prescription: model.Prescription, key: ec.EllipticCurvePrivateKey) -> tuple[str, list]:
    header = json.dumps(
        {"zip": "DEF", "alg": "ES256", "kid": thumbprint(key)}, separators=(",", ":")
    ).encode()
    payload = raw_deflate(model.signed_bytes(prescription))
    signing_input = jws.b64url_encode(header) + "." + jws.b64url_encode(payload)
    token = signing_input + "." + jws.b64url_encode(es256(key, signing_input.encode()))
    digits = "".join(f"{ord(c) - 45:02d}" for c in token)
    return "shc:/" + digits, [
        ("shc:/", segno_consts.MODE_BYTE),
        (digits, segno_consts.MODE_NUMERIC),
    ]


def dcc(prescription: model.Prescription, key: ec.EllipticCurvePrivateKey, kid: bytes) -> str:
    issued = int(prescription.issued_at.timestamp())
    claims = {
        1: "FR",
        4: issued + 92 * 86400,
        6: issued,
        -260: {1: model.to_payload(prescription)},
    }
    payload = cbor2.dumps(claims)
    protected = cbor2.dumps({1: -7, 4: kid})
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    sign1 = cbor2.CBORTag(18, [protected, {}, payload, es256(key, to_sign)])
    return "HC1:" + qr.base45_encode(zlib.compress(cbor2.dumps(sign1), 9))


def dcc_decode(text: str) -> object:
    """The EU DCC decoding pipeline (no signature check), the timing baseline."""
    sign1 = cbor2.loads(zlib.decompress(qr.base45_decode(text[4:])))
    return cbor2.loads(sign1.value[2])


def median_seconds(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timing runs (median)")
    args = parser.parse_args()
    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    key = credentials.key
    kid_bytes = jws.b64url_decode(keys.kid_of(credentials.certificate))
    files = sorted(
        (ROOT / "examples").glob("*.toml"), key=lambda p: (p.name != "reference.toml", p.name)
    )
    print(f"QR size at error correction level M (signed {NOW:%Y-%m-%d %H:%M:%S}Z, demo key)\n")
    columns = ("version", "modules", "chars", "area vs SHC")
    header = f"{'example':<18} {'encoding':<10} " + " ".join(
        f"{c:>{w}}" for c, w in zip(columns, (7, 7, 6, 11), strict=True)
    )
    print(header)
    print("-" * len(header), flush=True)
    reference_doc = None
    reference_rsa: dict[str, str] = {}
    rsa_key = rsa.generate_private_key(65537, 2048)  # as on a CPS card; only sizes matter here
    for path in files:
        prescription = model.from_input(
            inputs.read_input(path), now=NOW, prescription_id=fixed_id(path.name)
        )
        document = signing.sign(prescription, credentials)
        if reference_doc is None:
            reference_doc = document
        ours = qr.encode(document)
        assert qr.decode(ours) == document.token
        shc_text, shc_segments = shc(prescription, key)
        rsa_rows = []
        for alg in (jws.PS256, jws.RS256):
            token = jws.sign(
                model.signed_bytes(prescription), rsa_key, credentials.kid, rsa_algorithm=alg
            )
            parsed = jws.parse(token)
            text = qr.encode_parts(prescription, parsed.kid, parsed.signature, alg)
            assert qr.decode(text) == token
            rsa_rows.append((f"RX2-{alg}", text, text))
            if path.name == "reference.toml":
                reference_rsa[alg] = text
        rows = [
            ("RX1", ours, ours),
            *rsa_rows,
            ("RX1-nodict", rx1_variant(document, compress=True), None),
            ("RX1-stored", rx1_variant(document, compress=False), None),
            ("SHC", shc_text, shc_segments),
            ("DCC", dcc(prescription, key, kid_bytes), None),
            ("JWS-byte", document.token.encode("ascii"), None),
        ]
        sizes = {}
        for name, text, content in rows:
            sizes[name] = (qr_size(content if content is not None else text), len(text))
        shc_size = sizes["SHC"][0]
        assert shc_size is not None
        for name, _, _ in rows:
            size, chars = sizes[name]
            if size is None:
                print(f"{path.name:<18} {name:<10} {'>40':>7} {'-':>7} {chars:>6} {'-':>11}")
                continue
            version, modules = size
            ratio = (modules / shc_size[1]) ** 2
            print(f"{path.name:<18} {name:<10} {version:>7} {modules:>7} {chars:>6} {ratio:>11.2f}")
        print()
    assert reference_doc is not None
    text = qr.encode(reference_doc)
    print("reference.toml printed on the ordonnance (render.choose_symbol; minimum 0.5 mm):")
    for label, code in (("RX1 ES256", text), ("RX2 PS256", reference_rsa[jws.PS256])):
        for page, box in render.QR_BOX_MM.items():
            symbol = render.choose_symbol(code, box)
            print(
                f"  {label:<10} {page}: version {symbol.version:>2} level {symbol.error}, "
                f"{symbol.modules} modules, {symbol.module_mm:.3f} mm per module, "
                f"{symbol.side_mm:.1f} mm wide (box {box:.0f} mm)"
            )
    print()
    dcc_text = dcc(reference_doc.prescription, key, kid_bytes)
    decode_s = median_seconds(lambda: qr.decode(text), args.runs)
    encode_s = median_seconds(lambda: qr.encode(reference_doc), args.runs)
    baseline_s = median_seconds(lambda: dcc_decode(dcc_text), args.runs)
    print(f"reference.toml timings, median of {args.runs} runs:")
    for label, seconds in (
        ("DCC decode (Base45+zlib+CBOR, baseline)", baseline_s),
        ("RX1 decode (rebuild the exact JWS)", decode_s),
        ("RX1 encode (includes a decode check)", encode_s),
    ):
        print(f"  {label:<40} {seconds * 1e6:8.1f} µs  ratio {seconds / baseline_s:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
