"""Regenerate the QR test vectors in this folder (run from the repository root):

    .venv/bin/python tests/assets/qr/generate.py

golden-rx.json   examples/reference.toml signed by the demo prescriber at a fixed time
golden.json      its QR text, the exact JWS it rebuilds, a verification time, the zlib version
NAME.txt         one QR text per bad-input case (as a scanner types it, with a newline)
cases.json       each case's reason code and what it is

ECDSA signatures are randomised: regenerating changes every file, and the tests read them
back, so that is harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import zlib
from pathlib import Path

from eprescrire import inputs, jws, keys, model, qr, signing
from eprescrire.errors import VerificationError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
ISSUED = dt.datetime(2026, 3, 2, 9, 15, 27, tzinfo=dt.UTC)
VERIFY_AT = "2026-03-05T10:00:00Z"
GOLDEN_ID = "7K3Q9ZP2M4XD8RT"


def frame_of(text: str) -> bytes:
    return qr.base45_decode(text[len(qr.PREFIX) :])


def text_of(frame: bytes) -> str:
    return qr.PREFIX + qr.base45_encode(frame)


def split(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """(kid + signature, numbers, deflated text) of a frame."""
    size, start = qr._read_varint(frame, 72)
    return frame[:72], frame[start : start + size], frame[start + size :]


def join(head: bytes, numbers: bytes, deflated: bytes) -> bytes:
    return head + qr._varint(len(numbers)) + numbers + deflated


def deflate_plain(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=qr.preset_dictionary())
    return compressor.compress(data) + compressor.flush()


def main() -> int:
    from stdnum.iso7064 import mod_37_2

    credentials = keys.load_pkcs12(
        ROOT / "keys" / "demo-prescriber.p12", b"demo-only", insecure=True
    )
    prescription = model.from_input(
        inputs.read_input(ROOT / "examples" / "reference.toml"),
        now=ISSUED,
        prescription_id=GOLDEN_ID + mod_37_2.calc_check_digit(GOLDEN_ID),
    )
    document = signing.sign(prescription, credentials)
    (HERE / "golden-rx.json").write_bytes(document.to_json_bytes())
    text = qr.encode(document)
    golden = {
        "qr": text,
        "jws": document.token,
        "at": VERIFY_AT,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }
    (HERE / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")

    frame = frame_of(text)
    head, numbers, deflated = split(frame)
    body = qr._inflate(deflated)
    cases: dict[str, dict[str, str]] = {}

    def case(name: str, qr_text: str, reason: str, what: str) -> None:
        cases[name] = {"reason": reason, "what": what}
        (HERE / f"{name}.txt").write_text(qr_text + "\n", encoding="utf-8")

    for old in HERE.glob("*.txt"):
        old.unlink()

    payload = text[len(qr.PREFIX) :]
    case(
        "base45-bad-character",
        qr.PREFIX + payload[:50] + "#" + payload[51:],
        "malformed",
        "a character outside the Base45 alphabet",
    )
    case(
        "base45-lowercase", qr.PREFIX + payload.lower(), "malformed", "the Base45 text lower-cased"
    )
    case("base45-bad-length", text + "A", "malformed", "a Base45 length that is 1 modulo 3")
    case(
        "base45-group-overflow",
        qr.PREFIX + ":::" + payload[3:],
        "malformed",
        "a three-character Base45 group above 65535",
    )
    case("truncated-header", text_of(frame[:40]), "malformed", "cut inside the signature")
    case(
        "truncated-numbers",
        text_of(frame[: 73 + len(numbers) // 2]),
        "malformed",
        "cut inside the number block",
    )
    case("truncated-deflate", text_of(frame[:-6]), "malformed", "the DEFLATE stream cut short")
    case(
        "trailing-bytes",
        text_of(frame + b"\x00\x2a"),
        "malformed",
        "two bytes after the end of the DEFLATE stream",
    )
    case(
        "length-not-minimal",
        text_of(head + b"\xbf\x00" + numbers + deflated),
        "malformed",
        "the number block length as a non-minimal varint",
    )
    case(
        "numbers-extra",
        text_of(join(head, b"\x01" + numbers, deflated)),
        "malformed",
        "the number block with an extra most significant byte",
    )
    case(
        "numbers-leading-zero",
        text_of(join(head, b"\x00" + numbers, deflated)),
        "malformed",
        "the number block with a leading zero byte",
    )
    case(
        "text-missing-field",
        text_of(join(head, numbers, deflate_plain(body.rsplit(b"\x00", 2)[0] + b"\x00"))),
        "malformed",
        "the text section without its last field",
    )
    case(
        "text-extra-field",
        text_of(join(head, numbers, deflate_plain(body + b"extra\x00"))),
        "malformed",
        "the text section with one field too many",
    )
    case(
        "text-unterminated",
        text_of(join(head, numbers, deflate_plain(body[:-1]))),
        "malformed",
        "the text section without its final NUL",
    )
    case(
        "text-not-utf8",
        text_of(join(head, numbers, deflate_plain(b"\xff" + body))),
        "malformed",
        "the text section with a byte that is not UTF-8",
    )
    case(
        "not-deflate",
        text_of(join(head, numbers, b"\xff" * 20)),
        "malformed",
        "a text section that is not DEFLATE (invalid block type)",
    )
    # 2 MiB of zeros compress to about 2 KiB: a bomb that fits in a real QR code.
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb_stream = bomb.compress(bytes(2 << 20)) + bomb.flush()
    case(
        "inflate-bomb",
        text_of(join(head, numbers, bomb_stream)),
        "malformed",
        "2 MiB of zeros deflated (inflation is capped at 64 KiB)",
    )
    case(
        "too-long",
        text_of(frame + bytes(3000)),
        "malformed",
        "more characters than any QR code holds",
    )
    case(
        "foreign-url",
        "https://example.org/ordonnance?id=42",
        "not_a_prescription",
        "a URL, as in a foreign QR code",
    )
    case(
        "foreign-dcc",
        "HC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0B",
        "not_a_prescription",
        "an EU DCC prefix",
    )
    case(
        "foreign-shc",
        "shc:/5676295953265460346029254077280433602870286471674522280928",
        "not_a_prescription",
        "a SMART Health Card prefix",
    )
    case("prefix-lowercase", "rx1:" + payload, "not_a_prescription", "our prefix lower-cased")
    case("unsupported-version", "RX9:" + payload, "not_a_prescription", "a future format version")
    case("empty-after-prefix", qr.PREFIX, "malformed", "the prefix alone")

    signature_case = bytearray(frame)
    signature_case[40] ^= 0x01
    case(
        "altered-signature",
        text_of(bytes(signature_case)),
        "signature_invalid",
        "one bit of the signature flipped",
    )
    # One character of the number block changed so that the frame still decodes: a different
    # prescription (another quantity, date or code) that the signature no longer covers.
    start = len(qr.PREFIX) + (73 // 2) * 3 + 6
    for position in range(start, start + 60):
        for replacement in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            altered = text[:position] + replacement + text[position + 1 :]
            if altered == text:
                continue
            try:
                token = qr.decode(altered)
            except VerificationError:
                continue
            if token != document.token and jws.parse(token).kid == jws.parse(document.token).kid:
                case(
                    "altered-character",
                    altered,
                    "signature_invalid",
                    f"character {position} changed to {replacement!r}: another prescription",
                )
                break
        else:
            continue
        break
    else:
        raise SystemExit("no altered character found")
    (HERE / "cases.json").write_text(json.dumps(cases, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases, golden QR of {len(text)} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
