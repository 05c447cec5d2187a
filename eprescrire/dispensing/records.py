"""The bodies of ledger records, typed: what each kind of record holds, read and written here only.

A record's body is JSON in the ledger (its field names are the ledger's format, shared by every
backend). ``from_json`` reads one as this version writes it and raises ``KeyError``,
``ValueError`` or ``TypeError`` on anything else (the caller turns that into a corrupt-ledger
error); ``to_json`` writes it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from eprescrire import canonical, jws, model
from eprescrire.errors import InputError, VerificationError
from eprescrire.keys import certificate_from_base64, der_base64
from eprescrire.ledger import History


@functools.lru_cache(maxsize=64)
def _der_base64(certificate: x509.Certificate) -> str:
    """:func:`der_base64`, kept for the few certificates a counter sees again and again (the
    same prescribers): encoding a certificate is a good part of recording a prescription."""
    return der_base64(certificate)


def _iso(moment: dt.datetime) -> str:
    return model.format_timestamp(moment)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class PrescriptionBody:
    """The signed prescription as the ledger first saw it (``kind = "prescription"``)."""

    kid: str | None
    certificate: str | None  # base64 DER of the signer certificate, when known
    jws: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> PrescriptionBody:
        return cls(_text(body.get("kid")), _text(body.get("certificate")), _text(body.get("jws")))

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "certificate": self.certificate, "jws": self.jws}


@dataclass(frozen=True)
class DispensingBody:
    """One dispensing (or fraction of one) handed over (``kind = "dispensing"``)."""

    line: int  # 1-based, as printed
    round: int  # 0 = first dispensing, 1 = first renewal, ...
    quantity: int
    days: float | None
    at: dt.datetime
    pharmacist: str
    pharmacy: str | None
    substituted: bool
    generic: str | None
    # When the hand-over happened earlier than its recording (``at``, the real clock), as the
    # pharmacist stated it (``dispense --handed-over``); absent otherwise.
    handed_over: dt.datetime | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DispensingBody:
        days = body.get("days")
        handed_over = body.get("handed_over")
        return cls(
            line=int(body["line"]),
            round=int(body["round"]),
            quantity=int(body["quantity"]),
            days=None if days is None else float(days),
            at=_parse_time(str(body["at"])),
            pharmacist=str(body["pharmacist"]),
            pharmacy=body.get("pharmacy"),
            substituted=bool(body.get("substituted")),
            generic=body.get("generic"),
            handed_over=None if handed_over is None else _parse_time(str(handed_over)),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "line": self.line,
            "round": self.round,
            "quantity": self.quantity,
            "days": self.days,
            "at": _iso(self.at),
            "pharmacist": self.pharmacist,
            "pharmacy": self.pharmacy,
            "substituted": self.substituted,
            "generic": self.generic,
        }
        if self.handed_over is not None:
            body["handed_over"] = _iso(self.handed_over)
        return body


@dataclass(frozen=True)
class CancellationBody:
    """A signed cancellation (``kind = "cancellation"``); it counts only when its ``kid`` is the
    prescription's signer."""

    kid: str | None
    certificate: str | None
    jws: str | None
    reason: Any
    at: Any

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CancellationBody:
        return cls(
            _text(body.get("kid")),
            _text(body.get("certificate")),
            _text(body.get("jws")),
            body.get("reason"),
            body.get("at"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "certificate": self.certificate,
            "jws": self.jws,
            "reason": self.reason,
            "at": self.at,
        }


@dataclass(frozen=True)
class ConsentBody:
    """The patient's (renewed or withdrawn) opposition to sharing data (``kind = "consent"``)."""

    share_opposition: bool
    at: str | None = None
    pharmacist: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ConsentBody:
        return cls(bool(body["share_opposition"]), body.get("at"), body.get("pharmacist"))

    def to_json(self) -> dict[str, Any]:
        return {
            "share_opposition": self.share_opposition,
            "at": self.at,
            "pharmacist": self.pharmacist,
        }


@dataclass(frozen=True)
class Presented:
    """A prescription whose signature and trust were verified, with its signer."""

    prescription: model.Prescription
    token: str
    kid: str
    certificate: x509.Certificate | None = None

    def record_body(self) -> dict[str, Any]:
        der = None if self.certificate is None else _der_base64(self.certificate)
        return PrescriptionBody(self.kid, der, self.token).to_json()


def recorded_prescription(history: History) -> tuple[Presented | None, str | None]:
    """The prescription as first seen by the ledger (signature re-checked when the certificate
    was stored), or (None, why not)."""
    known = history.of_kind("prescription")
    if not known:
        return None, None
    body = PrescriptionBody.from_json(known[0].body)
    try:
        token = jws.parse(str(body.jws))
        certificate = None
        if body.certificate is not None:
            certificate = certificate_from_base64(body.certificate)
            jws.verify(token, certificate.public_key())  # type: ignore[arg-type]
        prescription = model.from_payload(canonical.loads(token.payload))
    except (VerificationError, ValueError, InputError) as e:
        return None, f"the ledger's copy of the prescription does not verify: {e}"
    return Presented(prescription, str(body.jws), token.kid, certificate), None
