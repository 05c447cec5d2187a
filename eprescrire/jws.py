"""ES256 compact JWS (RFC 7515 / RFC 7518 §3.4), with the algorithm pinned by the verifier.

The protected header is always the canonical ``{"alg":"ES256","kid":KID}``, so that the QR form
can rebuild the exact token from the kid alone. The token's header is parsed only to refuse
what must never be honoured (``none``, HS*, embedded ``jwk``/``jku``/``x5u``/``x5c``, ``crit``);
the key is chosen by the caller from the trust store, never from the token.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from eprescrire import canonical
from eprescrire.errors import Reason, VerificationError

ALGORITHM = "ES256"
SIGNATURE_BYTES = 64
KID_BYTES = 8
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_KID = re.compile(r"^[A-Za-z0-9_-]{11}$")  # base64url of 8 bytes, nothing else
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:  # non-canonical trailing bits
        raise ValueError("non-canonical base64url")
    return data


def header_bytes(kid: str) -> bytes:
    return canonical.dumps({"alg": ALGORITHM, "kid": kid})


def raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign(payload: bytes, key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """Return the compact JWS of ``payload`` signed with ``key`` (ES256)."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("ES256 needs a P-256 key")
    signing_input = b64url_encode(header_bytes(kid)) + "." + b64url_encode(payload)
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    return signing_input + "." + b64url_encode(raw_signature(der))


def assemble(kid: str, payload: bytes, signature: bytes) -> str:
    """Rebuild the exact compact JWS from its parts (used by the QR form)."""
    return ".".join(
        (b64url_encode(header_bytes(kid)), b64url_encode(payload), b64url_encode(signature))
    )


@dataclass(frozen=True)
class Token:
    """A parsed, *not yet verified* compact JWS."""

    kid: str  # an unauthenticated hint: it only selects a certificate
    payload: bytes
    signature: bytes
    signing_input: bytes


def parse(token: str, allowed: frozenset[str] = frozenset({ALGORITHM})) -> Token:
    """Split and check a compact JWS; the algorithm must be one the trust store allows.

    On failure, raises :class:`VerificationError` (``malformed`` or ``signature_invalid``).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise VerificationError(Reason.MALFORMED, "JWS must have three parts")
    try:
        header_raw = b64url_decode(parts[0])
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
        header = canonical.loads(header_raw)
    except (ValueError, canonical.StrictJSONError) as e:
        raise VerificationError(Reason.MALFORMED, f"JWS is not well formed: {e}") from e
    if not isinstance(header, dict):
        raise VerificationError(Reason.MALFORMED, "JWS header is not an object")
    alg = header.get("alg")
    if alg not in allowed:
        # Pinned: 'none', HS256 keyed with a public key and friends never reach a verifier.
        raise VerificationError(
            Reason.SIGNATURE_INVALID, f"signature algorithm {str(alg)[:20]!r} is not allowed"
        )
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
    if len(signature) != SIGNATURE_BYTES:
        raise VerificationError(Reason.SIGNATURE_INVALID, "ES256 signature must be 64 bytes")
    return Token(
        kid=kid,
        payload=payload,
        signature=signature,
        signing_input=(parts[0] + "." + parts[1]).encode("ascii"),
    )


def verify(token: Token, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check the ES256 signature. On failure, raises :class:`VerificationError`."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise VerificationError(Reason.SIGNATURE_INVALID, "signer key is not P-256")
    r = int.from_bytes(token.signature[:32], "big")
    s = int.from_bytes(token.signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s), token.signing_input, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as e:
        raise VerificationError(
            Reason.SIGNATURE_INVALID, "signature does not match the content"
        ) from e
