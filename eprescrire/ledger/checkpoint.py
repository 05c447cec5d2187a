"""Signed checkpoints of the ledger's head, kept away from the ledger.

A valid hash chain can still be *shorter* than it should be: someone may cut its tail off, or
put back yesterday's copy of the file. A checkpoint is the head (sequence number and hash) at a
moment, signed with the pharmacy's key (ES256 JWS, same kid scheme as prescriptions)::

    {"format": "eprescrire-checkpoint/1", "jws": TOKEN, "certificates": [DER base64]}

over ``{"type":"ledger-checkpoint","ledger":ID,"seq":N,"hash":H,"at":TIME}``. Stored elsewhere
(another disk, a mail, a printout), it lets ``ledger verify --checkpoint`` prove that record N
is still there with the same hash: a truncated ledger or an older copy fails.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from eprescrire import canonical, jws, model
from eprescrire.errors import Reason, VerificationError
from eprescrire.keys import Credentials, common_name, der_base64, kid_of
from eprescrire.ledger.interface import Ledger, LedgerError

FILE_FORMAT = "eprescrire-checkpoint/1"
PAYLOAD_TYPE = "ledger-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    ledger_id: str
    seq: int
    hash: str | None
    at: str
    kid: str
    signer: str
    certificate: x509.Certificate

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger_id,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "signer": {"kid": self.kid, "name": self.signer} | self._pharmacy(),
        }

    def _pharmacy(self) -> dict[str, Any]:
        from eprescrire.pharmacy import identity_of

        who = identity_of(self.certificate)
        return {} if who is None else {"pharmacy": who.name, "finess": who.finess, "rpps": who.rpps}


def write(ledger: Ledger, credentials: Credentials, at: dt.datetime) -> tuple[bytes, Checkpoint]:
    """A signed checkpoint of the ledger's current head (file bytes, and what they say)."""
    snapshot = getattr(ledger, "snapshot_checkpoint", None)  # the shared ledger's Merkle root
    seq, digest = snapshot() if snapshot is not None else ledger.head()
    payload = {
        "type": PAYLOAD_TYPE,
        "ledger": ledger.ledger_id,
        "seq": seq,
        "hash": digest,
        "at": model.format_timestamp(at),
    }
    kid = kid_of(credentials.certificate)
    token = jws.sign(canonical.dumps(payload), credentials.key, kid)
    body = {
        "format": FILE_FORMAT,
        "jws": token,
        "certificates": [der_base64(credentials.certificate)],
    }
    checkpoint = Checkpoint(
        ledger.ledger_id,
        seq,
        digest,
        str(payload["at"]),
        kid,
        common_name(credentials.certificate),
        credentials.certificate,
    )
    return (json.dumps(body, indent=2) + "\n").encode("utf-8"), checkpoint


def read(data: bytes) -> Checkpoint:
    """Parse a checkpoint file and check its signature against the certificate it carries.

    Whether that certificate is one you trust is for the caller (``--trust``) to decide.
    On failure, raises :class:`VerificationError`."""
    from eprescrire.document import read_signed_file

    token, certificate = read_signed_file(data, FILE_FORMAT, "ledger checkpoint")
    parsed = jws.parse(token)
    if parsed.kid != kid_of(certificate):
        raise VerificationError(
            Reason.UNKNOWN_SIGNER, "the checkpoint is not signed by its certificate"
        )
    jws.verify(parsed, certificate.public_key())  # type: ignore[arg-type]
    try:
        payload = canonical.loads(parsed.payload)
    except canonical.StrictJSONError as e:
        raise VerificationError(
            Reason.MALFORMED, f"checkpoint content is not strict JSON: {e}"
        ) from e
    if (
        not isinstance(payload, dict)
        or payload.get("type") != PAYLOAD_TYPE
        or set(payload) != {"type", "ledger", "seq", "hash", "at"}
        or not isinstance(payload["seq"], int)
        or not isinstance(payload["ledger"], str)
        or not isinstance(payload["at"], str)
        or not (payload["hash"] is None or isinstance(payload["hash"], str))
    ):
        raise VerificationError(Reason.MALFORMED, "checkpoint content is not a ledger head")
    return Checkpoint(
        payload["ledger"],
        payload["seq"],
        payload["hash"],
        payload["at"],
        parsed.kid,
        common_name(certificate),
        certificate,
    )


def compare(ledger: Ledger, checkpoint: Checkpoint) -> str | None:
    """None when the ledger still holds the checkpointed head; otherwise what is wrong."""
    if checkpoint.ledger_id != ledger.ledger_id:
        return "the checkpoint is for another ledger (or the ledger was replaced)"
    check = getattr(ledger, "check_checkpoint", None)  # the shared ledger's Merkle root
    if check is not None:
        result: str | None = check(checkpoint.seq, checkpoint.hash)
        return result
    if checkpoint.seq == 0:
        return None
    head, _ = ledger.head()
    if head < checkpoint.seq:
        return (
            f"the ledger ends at record {head} but the checkpoint of {checkpoint.at} saw record "
            f"{checkpoint.seq}: truncated, or restored from an older copy"
        )
    try:
        record = ledger.record_at(checkpoint.seq)
    except LedgerError as e:
        return f"record {checkpoint.seq} cannot be read: {e}"
    if record is None:
        return f"record {checkpoint.seq} named by the checkpoint is missing"
    if record.hash != checkpoint.hash:
        return (
            f"record {checkpoint.seq} differs from the checkpoint of {checkpoint.at}: "
            f"the history before it was rewritten"
        )
    return None
