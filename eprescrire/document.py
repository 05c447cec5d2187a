"""The signed document format (``rx.json``) and the other small signed files' envelope.

A signed document is::

    {"format": "eprescrire/1", "id": ID, "jws": COMPACT-JWS,
     "certificates": [signer DER (base64), ...], "readable": {...}}

Only the JWS is trusted. ``readable`` is a convenience copy for people and is never used by the
verifier: what a verdict shows is decoded from the verified JWS payload. This module reads and
writes the format; :mod:`eprescrire.signing` signs and verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509

from eprescrire import canonical, model
from eprescrire.errors import Reason, VerificationError
from eprescrire.keys import certificate_from_base64, der_base64

DOCUMENT_FORMAT = "eprescrire/1"
MAX_CERTIFICATES = 4
MAX_SIGNED_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SignedDocument:
    """A signed prescription: its compact JWS, the signer's certificates, its content."""

    token: str
    certificates: tuple[x509.Certificate, ...]
    prescription: model.Prescription

    def to_json_bytes(self) -> bytes:
        body = {
            "format": DOCUMENT_FORMAT,
            "id": self.prescription.id,
            "jws": self.token,
            "certificates": [der_base64(c) for c in self.certificates],
            "readable": model.to_payload(self.prescription),
        }
        import json

        return (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def parse_document(data: bytes) -> tuple[str, list[x509.Certificate], Any]:
    """Split a signed JSON document into token, presented certificates and readable copy.

    On failure, raises :class:`VerificationError` (``malformed`` or ``not_a_prescription``).
    """
    try:
        body = canonical.loads(data)
    except canonical.StrictJSONError as e:
        raise VerificationError(Reason.MALFORMED, f"signed document is not strict JSON: {e}") from e
    if not isinstance(body, dict) or body.get("format") != DOCUMENT_FORMAT:
        raise VerificationError(
            Reason.NOT_A_PRESCRIPTION, "not an eprescrire signed document (format field)"
        )
    unknown = set(body) - {"format", "id", "jws", "certificates", "readable"}
    if unknown:
        raise VerificationError(Reason.MALFORMED, "signed document has unexpected fields")
    token = body.get("jws")
    if not isinstance(token, str) or len(token) > 64_000:
        raise VerificationError(Reason.MALFORMED, "signed document has no JWS")
    raw_certs = body.get("certificates", [])
    if not isinstance(raw_certs, list) or len(raw_certs) > MAX_CERTIFICATES:
        raise VerificationError(Reason.MALFORMED, "certificates must be a short list")
    certificates = []
    for item in raw_certs:
        try:
            if not isinstance(item, str):
                raise ValueError
            certificates.append(fully_parsed(certificate_from_base64(item)))
        except Exception as e:  # any parser failure (InvalidVersion, DuplicateExtension, ...)
            raise VerificationError(Reason.MALFORMED, "a presented certificate is not X.509") from e
    return token, certificates, body.get("readable")


def fully_parsed(certificate: x509.Certificate) -> x509.Certificate:
    """Force the lazy parts of a certificate to parse now, so that a broken one is refused
    here (ValueError) rather than deep inside verification."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a malformed country name: refused below anyway
        _ = certificate.subject, certificate.issuer, certificate.serial_number
        _ = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        _ = list(certificate.extensions), certificate.public_key(), certificate.signature
    return certificate


def read_signed_file(data: bytes, file_format: str, what: str) -> tuple[str, x509.Certificate]:
    """The JWS and the one signer certificate of a small signed file (a cancellation, a ledger
    checkpoint): strict JSON ``{"format": file_format, "jws": ..., "certificates": [DER]}``.

    Only the shape is checked here; the caller checks the signature and decides whether the
    certificate is one to trust. On failure, raises :class:`VerificationError`.
    """
    if len(data) > MAX_SIGNED_FILE_BYTES:
        raise VerificationError(Reason.MALFORMED, f"{what} file too large")
    try:
        body = canonical.loads(data)
    except canonical.StrictJSONError as e:
        raise VerificationError(Reason.MALFORMED, f"{what} file is not strict JSON: {e}") from e
    if not isinstance(body, dict) or body.get("format") != file_format:
        raise VerificationError(Reason.NOT_A_PRESCRIPTION, f"not an eprescrire {what} file")
    token, raw = body.get("jws"), body.get("certificates")
    if (
        set(body) != {"format", "jws", "certificates"}
        or not isinstance(token, str)
        or not isinstance(raw, list)
        or len(raw) != 1
        or not isinstance(raw[0], str)
    ):
        raise VerificationError(
            Reason.MALFORMED, f"a {what} file holds one JWS and its signer certificate"
        )
    try:
        certificate = fully_parsed(certificate_from_base64(raw[0]))
    except Exception as e:  # any parser failure (InvalidVersion, DuplicateExtension, ...)
        raise VerificationError(Reason.MALFORMED, f"the {what} certificate is not X.509") from e
    return token, certificate
