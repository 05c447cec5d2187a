"""The patient's consent, recorded by someone who signs it.

A consent record (``kind = "consent"``) keeps the fields the ledger has always read
(``share_opposition``, ``at``, ``pharmacist``: the shared ledger's triggers check the last one
against the site's RPPS) and adds who recorded it and their signature::

    {"share_opposition": true, "at": T, "pharmacist": RPPS|null, "pharmacy": FINESS|null,
     "actor": "pharmacy"|"prescriber", "rpps": RPPS|null, "kid": KID,
     "certificate": DER base64, "jws": TOKEN}

The JWS (ES256, PS256 or RS256 as the key allows) signs
``{"type": "consent", "prescription": ID, "share_opposition": …, "at": …, "actor": …,
"pharmacist": …, "pharmacy": …, "rpps": …}``. The signer is a pharmacy (a certificate from
``keys pharmacy``, checked against the trust store) or the prescriber (whose key is proved to be
the one that signed the prescription). :func:`changes` lists every consent record of a history,
each with who recorded it and whether its signature holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from eprescrire import canonical, jws, model
from eprescrire.errors import VerificationError
from eprescrire.keys import Credentials, certificate_from_base64, common_name, der_base64, kid_of
from eprescrire.ledger import History

PAYLOAD_TYPE = "consent"
_SIGNED_FIELDS = ("share_opposition", "at", "actor", "pharmacist", "pharmacy", "rpps")


@dataclass(frozen=True)
class Actor:
    """Who records a consent: ``pharmacy`` (FINESS and/or pharmacist RPPS) or ``prescriber``."""

    role: str
    pharmacist: str | None = None
    pharmacy: str | None = None
    rpps: str | None = None  # the prescriber's
    lane: str | None = None  # the prescriber's consent is about their own prescription only


def signed_body(
    prescription_id: str,
    opposition: bool,
    at: dt.datetime,
    credentials: Credentials,
    actor: Actor,
) -> dict[str, Any]:
    """The consent record's body, signed with ``credentials``."""
    body: dict[str, Any] = {
        "share_opposition": opposition,
        "at": model.format_timestamp(at),
        "actor": actor.role,
        "pharmacist": actor.pharmacist,
        "pharmacy": actor.pharmacy,
        "rpps": actor.rpps,
    }
    if actor.lane is not None:
        body["lane"] = actor.lane
    payload = {"type": PAYLOAD_TYPE, "prescription": prescription_id} | body
    kid = kid_of(credentials.certificate)
    token = jws.sign(canonical.dumps(payload), credentials.key, kid)
    return body | {
        "kid": kid,
        "certificate": der_base64(credentials.certificate),
        "jws": token,
    }


def check(prescription_id: str, body: dict[str, Any]) -> str | None:
    """None when the record's signature holds over what the record says; else why not."""
    if not isinstance(body.get("jws"), str) or not isinstance(body.get("certificate"), str):
        return "not signed (recorded without a key)"
    try:
        certificate = certificate_from_base64(body["certificate"])
        parsed = jws.parse(body["jws"])
        if parsed.kid != kid_of(certificate) or body.get("kid") != parsed.kid:
            return "not signed by the certificate it carries"
        jws.verify(parsed, certificate.public_key())  # type: ignore[arg-type]
        payload = canonical.loads(parsed.payload)
    except (ValueError, VerificationError, canonical.StrictJSONError) as e:
        return f"its signature does not verify: {e}"
    expected = {"type": PAYLOAD_TYPE, "prescription": prescription_id} | {
        k: body.get(k) for k in _SIGNED_FIELDS
    }
    if "lane" in body:
        expected["lane"] = body["lane"]
    if payload != expected:
        return "the record differs from what was signed"
    return None


def changes(history: History) -> list[dict[str, Any]]:
    """Every consent record of ``history``, in order: when, the choice, who (from the record's
    certificate) and whether the signature holds (``problem`` says why not)."""
    from eprescrire.pharmacy import identity_of

    items = []
    for record in history.of_kind("consent"):
        body = record.body
        problem = check(history.prescription_id, body)
        who: dict[str, Any] = {
            "actor": body.get("actor"),
            "kid": body.get("kid"),
            "pharmacist": body.get("pharmacist"),
            "pharmacy": body.get("pharmacy"),
            "rpps": body.get("rpps"),
            "name": None,
        }
        if problem is None:
            certificate = certificate_from_base64(body["certificate"])
            pharmacy = identity_of(certificate)
            who["name"] = pharmacy.name if pharmacy is not None else common_name(certificate)
        items.append(
            {
                "seq": record.seq,
                "at": body.get("at"),
                "recorded_at": record.recorded_at,
                "share_opposition": bool(body.get("share_opposition")),
                "by": who,
                "signed": problem is None,
                "problem": problem,
            }
        )
    return items
