"""Prescriber-signed cancellations.

A cancellation is a compact JWS (ES256, the same ``kid`` scheme as prescriptions) signed with
the prescription's own key over the canonical JSON
``{"type":"cancellation","id":ID,"reason":TEXT,"at":TIME}``. A ledger records it only when its
signer is the prescription's signer (same ``kid``, and the signature checks against that
certificate); a forged cancellation cannot stop a prescription, and a cancellation cannot be
replayed onto another prescription because the identifier is signed.

It travels between ledgers as a small JSON file::

    {"format": "eprescrire-cancellation/1", "jws": TOKEN, "certificates": [DER base64]}
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from eprescrire import canonical, ids, jws, model
from eprescrire.errors import Reason, VerificationError
from eprescrire.keys import Credentials, der_base64, kid_of

FILE_FORMAT = "eprescrire-cancellation/1"
PAYLOAD_TYPE = "cancellation"
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class Cancellation:
    token: str
    prescription_id: str
    reason: str
    at: dt.datetime
    kid: str
    certificate: x509.Certificate | None = None

    def to_file_bytes(self) -> bytes:
        body: dict[str, Any] = {"format": FILE_FORMAT, "jws": self.token, "certificates": []}
        if self.certificate is not None:
            body["certificates"] = [der_base64(self.certificate)]
        return (json.dumps(body, indent=2) + "\n").encode("utf-8")

    def record_body(self) -> dict[str, Any]:
        """What the ledger stores: enough to re-check the signature later, anywhere."""
        return {
            "kid": self.kid,
            "certificate": None if self.certificate is None else der_base64(self.certificate),
            "jws": self.token,
            "reason": self.reason,
            "at": model.format_timestamp(self.at),
        }


def check_reason(text: str) -> str:
    """A cancellation reason: non-empty text without control characters, at most 500 chars.

    On failure, raises ValueError naming the problem."""
    value = text.strip()
    if not value:
        raise ValueError("the cancellation reason must not be empty")
    if len(value) > MAX_REASON_LENGTH:
        raise ValueError(f"the cancellation reason is longer than {MAX_REASON_LENGTH} characters")
    if any(ord(c) < 32 for c in value):
        raise ValueError("the cancellation reason contains control characters")
    return value


def sign_cancellation(
    prescription_id: str, reason: str, at: dt.datetime, credentials: Credentials
) -> Cancellation:
    """Sign a cancellation of ``prescription_id`` with the prescriber's key."""
    pid = ids.parse(prescription_id)
    text = check_reason(reason)
    moment = at.astimezone(dt.UTC).replace(microsecond=0)
    payload = {
        "type": PAYLOAD_TYPE,
        "id": pid,
        "reason": text,
        "at": model.format_timestamp(moment),
    }
    kid = kid_of(credentials.certificate)
    token = jws.sign(canonical.dumps(payload), credentials.key, kid)
    return Cancellation(token, pid, text, moment, kid, credentials.certificate)


def _payload(token: jws.Token) -> tuple[str, str, dt.datetime]:
    try:
        payload = canonical.loads(token.payload)
    except canonical.StrictJSONError as e:
        raise VerificationError(Reason.MALFORMED, f"cancellation is not strict JSON: {e}") from e
    if not isinstance(payload, dict) or payload.get("type") != PAYLOAD_TYPE:
        raise VerificationError(Reason.NOT_A_PRESCRIPTION, "not an eprescrire cancellation")
    if set(payload) != {"type", "id", "reason", "at"}:
        raise VerificationError(Reason.MALFORMED, "cancellation has missing or unexpected fields")
    pid, reason, at = payload["id"], payload["reason"], payload["at"]
    if not isinstance(pid, str) or not ids.is_canonical(pid):
        raise VerificationError(
            Reason.MALFORMED, "cancellation names no valid prescription identifier"
        )
    if not isinstance(reason, str):
        raise VerificationError(Reason.MALFORMED, "cancellation reason is not text")
    try:
        check_reason(reason)
    except ValueError as e:
        raise VerificationError(Reason.MALFORMED, str(e)) from e
    if not isinstance(at, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", at):
        raise VerificationError(Reason.MALFORMED, "cancellation time is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        moment = dt.datetime.fromisoformat(at[:-1]).replace(tzinfo=dt.UTC)
    except ValueError as e:
        raise VerificationError(Reason.MALFORMED, "cancellation time is not a valid time") from e
    if canonical.dumps(payload) != token.payload:
        raise VerificationError(Reason.MALFORMED, "cancellation is not in canonical form")
    return pid, reason, moment


def verify_cancellation(token: str, certificate: x509.Certificate) -> Cancellation:
    """Check that ``certificate`` signed the cancellation ``token``.

    On failure, raises :class:`VerificationError` (``malformed``, ``signature_invalid``,
    ``prescriber_mismatch`` when another key signed it).
    """
    parsed = jws.parse(token)
    if parsed.kid != kid_of(certificate):
        raise VerificationError(
            Reason.PRESCRIBER_MISMATCH,
            "the cancellation was not signed by the prescription's signer",
        )
    jws.verify(parsed, certificate.public_key())  # type: ignore[arg-type]
    pid, reason, moment = _payload(parsed)
    return Cancellation(token, pid, reason, moment, parsed.kid, certificate)


def load_file(data: bytes) -> Cancellation:
    """Read an exported cancellation and check its signature against the certificate it carries
    (whether that signer may cancel the prescription is the ledger's check).

    On failure, raises :class:`VerificationError`."""
    from eprescrire.document import read_signed_file

    token, certificate = read_signed_file(data, FILE_FORMAT, "cancellation")
    return verify_cancellation(token, certificate)
