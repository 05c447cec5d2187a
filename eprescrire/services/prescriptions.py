"""What happens to a prescription after it is issued: ``cancel``, ``consent`` and ``status``
(the pharmacy's view, and the prescriber's, which the patient's opposition narrows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire import cancellation, files
from eprescrire.dispensing import (
    Presented,
    Refused,
    State,
    check_rpps,
    record_cancellation,
    recorded_prescription,
    set_consent,
    state_of,
    view,
)
from eprescrire.errors import InputError, UsageError, VerificationError
from eprescrire.keys import Credentials
from eprescrire.ledger import Ledger
from eprescrire.results import result
from eprescrire.services.context import parse_id, signer_certificate
from eprescrire.trust import TrustStore

# --------------------------------------------------------------------------------------------
# cancel


@dataclass(frozen=True)
class CancelRequest:
    """Cancel ``target``: a signed prescription's file, or its identifier if the ledger knows it.

    With ``store``, a signed prescription is verified first and the ledger learns it; without,
    the cancellation is kept with its signer and applies only to what that signer signed."""

    target: str
    reason: str
    at: dt.datetime
    store: TrustStore | None = None
    out: Path | None = None

    def __post_init__(self) -> None:
        try:
            cancellation.check_reason(self.reason)
        except ValueError as e:
            raise UsageError(f"--reason: {e}") from e


@dataclass(frozen=True)
class CancelTarget:
    """The prescription a cancellation is for, read (and verified) before anything is signed."""

    request: CancelRequest
    id: str
    presented: Presented | None  # verified against the trust store
    from_document: bool  # read from a signed file without a trust store

    @property
    def may_create_ledger(self) -> bool:
        """A signed document may start a new ledger; an identifier alone may not."""
        return self.presented is not None or self.from_document


@dataclass(frozen=True)
class CancelResult:
    input: str
    id: str
    recorded: tuple[int, ...]
    notes: tuple[str, ...]
    cancellation: dict[str, Any]
    out: str | None

    status = "cancelled"

    def to_json(self) -> dict[str, Any]:
        return result(
            self.input,
            self.status,
            id=self.id,
            recorded=list(self.recorded),
            notes=list(self.notes),
            cancellation=self.cancellation,
            out=self.out,
        )


def prepare_cancel(request: CancelRequest) -> CancelTarget:
    """Read the target: a signed prescription (verified with the trust store when there is
    one) or an identifier. Raises InputError (unreadable, untrusted) or UsageError."""
    from eprescrire import signing

    path = Path(request.target)
    if not path.is_file():
        return CancelTarget(request, parse_id(request.target), None, False)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{request.target}: {e.strerror}") from e
    if request.store is None:
        try:
            pid = signing.load_document(data).prescription.id
        except VerificationError as e:
            raise InputError(f"{request.target}: not a signed prescription ({e})") from e
        return CancelTarget(request, pid, None, True)
    verdict = signing.verify_document(request.target, data, request.store, request.at)
    if not verdict.authentic:
        codes = ", ".join(r.code.value for r in verdict.reasons)
        raise InputError(f"{request.target}: not a trusted signed prescription ({codes})")
    assert verdict.prescription and verdict.token and verdict.signer
    presented = Presented(
        verdict.prescription,
        verdict.token,
        verdict.signer.kid,
        signer_certificate(verdict, request.store, data),
    )
    return CancelTarget(request, verdict.prescription.id, presented, False)


def cancel(target: CancelTarget, credentials: Credentials, ledger: Ledger) -> CancelResult:
    """Sign a cancellation with the prescription's own key, record it, and write it to the
    request's ``out``. Raises :class:`Refused` (``prescriber_mismatch``), InputError when the
    ledger knows nothing of an identifier or ``out`` exists."""
    request, pid = target.request, target.id
    signed = cancellation.sign_cancellation(pid, request.reason, request.at, credentials)
    if request.out is not None:
        files.check_target(request.out)
    if not target.may_create_ledger and not ledger.history(pid).known:
        raise InputError(
            f"the ledger has no record of prescription {pid}: give the signed document (rx.json)"
        )
    outcome = record_cancellation(ledger, signed, target.presented)
    if request.out is not None:
        files.create(request.out, signed.to_file_bytes(), mode=files.PRIVATE)
    return CancelResult(
        input=request.target,
        id=pid,
        recorded=tuple(r.seq for r in outcome.records if r.kind == "cancellation"),
        notes=outcome.notes,
        cancellation=signed.record_body() | {"certificate": None},
        out=None if request.out is None else str(request.out),
    )


# --------------------------------------------------------------------------------------------
# consent


@dataclass(frozen=True)
class ConsentRequest:
    """The patient opposes (``oppose``) or no longer opposes sharing dispensing data."""

    identifier: str
    oppose: bool
    at: dt.datetime
    pharmacist: str | None = None

    def __post_init__(self) -> None:
        parse_id(self.identifier)
        if self.pharmacist is not None:
            check_rpps(self.pharmacist)


@dataclass(frozen=True)
class ConsentResult:
    input: str
    id: str
    share_opposition: bool
    recorded: tuple[int, ...]
    by: dict[str, Any] | None = None  # who recorded it: actor, kid, pharmacist, pharmacy, rpps

    status = "recorded"

    def to_json(self) -> dict[str, Any]:
        return result(
            self.input,
            self.status,
            id=self.id,
            share_opposition=self.share_opposition,
            recorded=list(self.recorded),
            by=self.by,
        )


def consent(
    request: ConsentRequest,
    ledger: Ledger,
    credentials: Credentials,
    store: TrustStore | None = None,
) -> ConsentResult:
    """Record the patient's choice, signed by who records it: a pharmacy (credentials from
    ``keys pharmacy`` chaining to ``store``) or the prescription's prescriber (who proves they
    hold its signing key). Raises InputError when the ledger does not know the prescription,
    UsageError for a mistyped identifier or RPPS, KeyFileError for an untrusted pharmacy key,
    :class:`Refused` (``prescriber_mismatch``) for another prescriber's key."""
    from eprescrire import consents

    pid = parse_id(request.identifier)
    rpps = None if request.pharmacist is None else check_rpps(request.pharmacist)
    actor = consent_actor(pid, ledger, credentials, store, rpps)
    signed = consents.signed_body(pid, request.oppose, request.at, credentials, actor)
    outcome = set_consent(ledger, pid, request.oppose, request.at, actor.pharmacist, signed)
    return ConsentResult(
        request.identifier,
        pid,
        request.oppose,
        tuple(r.seq for r in outcome.records),
        {k: signed[k] for k in ("actor", "kid", "pharmacist", "pharmacy", "rpps")},
    )


def consent_actor(
    pid: str,
    ledger: Ledger,
    credentials: Credentials,
    store: TrustStore | None,
    pharmacist: str | None,
) -> Any:
    """Who ``credentials`` are, as the recorder of a consent (an ``eprescrire.consents.Actor``)."""
    from eprescrire.consents import Actor
    from eprescrire.errors import KeyFileError
    from eprescrire.keys import rpps_of
    from eprescrire.pharmacy import identity_of

    pharmacy = identity_of(credentials.certificate)
    if pharmacy is None:
        # Not a pharmacy: only the prescription's own prescriber, proved by its key.
        from eprescrire.keys import kid_of

        try:  # their own prescription, whoever else signed one under this identifier
            known = recorded(pid, ledger, kid_of(credentials.certificate))
        except InputError:
            known = recorded(pid, ledger)
        prove_possession(credentials, known.presented.certificate, known.presented.kid)
        if pharmacist is not None:
            raise UsageError("--pharmacist is for a pharmacy's key, not the prescriber's")
        return Actor("prescriber", rpps=rpps_of(credentials.certificate), lane=known.presented.kid)
    if store is None:
        raise UsageError("a pharmacy's key is checked against a trust store (--trust)")
    try:
        store.validate(
            credentials.certificate, list(credentials.chain), dt.datetime.now(dt.UTC),
            profile="pharmacy",
        )  # fmt: skip
    except VerificationError as e:
        raise KeyFileError(f"--key: the pharmacy certificate is not trusted: {e}") from e
    if pharmacy.rpps is not None and pharmacist not in (None, pharmacy.rpps):
        raise UsageError(
            f"--pharmacist {pharmacist} is not the pharmacist of this key (RPPS {pharmacy.rpps})"
        )
    return Actor("pharmacy", pharmacist=pharmacy.rpps or pharmacist, pharmacy=pharmacy.finess)


# --------------------------------------------------------------------------------------------
# status


@dataclass(frozen=True)
class StatusRequest:
    """The dispensing state of one prescription; with ``prescriber``, the prescriber's view
    (the credentials prove that their holder signed the prescription)."""

    identifier: str
    at: dt.datetime
    prescriber: Credentials | None = None

    def __post_init__(self) -> None:
        parse_id(self.identifier)


@dataclass(frozen=True)
class StatusResult:
    input: str
    view: str  # "pharmacy" or "prescriber"
    state: dict[str, Any]

    status = "ok"

    @property
    def withheld(self) -> bool:
        return "withheld" in self.state

    def to_json(self) -> dict[str, Any]:
        return result(self.input, self.status) | self.state | {"view": self.view}


def refusal_json(identifier: str, pid: str | None, error: Refused) -> dict[str, Any]:
    """The JSON result of a refused ``status --as-prescriber`` or ``cancel``."""
    return result(identifier, "refused", error.to_json(), id=pid)


@dataclass(frozen=True)
class Recorded:
    """A prescription as the ledger knows it: the signed copy first seen, and its state."""

    presented: Presented
    state: State


def recorded(identifier: str, ledger: Ledger, kid: str | None = None) -> Recorded:
    """What the ledger records about a prescription (the one signed with ``kid`` when given,
    else the first recorded under the identifier). Raises InputError when it knows nothing of
    it (or its copy does not verify), UsageError for a mistyped identifier."""
    from eprescrire.dispensing.lanes import lane

    pid = parse_id(identifier)
    history = ledger.history(pid)
    presented, problem = recorded_prescription(history if kid is None else lane(history, kid))
    if presented is None:
        if problem:
            raise InputError(problem)
        pending = " (a cancellation is recorded for it)" if history.records else ""
        raise InputError(f"the ledger has no record of prescription {pid}{pending}")
    return Recorded(presented, state_of(presented.prescription, presented.kid, history))


def status(request: StatusRequest, ledger: Ledger, known: Recorded | None = None) -> StatusResult:
    """The state as the ledger records it (``known``, when already read). The prescriber's view
    withholds whether, when and how much was dispensed when the patient opposed sharing it.
    Raises InputError when the ledger does not know the prescription, :class:`Refused` when the
    prescriber's credentials did not sign it."""
    from eprescrire.keys import kid_of

    if request.prescriber is not None:  # the prescriber's own prescription, whoever came first
        mine = kid_of(request.prescriber.certificate)
        if known is None or known.presented.kid != mine:
            try:
                known = recorded(request.identifier, ledger, mine)
            except InputError:
                known = known or recorded(request.identifier, ledger)
    known = known or recorded(request.identifier, ledger)
    details = True
    if request.prescriber is not None:
        prove_possession(request.prescriber, known.presented.certificate, known.presented.kid)
        # What was dispensed is the patient's to share with the prescriber, or not.
        details = not known.state.opposition
    seen_by = "prescriber" if request.prescriber is not None else "pharmacy"
    shown = view(known.state, request.at, details=details)
    # Every change of the patient's choice, with who recorded it and when.
    from eprescrire.consents import changes
    from eprescrire.dispensing.lanes import conflict, lane

    history = ledger.history(known.presented.prescription.id)
    consents = changes(lane(history, known.presented.kid))
    if not details:  # which pharmacy the patient went to is part of what they keep private
        for item in consents:
            if item["by"].get("actor") == "pharmacy":
                item["by"] = {"actor": "pharmacy"}
    shown["consents"] = consents
    warning = conflict(history, known.presented.kid)
    shown["warnings"] = [] if warning is None else [warning]
    return StatusResult(request.identifier, seen_by, shown)


def prove_possession(credentials: Credentials, certificate: Any, kid: str) -> None:
    """Check that ``credentials`` hold the private key of the prescription's signer: sign a fresh
    random challenge and verify it with the certificate the ledger recorded (or, when none was
    recorded, with the credentials' certificate if its kid is the signer's kid).

    On failure, raises :class:`Refused` (``prescriber_mismatch``)."""
    import os

    from eprescrire import jws
    from eprescrire.dispensing import Code
    from eprescrire.keys import kid_of

    if certificate is None:
        if kid_of(credentials.certificate) != kid:
            raise Refused(Code.PRESCRIBER_MISMATCH, "this key did not sign the prescription")
        certificate = credentials.certificate
    challenge = b"eprescrire-status-challenge/1\x00" + os.urandom(32)
    # The key may be on a token (ES256, PS256 or RS256): sign as a JWS, check with the record.
    token = jws.sign(challenge, credentials.key, kid_of(credentials.certificate))
    try:
        jws.verify(jws.parse(token), certificate.public_key())
    except VerificationError as e:
        raise Refused(Code.PRESCRIBER_MISMATCH, "this key did not sign the prescription") from e


__all__ = [
    "CancelRequest",
    "CancelResult",
    "CancelTarget",
    "ConsentRequest",
    "ConsentResult",
    "StatusRequest",
    "StatusResult",
    "cancel",
    "consent",
    "prepare_cancel",
    "prove_possession",
    "recorded",
    "status",
]
