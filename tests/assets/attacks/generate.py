"""Generate the negative corpus: one signed document per attack, with its expected verdict.

Run ``python tests/assets/attacks/generate.py [DIR]`` to rebuild it (default: this folder).
Everything is verified as of ``AT`` (see manifest.json), with the corpus's own trust store in
``trust/`` (a test authority, its CRL with one revoked prescriber, one known signer). The keys
used to make the corpus are thrown away: only certificates and documents are written.

The RSA cases (PS256/RS256, as CPS cards sign) have their own authority and three trust stores
that differ only by ``trust.toml``: ``trust-rsa/`` allows ES256, PS256 and RS256,
``trust-ps256/`` PS256 only, ``trust-rsa-default/`` says nothing (ES256 only). A case names its
store in the manifest (``"trust"``; ``trust/`` when absent). ``generate.py --rsa-only [DIR]``
rebuilds only those.
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

    # 18. A trusted prescriber's key signing under another prescriber's name and specialty:
    # authentic, but the name shown is the certificate's and the verdict says so.
    impostor = _prescription(
        issued, **{"prescriber.name": "Pr Jean Dupont", "prescriber.specialty": "Oncologie"}
    )
    write(
        "name-not-certificate.json",
        signing.sign(impostor, good, allow_name_mismatch=True, now=issued).to_json_bytes(),
        None,
        0,
        "signed by Dr Corpus Test's key under the name Pr Jean Dupont, Oncologie",
    )
    manifest["name-not-certificate.json"]["warning"] = "is not the name in the signing certificate"

    # 19. Back-dated into the validity of a certificate that has since expired: the signing
    # time is self-asserted, so the verdict warns.
    lapsed = prescriber(authority, days=(NOW - START).days - 1)  # ended the day before AT
    write(
        "expired-since-signing.json",
        signing.sign(_prescription(issued), lapsed, now=issued).to_json_bytes(),
        None,
        0,
        "signed 2026-11-23 by a certificate that expired on 2026-11-24 (stated time)",
    )
    manifest["expired-since-signing.json"]["warning"] = "after the stated signing time"
    store.add_certificate(lapsed.certificate, now=issued)

    manifest.update(generate_rsa(out))
    _write_manifest(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict[str, dict[str, object]]) -> None:
    (out / "manifest.json").write_text(
        json.dumps({"at": AT, "cases": manifest}, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )


RSA_STORES = {
    "trust-rsa": 'algorithms = ["ES256", "PS256", "RS256"]\n',
    "trust-ps256": 'algorithms = ["PS256"]\n',
    "trust-rsa-default": None,
}


def _rsa_certificate(authority: keys.Credentials, public_key: object, like: object) -> object:
    """A prescriber certificate for any RSA key (even a weak one), shaped like ``like``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    builder = (
        x509.CertificateBuilder()
        .subject_name(like.subject)  # type: ignore[attr-defined]
        .issuer_name(like.issuer)  # type: ignore[attr-defined]
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(like.not_valid_before_utc)  # type: ignore[attr-defined]
        .not_valid_after(like.not_valid_after_utc)  # type: ignore[attr-defined]
    )
    for extension in like.extensions:  # type: ignore[attr-defined]
        if isinstance(extension.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
                critical=False,
            )
        else:
            builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(authority.key, hashes.SHA256())  # type: ignore[arg-type]


def generate_rsa(out: Path) -> dict[str, dict[str, object]]:
    """The RSA cases: controls, algorithm confusion, a weak key, key type/algorithm mismatch."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    for name in RSA_STORES:
        if (out / name).exists():
            shutil.rmtree(out / name)
    for old in out.glob("*.json"):
        if old.name.startswith(("rsa-", "rs256-", "ps256-", "es256-")):
            old.unlink()
    authority = keys.new_authority("Corpus RSA authority", not_before=START, days=7300)

    def prescriber(public_key: object) -> object:
        return keys.certify_prescriber(
            authority,
            public_key,  # type: ignore[arg-type]
            name="Dr Corpus Test",
            rpps=RPPS,
            specialty="Médecine générale",
            not_before=START,
            days=3650,
        )

    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_cert = prescriber(rsa_key.public_key())
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = prescriber(ec_key.public_key())
    weak_key = rsa.generate_private_key(65537, 1024)
    weak_cert = _rsa_certificate(authority, weak_key.public_key(), rsa_cert)
    other_rsa = rsa.generate_private_key(65537, 2048)

    first = out / "trust-rsa"
    store = TrustStore.create(first)
    store.add_certificate(authority.certificate, now=NOW)
    store.add_crl(keys.new_crl(authority, now=START, days=7300))
    for name in RSA_STORES:
        if name != "trust-rsa":
            shutil.copytree(first, out / name)
    for name, config in RSA_STORES.items():
        if config is not None:
            (out / name / "trust.toml").write_text(config, "utf-8")

    issued = NOW - dt.timedelta(days=2)
    prescription = _prescription(issued)
    payload = model.signed_bytes(prescription)
    readable = model.to_payload(prescription)
    kid_rsa, kid_ec, kid_weak = (keys.kid_of(c) for c in (rsa_cert, ec_cert, weak_cert))  # type: ignore[arg-type]
    ps256 = jws.sign(payload, rsa_key, kid_rsa, rsa_algorithm=jws.PS256)
    rs256 = jws.sign(payload, rsa_key, kid_rsa, rsa_algorithm=jws.RS256)
    manifest: dict[str, dict[str, object]] = {}

    def write(
        name: str, token: str, cert: object, reason: str | None, code: int, what: str, trust: str
    ) -> None:
        (out / name).write_bytes(_document(token, [cert], readable))
        manifest[name] = {"reason": reason, "exit": code, "attack": what, "trust": trust}

    def relabel(token: str, alg: str) -> str:
        _, body, signature = token.split(".")
        return f"{_b64(jws.header_bytes(kid_rsa, alg))}.{body}.{signature}"

    write(
        "rsa-ps256-valid.json",
        ps256,
        rsa_cert,
        None,
        0,
        "control: PS256 by an RSA-2048 key",
        "trust-rsa",
    )
    write(
        "rsa-rs256-valid.json",
        rs256,
        rsa_cert,
        None,
        0,
        "control: RS256 by an RSA-2048 key",
        "trust-rsa",
    )
    write(
        "rs256-verified-as-ps256.json",
        relabel(rs256, jws.PS256),
        rsa_cert,
        "signature_invalid",
        1,
        "RS256 (PKCS#1 v1.5) signature under a header relabelled PS256",
        "trust-rsa",
    )
    write(
        "ps256-verified-as-rs256.json",
        relabel(ps256, jws.RS256),
        rsa_cert,
        "signature_invalid",
        1,
        "PS256 (PSS) signature under a header relabelled RS256",
        "trust-rsa",
    )
    write(
        "rsa-1024-key.json",
        jws.sign(payload, weak_key, kid_weak),
        weak_cert,
        "signature_invalid",
        1,
        "PS256 by a 1024-bit RSA key certified by a trusted authority",
        "trust-rsa",
    )
    write(
        "es256-header-rsa-key.json",
        jws.sign(payload, ec.generate_private_key(ec.SECP256R1()), kid_rsa),
        rsa_cert,
        "signature_invalid",
        1,
        "ES256 token whose kid names an RSA certificate (key type/algorithm mismatch)",
        "trust-rsa",
    )
    write(
        "ps256-header-ec-key.json",
        jws.sign(payload, other_rsa, kid_ec),
        ec_cert,
        "signature_invalid",
        1,
        "PS256 token whose kid names a P-256 certificate (key type/algorithm mismatch)",
        "trust-rsa",
    )
    write(
        "rs256-not-pinned.json",
        rs256,
        rsa_cert,
        "signature_invalid",
        1,
        "valid RS256 token, trust store pins PS256 only",
        "trust-ps256",
    )
    write(
        "ps256-not-pinned.json",
        ps256,
        rsa_cert,
        "signature_invalid",
        1,
        "valid PS256 token, trust store without algorithms (ES256 only)",
        "trust-rsa-default",
    )
    return manifest


def base_readable(document: signing.SignedDocument) -> dict:
    return model.to_payload(document.prescription)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--rsa-only"]
    target = Path(arguments[0]) if arguments else HERE
    if "--rsa-only" in sys.argv[1:]:
        existing = json.loads((target / "manifest.json").read_text("utf-8"))["cases"]
        kept = {k: v for k, v in existing.items() if "trust" not in v}
        _write_manifest(target, kept | generate_rsa(target))
    else:
        generate(target)
