"""Issue signed prescriptions and verify them: ``sign()`` and ``verify_*() -> Verdict``.

A signed document (``rx.json``) is::

    {"format": "eprescrire/1", "id": ID, "jws": COMPACT-JWS,
     "certificates": [signer DER (base64), ...], "readable": {...}}

Only the JWS is trusted. ``readable`` is a convenience copy for people and is never used by the
verifier: what a verdict shows is decoded from the verified JWS payload.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

from eprescrire import canonical, jws, model, rules
from eprescrire.errors import (
    UNREADABLE_REASONS,
    ExitCode,
    FieldError,
    Reason,
    ValidationError,
    VerificationError,
)
from eprescrire.keys import (
    Credentials,
    certificate_from_base64,
    common_name,
    der_base64,
    kid_of,
    rpps_of,
)
from eprescrire.trust import TrustStore

DOCUMENT_FORMAT = "eprescrire/1"
MAX_CERTIFICATES = 4
MAX_SIGNED_FILE_BYTES = 64 * 1024

Status = Literal["valid", "rejected", "unreadable"]
#: Reasons that leave the prescription authentic: its content can be shown.
AUTHENTIC_REASONS = frozenset(
    {
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.CANCELLED,
        Reason.FULLY_DISPENSED,
        Reason.QUANTITY_EXCEEDED,
    }
)


@dataclass(frozen=True)
class SignedDocument:
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


def sign(prescription: model.Prescription, credentials: Credentials) -> SignedDocument:
    """Sign ``prescription`` with the prescriber's credentials (ES256, kid from the certificate).

    The certificate's RPPS must be the prescription's prescriber RPPS, and the certificate must
    be valid at the issue time; otherwise raises :class:`~eprescrire.errors.ValidationError`.
    """
    certificate = credentials.certificate
    problems = []
    if rpps_of(certificate) != prescription.prescriber.rpps:
        problems.append(
            FieldError("prescriber.rpps", "does not match the RPPS of the signing certificate")
        )
    if (
        not certificate.not_valid_before_utc
        <= prescription.issued_at
        <= (certificate.not_valid_after_utc)
    ):
        problems.append(
            FieldError("issued", "the signing certificate is not valid at the issue date")
        )
    if problems:
        raise ValidationError(problems)
    token = jws.sign(model.signed_bytes(prescription), credentials.key, kid_of(certificate))
    return SignedDocument(
        token=token,
        certificates=(certificate, *credentials.chain),
        prescription=prescription,
    )


# --------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class ReasonItem:
    code: Reason
    message: str


@dataclass(frozen=True)
class Signer:
    rpps: str | None
    name: str
    kid: str


@dataclass
class Verdict:
    input: str
    id: str | None = None
    reasons: list[ReasonItem] = field(default_factory=list)
    prescription: model.Prescription | None = None
    signer: Signer | None = None
    warnings: list[str] = field(default_factory=list)
    dispensing: dict[str, Any] | None = None
    token: str | None = None  # the verified compact JWS, when the signature held

    @property
    def status(self) -> Status:
        if not self.reasons:
            return "valid"
        if all(r.code in UNREADABLE_REASONS for r in self.reasons):
            return "unreadable"
        return "rejected"

    @property
    def exit_code(self) -> ExitCode:
        return {
            "valid": ExitCode.OK,
            "rejected": ExitCode.REJECTED,
            "unreadable": ExitCode.UNREADABLE,
        }[self.status]

    @property
    def authentic(self) -> bool:
        """Signed by a trusted, unrevoked prescriber: the content may be shown."""
        return self.prescription is not None and all(
            r.code in AUTHENTIC_REASONS for r in self.reasons
        )

    def reject(self, code: Reason, message: str) -> None:
        self.reasons.append(ReasonItem(code, message))

    def to_json(self) -> dict[str, Any]:
        # Identifier, signer and content come from the signed payload: shown only when it is
        # authentic, never for a document signed by an untrusted or revoked key.
        authentic = self.authentic
        return {
            "input": self.input,
            "status": self.status,
            "id": self.id if authentic else None,
            "reasons": [{"code": r.code.value, "message": r.message} for r in self.reasons],
            "prescription": (
                model.to_payload(self.prescription) if authentic and self.prescription else None
            ),
            "signer": (
                {"rpps": self.signer.rpps, "name": self.signer.name, "kid": self.signer.kid}
                if authentic and self.signer is not None
                else None
            ),
            "dispensing": self.dispensing,
            "warnings": self.warnings,
        }


def overall_exit(verdicts: list[Verdict]) -> ExitCode:
    """SPEC §3 over several verdicts (:func:`eprescrire.results.batch_exit`)."""
    from eprescrire.results import batch_exit

    return batch_exit(v.exit_code for v in verdicts)


def failed(source: str, error: VerificationError) -> Verdict:
    verdict = Verdict(input=source)
    assert error.reason is not None
    verdict.reject(error.reason, str(error))
    return verdict


# --------------------------------------------------------------------------------------------
# Verification


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


def verify_token(
    source: str,
    token: str,
    store: TrustStore,
    at: dt.datetime,
    presented: list[x509.Certificate] | None = None,
) -> Verdict:
    """Verify a compact JWS against the trust store as of ``at``; never raises for bad input."""
    verdict = Verdict(input=source)
    try:
        parsed = jws.parse(token, store.algorithms)
    except VerificationError as e:
        assert e.reason is not None
        verdict.reject(e.reason, str(e))
        return verdict
    presented = presented or []
    certificate = store.find_signer(parsed.kid, presented)
    if certificate is None:
        verdict.reject(Reason.UNKNOWN_SIGNER, f"no known certificate for key id {parsed.kid}")
        return verdict
    verdict.signer = Signer(
        rpps=rpps_of(certificate), name=common_name(certificate), kid=parsed.kid
    )
    try:
        jws.verify(parsed, certificate.public_key())  # type: ignore[arg-type]
    except VerificationError as e:
        assert e.reason is not None
        verdict.reject(e.reason, str(e))
        return verdict
    try:
        payload = canonical.loads(parsed.payload)
        prescription = model.from_payload(payload)
    except canonical.StrictJSONError as e:
        verdict.reject(Reason.MALFORMED, f"signed content is not strict JSON: {e}")
        return verdict
    except ValidationError as e:
        verdict.reject(Reason.MALFORMED, f"signed content breaks the format: {e}")
        return verdict
    if model.signed_bytes(prescription) != parsed.payload:
        verdict.reject(Reason.MALFORMED, "signed content is not in canonical form")
        return verdict
    verdict.id = prescription.id
    verdict.token = token
    verdict.prescription = prescription
    intermediates = [c for c in presented if c is not certificate and _is_intermediate(c)]
    try:
        chain = store.validate(certificate, intermediates, prescription.issued_at)
    except VerificationError as e:
        assert e.reason is not None
        verdict.reject(e.reason, str(e))
    else:
        verdict.warnings.extend(store.stale_crls(chain, at))
        if any(c not in chain for c in presented):
            verdict.reject(
                Reason.MALFORMED, "the document presents a certificate outside the signer's chain"
            )
    if verdict.signer.rpps != prescription.prescriber.rpps:
        verdict.reject(
            Reason.PRESCRIBER_MISMATCH,
            "the prescriber RPPS differs from the RPPS of the signing certificate",
        )
    check_dates(verdict, prescription, at)
    return verdict


def _is_intermediate(certificate: x509.Certificate) -> bool:
    # Authorities presented with a document are never anchors; only the trust store's are.
    return certificate.issuer != certificate.subject


def check_dates(verdict: Verdict, prescription: model.Prescription, at: dt.datetime) -> None:
    """Issue date not in the future, first dispensing within three months (SPEC §6)."""
    if prescription.issued_at > at + model.CLOCK_SKEW:
        verdict.reject(
            Reason.NOT_YET_VALID,
            f"issued {model.format_timestamp(prescription.issued_at)}, after the verification time",
        )
    elif not rules.within_first_window(prescription.issued_at, at):
        deadline = rules.first_dispensing_deadline(prescription.issued_at)
        verdict.reject(
            Reason.EXPIRED,
            f"first dispensing was due by {deadline.isoformat()} (3 months after issue)",
        )


def verify_document(source: str, data: bytes, store: TrustStore, at: dt.datetime) -> Verdict:
    """Verify a signed JSON document; never raises for bad input.

    The file is a signed artefact: besides the JWS, its readable copy and its layout must be
    exactly what ``issue`` wrote (line endings aside), so that no byte of it can be changed
    without the verdict saying so.
    """
    try:
        token, certificates, readable = parse_document(data)
    except VerificationError as e:
        return failed(source, e)
    verdict = verify_token(source, token, store, at, certificates)
    if verdict.prescription is not None and verdict.token is not None:
        expected = SignedDocument(
            token=token, certificates=tuple(certificates), prescription=verdict.prescription
        ).to_json_bytes()
        if data.replace(b"\r\n", b"\n") != expected:
            if readable != model.to_payload(verdict.prescription):
                verdict.reject(
                    Reason.SIGNATURE_INVALID,
                    "the readable copy in the file differs from the signed content",
                )
            else:
                verdict.reject(Reason.MALFORMED, "the document was altered outside its signature")
    return verdict


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


def load_document(data: bytes) -> SignedDocument:
    """Read a signed JSON document for re-use on the issuing side (render, qr, cancel).

    The content is taken from the JWS payload, never from the readable copy, and the signature
    is checked against the signer certificate presented in the document (whose trust is the
    verifier's business). On failure, raises :class:`VerificationError`.
    """
    token, certificates, _ = parse_document(data)
    parsed = jws.parse(token)
    signer = next((c for c in certificates if kid_of(c) == parsed.kid), None)
    if signer is None:
        raise VerificationError(
            Reason.UNKNOWN_SIGNER, "the document does not carry its signer certificate"
        )
    jws.verify(parsed, signer.public_key())  # type: ignore[arg-type]
    try:
        prescription = model.from_payload(canonical.loads(parsed.payload))
    except (canonical.StrictJSONError, ValidationError) as e:
        raise VerificationError(Reason.MALFORMED, f"signed content breaks the format: {e}") from e
    if model.signed_bytes(prescription) != parsed.payload:
        raise VerificationError(Reason.MALFORMED, "signed content is not in canonical form")
    ordered = (signer, *(c for c in certificates if c is not signer))
    return SignedDocument(token=token, certificates=ordered, prescription=prescription)
