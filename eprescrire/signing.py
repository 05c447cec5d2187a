"""Sign prescriptions and verify them: ``sign()`` and ``verify_*() -> Verdict``.

The document format is :mod:`eprescrire.document`, the verdict :mod:`eprescrire.verdict`; their
names are also reachable from here.
"""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eprescrire import canonical, identity, jws, model, rules
from eprescrire.document import (
    DOCUMENT_FORMAT,
    MAX_CERTIFICATES,
    MAX_SIGNED_FILE_BYTES,
    SignedDocument,
    fully_parsed,
    parse_document,
    read_signed_file,
)
from eprescrire.errors import FieldError, Reason, ValidationError, VerificationError
from eprescrire.keys import Credentials, common_name, kid_of, rpps_of
from eprescrire.trust import TrustStore
from eprescrire.verdict import (
    AUTHENTIC_REASONS,
    ReasonItem,
    Signer,
    Status,
    Verdict,
    failed,
    overall_exit,
)

__all__ = [
    "AUTHENTIC_REASONS",
    "DOCUMENT_FORMAT",
    "MAX_CERTIFICATES",
    "MAX_SIGNED_FILE_BYTES",
    "ReasonItem",
    "SignedDocument",
    "Signer",
    "Status",
    "Verdict",
    "check_dates",
    "failed",
    "fully_parsed",
    "load_document",
    "overall_exit",
    "parse_document",
    "read_signed_file",
    "sign",
    "verify_decoded",
    "verify_document",
    "verify_token",
]


def sign(
    prescription: model.Prescription,
    credentials: Credentials,
    *,
    allow_name_mismatch: bool = False,
    now: dt.datetime | None = None,
) -> SignedDocument:
    """Sign ``prescription`` with the prescriber's credentials, kid from the certificate: ES256
    with a P-256 key, PS256/RS256 with an RSA key (a PKCS#11 token, :mod:`eprescrire.tokens`).

    The certificate's RPPS must be the prescription's prescriber RPPS, its name the prescriber's
    name (unless ``allow_name_mismatch``), and the certificate must be valid both at the issue
    time and at the real time ``now`` (default: the clock), since the issue time is only stated;
    otherwise raises :class:`~eprescrire.errors.ValidationError`.
    """
    from eprescrire import identity

    certificate = credentials.certificate
    problems = []
    unusable = identity.not_usable_now(certificate, now or dt.datetime.now(dt.UTC))
    if unusable is not None:
        problems.append(FieldError("key", unusable))
    if not allow_name_mismatch and not identity.same_name(
        common_name(certificate), prescription.prescriber.name
    ):
        problems.append(
            FieldError(
                "prescriber.name",
                f"is not the name in the signing certificate ({common_name(certificate)!r}); "
                "use that name, or --allow-name-mismatch",
            )
        )
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
# Verification


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
    return _verify_parsed(verdict, token, parsed, store, at, presented or [], None)


def verify_decoded(
    source: str,
    *,
    alg: str,
    kid: str,
    signature: bytes,
    form: model.SignedForm,
    store: TrustStore,
    at: dt.datetime,
) -> Verdict:
    """The verdict ``verify_token(source, jws.assemble(kid, form.payload, signature, alg),
    store, at)`` gives for a QR code's content (:func:`eprescrire.qr.decode_signed`), without
    reading back what the decoder has just written: the JWS is checked from its parts, and the
    decoder's prescription stands for the one its signed bytes would be parsed into when
    :func:`model.as_signed` proves them the same. Never raises for bad input."""
    verdict = Verdict(input=source)
    try:
        token, parsed = jws.assembled(kid, form.payload, signature, alg, store.algorithms)
    except VerificationError as e:
        assert e.reason is not None
        verdict.reject(e.reason, str(e))
        return verdict
    return _verify_parsed(verdict, token, parsed, store, at, [], form)


def _verify_parsed(
    verdict: Verdict,
    token: str,
    parsed: jws.Token,
    store: TrustStore,
    at: dt.datetime,
    presented: list[x509.Certificate],
    form: model.SignedForm | None,
) -> Verdict:
    """The rest of the verification of a parsed JWS. ``form``, when given, holds the token's
    payload and the prescription it is the signed bytes of (the QR decoder's)."""
    certificate = store.find_signer(parsed.kid, presented)
    if certificate is None:
        verdict.reject(Reason.UNKNOWN_SIGNER, f"no known certificate for key id {parsed.kid}")
        return verdict
    public_key, rpps, name = _signer_facts(certificate)
    verdict.signer = _signer(rpps, name, parsed.kid)
    try:
        jws.verify(parsed, public_key)
    except VerificationError as e:
        assert e.reason is not None
        verdict.reject(e.reason, str(e))
        return verdict
    if (
        form is not None
        and form.payload is parsed.payload
        and model.as_signed(form.prescription, len(form.payload), keys_computed=form.keys_computed)
    ):
        # The payload is signed_bytes(form.prescription), which from_payload would turn back
        # into the same prescription: parsing and serialising it again would find nothing more.
        prescription = form.prescription
    else:
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
    verdict.signed = (prescription, parsed.payload)
    intermediates = [c for c in presented if c is not certificate and _is_intermediate(c)]
    try:
        chain = store.validate(certificate, intermediates, prescription.issued_at, now=at)
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
    if verdict.authentic:
        for warning in (
            identity.name_mismatch(name, prescription),
            identity.expired_since_signing(certificate, prescription.issued_at, at),
        ):
            if warning is not None:
                verdict.warnings.append(warning)
    return verdict


def _signer(rpps: str | None, name: str, kid: str) -> Signer:
    """``Signer(rpps, name, kid)``: the same (immutable) object for every verdict of a signer."""
    key = (rpps, name, kid)
    known = _SIGNERS.get(key)
    if known is None:
        if len(_SIGNERS) >= 256:
            _SIGNERS.clear()
        known = _SIGNERS[key] = Signer(rpps=rpps, name=name, kid=kid)
    return known


_SIGNERS: dict[tuple[str | None, str, str], Signer] = {}


def _signer_facts(
    certificate: x509.Certificate,
) -> tuple[ec.EllipticCurvePublicKey | rsa.RSAPublicKey, str | None, str]:
    """(public key, RPPS, name) of a signer certificate, read once per certificate rather than
    at every code: first by the object itself (a trust store hands out the same object for a
    kid; hashing a certificate hashes its whole DER), else by its DER."""
    known = _FACTS_BY_OBJECT.get(id(certificate))
    if known is not None and known[0] is certificate:
        return known[1]
    facts = _facts_of_der(certificate)
    if len(_FACTS_BY_OBJECT) >= 256:
        _FACTS_BY_OBJECT.clear()
    _FACTS_BY_OBJECT[id(certificate)] = (certificate, facts)  # held: its id is not reused
    return facts


_FACTS_BY_OBJECT: dict[
    int,
    tuple[x509.Certificate, tuple[ec.EllipticCurvePublicKey | rsa.RSAPublicKey, str | None, str]],
] = {}


@functools.lru_cache(maxsize=256)
def _facts_of_der(
    certificate: x509.Certificate,
) -> tuple[ec.EllipticCurvePublicKey | rsa.RSAPublicKey, str | None, str]:
    """A pure function of the certificate's DER, which certificates hash and compare by. A key
    of another type is refused by :func:`jws.verify` as before."""
    return certificate.public_key(), rpps_of(certificate), common_name(certificate)  # type: ignore[return-value]


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
