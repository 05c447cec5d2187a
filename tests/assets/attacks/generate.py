"""Generate the negative corpus: one signed document per attack, with its expected verdict.

Run ``python tests/assets/attacks/generate.py [DIR]`` to rebuild it (default: this folder).
Everything is verified as of ``AT`` (see manifest.json), with the corpus's own trust store in
``trust/`` (a test authority, its CRL with one revoked prescriber, one known signer). The keys
used to make the corpus are thrown away: only certificates and documents are written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import shutil
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from eprescrire import canonical, jws, keys, model, signing
from eprescrire.trust import TrustStore

HERE = Path(__file__).resolve().parent
AT = "2026-11-25T12:00:00+01:00"
NOW = dt.datetime.fromisoformat(AT).astimezone(dt.UTC)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
RPPS = "10003456786"
OTHER_RPPS = "10012345673"

INPUT = {
    "prescriber": {
        "name": "Dr Corpus Test",
        "rpps": RPPS,
        "specialty": "Médecine générale",
        "facility": {"name": "Cabinet de test", "address": "1 rue du Test, 75001 Paris"},
    },
    "patient": {"family_name": "Testeur", "given_name": "Alice", "birth_date": "1970-01-01"},
    "lines": [
        {
            "label": "AMOXICILLINE 1 g, comprimé",
            "posology": "1 comprimé matin et soir",
            "duration_days": 6,
            "quantity": 1,
        },
        {
            "label": "PARACÉTAMOL 500 mg, gélule",
            "posology": "2 gélules si douleur",
            "duration_days": 5,
            "quantity": 2,
            "renewals": 1,
        },
    ],
}


def _prescription(issued: dt.datetime, **patch: object) -> model.Prescription:
    data = json.loads(json.dumps(INPUT))
    data["issued"] = issued.isoformat()
    for path, value in patch.items():
        target = data
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    return model.from_input(data, now=max(NOW, issued))


def _document(token: str, certificates: list, readable: object) -> bytes:
    body = {
        "format": signing.DOCUMENT_FORMAT,
        "id": readable["id"] if isinstance(readable, dict) else "",
        "jws": token,
        "certificates": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in certificates
        ],
        "readable": readable,
    }
    return (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _b64(data: bytes) -> str:
    return jws.b64url_encode(data)


def _raw_token(header: dict, payload: bytes, key: object) -> str:
    """A token with an arbitrary header, ES256-signed with ``key``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signing_input = _b64(canonical.dumps(header)) + "." + _b64(payload)
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    return signing_input + "." + _b64(jws.raw_signature(der))


def generate(out: Path) -> dict[str, dict[str, object]]:
    if (out / "trust").exists():
        shutil.rmtree(out / "trust")
    for old in out.glob("*.json"):
        old.unlink()
    authority = keys.new_authority("Corpus test authority", not_before=START, days=7300)
    rogue = keys.new_authority("Rogue authority", not_before=START, days=7300)

    def prescriber(
        issuer: keys.Credentials, rpps: str = RPPS, start: dt.datetime = START, days: int = 3650
    ) -> keys.Credentials:
        return keys.new_prescriber(
            issuer,
            name="Dr Corpus Test",
            rpps=rpps,
            specialty="Médecine générale",
            not_before=start,
            days=days,
        )

    good = prescriber(authority)
    other = prescriber(authority, rpps=OTHER_RPPS)
    unlisted = prescriber(authority)
    revoked = prescriber(authority)
    expired = prescriber(authority, start=START, days=200)  # ended mid-2025
    outsider = prescriber(rogue)

    store = TrustStore.create(out / "trust")
    store.add_certificate(authority.certificate, now=NOW)
    store.add_crl(
        keys.new_crl(
            authority, revoked={revoked.certificate.serial_number: START}, now=START, days=7300
        )
    )
    store.add_certificate(good.certificate, now=NOW)

    issued = NOW - dt.timedelta(days=2)
    manifest: dict[str, dict[str, object]] = {}

    def write(name: str, data: bytes, reason: str | None, exit_code: int, what: str) -> None:
        (out / name).write_bytes(data)
        manifest[name] = {"reason": reason, "exit": exit_code, "attack": what}

    base = signing.sign(_prescription(issued), good)
    write("valid.json", base.to_json_bytes(), None, 0, "control: untouched document")

    # 1. A field changed inside the signed payload.
    header, payload, sig = base.token.split(".")
    body = json.loads(jws.b64url_decode(payload))
    body["lines"][0]["quantity"] = 9
    forged = model.from_payload(body)
    token = f"{header}.{_b64(model.signed_bytes(forged))}.{sig}"
    write(
        "tampered-field.json",
        _document(token, list(base.certificates), model.to_payload(forged)),
        "signature_invalid",
        1,
        "quantity of line 1 changed from 1 to 9 in the signed payload",
    )

    # 2. A valid signature moved onto another prescription.
    victim = signing.sign(_prescription(issued, **{"lines.0.quantity": 3}), good)
    v_header, v_payload, _ = victim.token.split(".")
    token = f"{v_header}.{v_payload}.{sig}"
    write(
        "transplanted-signature.json",
        _document(token, list(base.certificates), model.to_payload(victim.prescription)),
        "signature_invalid",
        1,
        "signature of one prescription transplanted onto another",
    )

    # 3. Signed by a certificate the verifier has never seen (and not presented).
    stranger = signing.sign(_prescription(issued), unlisted)
    write(
        "unknown-signer.json",
        _document(stranger.token, [], model.to_payload(stranger.prescription)),
        "unknown_signer",
        1,
        "signer certificate neither presented nor in the trust store",
    )

    # 4. A certificate from an authority the trust store does not hold.
    rogue_doc = signing.sign(_prescription(issued), outsider)
    write(
        "untrusted-authority.json",
        rogue_doc.to_json_bytes(),
        "untrusted_chain",
        1,
        "signer certified by an authority outside the trust store (chain presented)",
    )

    # 5. Signed after the certificate expired.
    rx = _prescription(issued)
    token = jws.sign(model.signed_bytes(rx), expired.key, expired.kid)
    write(
        "expired-certificate.json",
        _document(token, [expired.certificate, authority.certificate], model.to_payload(rx)),
        "certificate_expired",
        1,
        "certificate expired before the issue date",
    )

    # 6. Signed with a revoked certificate.
    revoked_doc = signing.sign(_prescription(issued), revoked)
    write(
        "revoked-certificate.json",
        revoked_doc.to_json_bytes(),
        "certificate_revoked",
        1,
        "signer certificate listed in the authority's CRL",
    )

    # 7. The certificate's RPPS is not the prescription's prescriber.
    rx = _prescription(issued)
    token = jws.sign(model.signed_bytes(rx), other.key, other.kid)
    write(
        "rpps-mismatch.json",
        _document(token, [other.certificate, authority.certificate], model.to_payload(rx)),
        "prescriber_mismatch",
        1,
        "signed by a trusted prescriber whose RPPS differs",
    )

    # 8. alg: none.
    token = _b64(b'{"alg":"none","kid":"' + good.kid.encode() + b'"}') + "." + payload + "."
    write(
        "alg-none.json",
        _document(token, list(base.certificates), base_readable(base)),
        "signature_invalid",
        1,
        "unsigned token with alg none",
    )

    # 9. HS256 keyed with the signer's public key (algorithm confusion).
    public_pem = good.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _b64(canonical.dumps({"alg": "HS256", "kid": good.kid})) + "." + payload
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    write(
        "hs256-public-key.json",
        _document(signing_input + "." + _b64(mac), list(base.certificates), base_readable(base)),
        "signature_invalid",
        1,
        "HS256 MAC keyed with the public key",
    )

    # 10. A kid that tries to walk the file system.
    token = _raw_token(
        {"alg": "ES256", "kid": "../../../../etc/passwd"}, jws.b64url_decode(payload), good.key
    )
    write(
        "kid-path-traversal.json",
        _document(token, [], base_readable(base)),
        "unknown_signer",
        1,
        "kid with ../ used as a path",
    )

    # 11. Embedded key in the header (the verifier must not use it).
    token = _raw_token(
        {"alg": "ES256", "kid": good.kid, "jwk": {"kty": "EC"}},
        jws.b64url_decode(payload),
        good.key,
    )
    write(
        "embedded-jwk.json",
        _document(token, list(base.certificates), base_readable(base)),
        "signature_invalid",
        1,
        "jwk embedded in the protected header",
    )

    # 12. Duplicate keys: in the document and inside the signed payload.
    text = base.to_json_bytes().decode()
    write(
        "duplicate-keys-document.json",
        text.replace(
            '"format": "eprescrire/1",', '"format": "eprescrire/1",\n  "jws": "x.y.z",', 1
        ).encode(),
        "malformed",
        1,
        "the document repeats the jws key",
    )
    raw = model.signed_bytes(base.prescription).replace(
        b'"quantity":1,', b'"quantity":1,"quantity":9,', 1
    )
    token = jws.sign(raw, good.key, good.kid)
    write(
        "duplicate-keys-payload.json",
        _document(token, list(base.certificates), base_readable(base)),
        "malformed",
        1,
        "signed payload repeats a key (parsers would disagree)",
    )

    # 13. NaN and a huge number inside a validly signed payload.
    for name, needle, replacement in (
        ("nan-in-payload.json", b'"quantity":1,', b'"quantity":NaN,'),
        ("huge-number.json", b'"quantity":1,', b'"quantity":' + b"9" * 400 + b","),
    ):
        token = jws.sign(
            model.signed_bytes(base.prescription).replace(needle, replacement, 1),
            good.key,
            good.kid,
        )
        write(
            name,
            _document(token, list(base.certificates), base_readable(base)),
            "malformed",
            1,
            "validly signed payload with " + ("NaN" if "nan" in name else "a 400-digit number"),
        )

    # 14. Older than three months at the verification time (3 months + 1 day).
    old = signing.sign(_prescription(dt.datetime(2026, 8, 24, 10, 0, tzinfo=dt.UTC)), good)
    write(
        "older-than-3-months.json",
        old.to_json_bytes(),
        "expired",
        1,
        "issued 2026-08-24, verified 2026-11-25: first dispensing window closed",
    )
    edge = signing.sign(_prescription(dt.datetime(2026, 8, 25, 10, 0, tzinfo=dt.UTC)), good)
    write(
        "exactly-3-months.json",
        edge.to_json_bytes(),
        None,
        0,
        "control: issued 2026-08-25, verified 2026-11-25, the last day of the window",
    )

    # 15. Issued in the future.
    future = _prescription(NOW)
    future = model.from_payload({**model.to_payload(future), "issued_at": "2026-12-01T09:00:00Z"})
    token = jws.sign(model.signed_bytes(future), good.key, good.kid)
    write(
        "issued-in-future.json",
        _document(token, list(base.certificates), model.to_payload(future)),
        "not_yet_valid",
        1,
        "issue date after the verification time",
    )

    # 16. The readable copy lies about the content.
    lying = base_readable(base)
    lying["lines"][0]["quantity"] = 9
    write(
        "readable-copy-altered.json",
        _document(base.token, list(base.certificates), lying),
        "signature_invalid",
        1,
        "readable copy edited, JWS untouched",
    )

    # 17. Not ours at all.
    write(
        "not-a-prescription.json",
        b'{"resourceType": "MedicationRequest"}\n',
        "not_a_prescription",
        3,
        "a JSON document of another format",
    )

    (out / "manifest.json").write_text(
        json.dumps({"at": AT, "cases": manifest}, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    return manifest


def base_readable(document: signing.SignedDocument) -> dict:
    return model.to_payload(document.prescription)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
