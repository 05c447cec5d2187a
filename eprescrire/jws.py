"""Compact JWS (RFC 7515) in ES256, PS256 or RS256 (RFC 7518 §3.3-3.5), the algorithm pinned
by the verifier.

ES256 (ECDSA P-256, SHA-256) is the default. PS256 (RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte
salt) and RS256 (RSASSA-PKCS1-v1_5, SHA-256) exist for signers whose key is RSA, as French CPS
cards are; RSA keys must have at least 2048 bits. The key type must match the algorithm.

The protected header is always the canonical ``{"alg":ALG,"kid":KID}``, so that the QR form
can rebuild the exact token from the algorithm and the kid alone. The token's header is parsed only to refuse
what must never be honoured (``none``, HS*, embedded ``jwk``/``jku``/``x5u``/``x5c``, ``crit``);
the key is chosen by the caller from the trust store, never from the token.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from eprescrire import canonical
from eprescrire.errors import Reason, VerificationError

ALGORITHM = "ES256"
PS256 = "PS256"
RS256 = "RS256"
RSA_ALGORITHMS = frozenset({PS256, RS256})
#: Every algorithm this module signs and verifies; a trust store allows a subset of them.
ALGORITHMS = frozenset({ALGORITHM, PS256, RS256})
SIGNATURE_BYTES = 64  # ES256
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
PSS_SALT_BYTES = 32  # RFC 7518 §3.5: the salt is as long as the hash
KID_BYTES = 8
_B64URL_TEXT = re.compile(r"[A-Za-z0-9_-]*")  # with fullmatch: no line end slips through $
_KID = re.compile(r"^[A-Za-z0-9_-]{11}$")  # base64url of 8 bytes, nothing else
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_B64URL_VALUES = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_B64URL_SPARE = {2: 0b1111, 3: 0b11}  # unused low bits of the last character, by length % 4
#: The header every token of ours has (``header_bytes``): read without a JSON parser, with
#: exactly the result ``canonical.loads`` gives for it; any other header is parsed.
_CANONICAL_HEADER = re.compile(rb'\{"alg":"(ES256|PS256|RS256)","kid":"([A-Za-z0-9_-]{11})"\}')


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not _B64URL_TEXT.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Canonical: the bits of the last character beyond the data (4 of them after 1 byte of a
    # group, 2 after 2 bytes) are zero, i.e. encoding the data again gives the same text.
    if len(text) % 4 and _B64URL_VALUES[text[-1]] & _B64URL_SPARE[len(text) % 4]:
        raise ValueError("non-canonical base64url")
    return data


def header_bytes(kid: str, alg: str = ALGORITHM) -> bytes:
    if alg not in ALGORITHMS:
        raise ValueError(f"unsupported JWS algorithm {alg!r}")
    if _B64URL_TEXT.fullmatch(kid):  # nothing to escape: the bytes canonical.dumps gives
        return b'{"alg":"' + alg.encode("ascii") + b'","kid":"' + kid.encode("ascii") + b'"}'
    return canonical.dumps({"alg": alg, "kid": kid})


def raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def pss_padding() -> padding.PSS:
    """RFC 7518 §3.5: MGF1 with SHA-256, a salt as long as the hash."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_BYTES)


@runtime_checkable
class RawSigner(Protocol):
    """A private key kept elsewhere (a PKCS#11 token): it signs JWS signing input.

    ``sign`` returns the signature in its JWS form (raw ``r || s`` for ES256, the RSA signature
    for PS256/RS256) over ``data`` hashed with SHA-256 by the signer or the token.
    """

    @property
    def algorithm(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | RawSigner


def algorithm_of(key: SigningKey, rsa_algorithm: str = PS256) -> str:
    """The JWS algorithm a key signs with: ES256 for P-256, PS256 (or RS256) for RSA."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("ES256 needs a P-256 key")
        return ALGORITHM
    if isinstance(key, rsa.RSAPrivateKey):
        if rsa_algorithm not in RSA_ALGORITHMS:
            raise ValueError(f"an RSA key signs PS256 or RS256, not {rsa_algorithm}")
        return rsa_algorithm
    return key.algorithm


def sign(payload: bytes, key: SigningKey, kid: str, *, rsa_algorithm: str = PS256) -> str:
    """Return the compact JWS of ``payload`` signed with ``key``.

    A P-256 key signs ES256, an RSA key PS256 (RS256 when asked), a :class:`RawSigner` its own
    algorithm.
    """
    alg = algorithm_of(key, rsa_algorithm)
    signing_input = (b64url_encode(header_bytes(kid, alg)) + "." + b64url_encode(payload)).encode(
        "ascii"
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = raw_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    elif isinstance(key, rsa.RSAPrivateKey):
        scheme: padding.AsymmetricPadding = pss_padding() if alg == PS256 else padding.PKCS1v15()
        signature = key.sign(signing_input, scheme, hashes.SHA256())
    else:
        signature = key.sign(signing_input)
    return signing_input.decode("ascii") + "." + b64url_encode(signature)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def assemble(kid: str, payload: bytes, signature: bytes, alg: str = ALGORITHM) -> str:
    """Rebuild the exact compact JWS from its parts (used by the QR form)."""
    return ".".join(
        (
            b64url_encode(header_bytes(kid, alg)),
            b64url_encode(payload),
            b64url_encode(signature),
        )
    )


@dataclass(frozen=True)
class Token:
    """A parsed, *not yet verified* compact JWS."""

    kid: str  # an unauthenticated hint: it only selects a certificate
    payload: bytes
    signature: bytes
    signing_input: bytes
    alg: str = ALGORITHM  # one the caller allowed; the key must match it


def parse(token: str, allowed: frozenset[str] = ALGORITHMS) -> Token:
    """Split and check a compact JWS; the algorithm must be one of ``allowed``.

    A verifier passes the algorithms its trust store pins. The default, every algorithm this
    module supports, is for signatures checked against one known certificate (a cancellation,
    a ledger record, the issuer's own document): :func:`verify` still refuses a key that does
    not match the algorithm.

    On failure, raises :class:`VerificationError` (``malformed`` or ``signature_invalid``).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise VerificationError(Reason.MALFORMED, "JWS must have three parts")
    try:
        header_raw = b64url_decode(parts[0])
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
        known = _CANONICAL_HEADER.fullmatch(header_raw)
        header = (
            {"alg": known[1].decode("ascii"), "kid": known[2].decode("ascii")}
            if known
            else canonical.loads(header_raw)
        )
    except (ValueError, canonical.StrictJSONError) as e:
        raise VerificationError(Reason.MALFORMED, f"JWS is not well formed: {e}") from e
    if not isinstance(header, dict):
        raise VerificationError(Reason.MALFORMED, "JWS header is not an object")
    return _checked(
        header, payload, signature, (parts[0] + "." + parts[1]).encode("ascii"), allowed
    )


def assembled(
    kid: str, payload: bytes, signature: bytes, alg: str, allowed: frozenset[str] = ALGORITHMS
) -> tuple[str, Token]:
    """``(assemble(kid, payload, signature, alg), parse(that, allowed))`` for parts a verifier
    rebuilt itself (the QR form), with the same checks and errors as :func:`parse`, without
    reading back the base64url it has just written."""
    header = _encoded_header(kid, alg)
    if header is None:
        token = assemble(kid, payload, signature, alg)  # an unusual kid: parse decides
        return token, parse(token, allowed)
    # _checked's checks: the header {"alg", "kid"} has no other field, and its kid has the shape.
    _check_allowed(alg, allowed)
    _check_signature_size(alg, signature)
    text = header + b64url_encode(payload)
    signing_input = text.encode("ascii")
    parsed = Token(
        kid=kid, payload=payload, signature=signature, signing_input=signing_input, alg=alg
    )
    return text + "." + b64url_encode(signature), parsed


def _encoded_header(kid: str, alg: str) -> str | None:
    """``b64url_encode(header_bytes(kid, alg)) + "."`` for a kid of the canonical shape and a
    known algorithm (remembered for the few signers a verifier meets), else None."""
    known = _ENCODED_HEADERS.get((kid, alg))
    if known is not None:
        return known
    if alg not in ALGORITHMS or not _KID.match(kid):
        return None
    encoded = b64url_encode(header_bytes(kid, alg)) + "."
    if len(_ENCODED_HEADERS) >= 256:
        _ENCODED_HEADERS.clear()
    _ENCODED_HEADERS[(kid, alg)] = encoded
    return encoded


_ENCODED_HEADERS: dict[tuple[str, str], str] = {}


def _check_allowed(alg: object, allowed: frozenset[str]) -> None:
    if alg not in allowed:
        # Pinned: 'none', HS256 keyed with a public key and friends never reach a verifier.
        raise VerificationError(
            Reason.SIGNATURE_INVALID, f"signature algorithm {str(alg)[:20]!r} is not allowed"
        )


def _check_signature_size(alg: object, signature: bytes) -> None:
    if alg == ALGORITHM and len(signature) != SIGNATURE_BYTES:
        raise VerificationError(Reason.SIGNATURE_INVALID, "ES256 signature must be 64 bytes")
    if alg in RSA_ALGORITHMS and not MIN_RSA_BITS // 8 <= len(signature) <= MAX_RSA_BITS // 8:
        raise VerificationError(
            Reason.SIGNATURE_INVALID, f"{alg} signature must come from an RSA key of 2048+ bits"
        )


def _checked(
    header: dict[str, object],
    payload: bytes,
    signature: bytes,
    signing_input: bytes,
    allowed: frozenset[str],
) -> Token:
    """The :class:`Token` of a decoded JWS header and parts, or :class:`VerificationError`."""
    alg = header.get("alg")
    _check_allowed(alg, allowed)
    embedded = _FORBIDDEN_HEADERS.intersection(header)
    if embedded:
        raise VerificationError(
            Reason.SIGNATURE_INVALID,
            f"JWS header carries {', '.join(sorted(embedded))}: "
            "keys come from the trust store only",
        )
    unknown = set(header) - {"alg", "kid", "typ"}
    if unknown:
        raise VerificationError(Reason.MALFORMED, "JWS header has unexpected fields")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.match(kid):
        raise VerificationError(Reason.UNKNOWN_SIGNER, "JWS kid is not a certificate key id")
    _check_signature_size(alg, signature)
    return Token(
        kid=kid, payload=payload, signature=signature, signing_input=signing_input, alg=str(alg)
    )


def check_key(alg: str, public_key: object) -> None:
    """Refuse a key that does not match ``alg``: ES256 needs P-256, PS256/RS256 an RSA key of
    2048 to 4096 bits. Raises :class:`VerificationError` (``signature_invalid``).

    A key object that passed for ``alg`` is remembered (held, so that its id is not reused):
    a verifier meets the same few signer keys again and again."""
    known = _KEYS_PASSED.get(id(public_key))
    if known is not None and known[0] is public_key and known[1] == alg:
        return
    _check_key(alg, public_key)
    if len(_KEYS_PASSED) >= 256:
        _KEYS_PASSED.clear()
    _KEYS_PASSED[id(public_key)] = (public_key, alg)


_KEYS_PASSED: dict[int, tuple[object, str]] = {}
#: ECDSA with SHA-256: a parameter object, the same for every ES256 check.
_ES256 = ec.ECDSA(hashes.SHA256())


def _check_key(alg: str, public_key: object) -> None:
    if alg == ALGORITHM:
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise VerificationError(Reason.SIGNATURE_INVALID, "signer key is not P-256 (ES256)")
    elif alg in RSA_ALGORITHMS:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise VerificationError(Reason.SIGNATURE_INVALID, f"signer key is not RSA ({alg})")
        if not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
            raise VerificationError(
                Reason.SIGNATURE_INVALID,
                f"signer RSA key has {public_key.key_size} bits; at least {MIN_RSA_BITS} needed",
            )
    else:
        raise VerificationError(Reason.SIGNATURE_INVALID, f"algorithm {alg[:20]!r} unsupported")


def verify(token: Token, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> None:
    """Check the signature with ``public_key``, which must match the token's algorithm.

    On failure, raises :class:`VerificationError`."""
    check_key(token.alg, public_key)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if len(token.signature) != (public_key.key_size + 7) // 8:
                raise InvalidSignature
            scheme: padding.AsymmetricPadding = (
                pss_padding() if token.alg == PS256 else padding.PKCS1v15()
            )
            public_key.verify(token.signature, token.signing_input, scheme, hashes.SHA256())
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            r = int.from_bytes(token.signature[:32], "big")
            s = int.from_bytes(token.signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), token.signing_input, _ES256)
    except InvalidSignature as e:
        raise VerificationError(
            Reason.SIGNATURE_INVALID, "signature does not match the content"
        ) from e
