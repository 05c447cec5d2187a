"""The verdict of a verification: its status, reasons, and what may be shown of it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from eprescrire import model
from eprescrire.errors import UNREADABLE_REASONS, ExitCode, Reason, VerificationError
from eprescrire.results import reason

Status = Literal["valid", "rejected", "unreadable"]
#: Reasons that leave the prescription authentic: its content can be shown.
AUTHENTIC_REASONS = frozenset(
    {
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.CANCELLED,
        Reason.FULLY_DISPENSED,
        Reason.QUANTITY_EXCEEDED,
        Reason.NARCOTIC_WINDOW,  # nothing left to dispense: the rules', not the signature's
    }
)


@dataclass(frozen=True)
class ReasonItem:
    """One reason a verdict gives: its code and message."""

    code: Reason
    message: str


@dataclass(frozen=True)
class Signer:
    """The signer certificate's identity, as shown."""

    rpps: str | None
    name: str
    kid: str


@dataclass
class Verdict:
    """What verification concluded about one input."""

    input: str
    id: str | None = None
    reasons: list[ReasonItem] = field(default_factory=list)
    prescription: model.Prescription | None = None
    signer: Signer | None = None
    warnings: list[str] = field(default_factory=list)
    dispensing: dict[str, Any] | None = None
    token: str | None = None  # the verified compact JWS, when the signature held
    #: (prescription, its signed bytes) once the signature and the canonical form held: what
    #: :meth:`to_json_text` writes for that very prescription instead of serialising it again.
    signed: tuple[model.Prescription, bytes] | None = field(default=None, repr=False)

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
            **self._head(authentic),
            "prescription": (
                model.to_payload(self.prescription) if authentic and self.prescription else None
            ),
            **self._tail(authentic),
        }

    def to_json_text(self) -> str:
        """The compact JSON text of :meth:`to_json` (an NDJSON line without its end), the
        prescription written as its signed bytes: the same JSON value, its keys in canonical
        order, without serialising the prescription again."""
        authentic = self.authentic
        signed = self.signed
        if not authentic or signed is None or signed[0] is not self.prescription:
            return _dumps(self.to_json())
        head, tail = _dumps(self._head(authentic)), _dumps(self._tail(authentic))
        return f'{head[:-1]},"prescription":{signed[1].decode("utf-8")},{tail[1:]}'

    def _head(self, authentic: bool) -> dict[str, Any]:
        return {
            "input": self.input,
            "status": self.status,
            "id": self.id if authentic else None,
            "reasons": [reason(r.code, r.message) for r in self.reasons],
        }

    def _tail(self, authentic: bool) -> dict[str, Any]:
        return {
            "signer": (
                {"rpps": self.signer.rpps, "name": self.signer.name, "kid": self.signer.kid}
                if authentic and self.signer is not None
                else None
            ),
            "dispensing": self.dispensing,
            "warnings": self.warnings,
        }


#: Compact JSON as every ``--json`` line is written (:func:`eprescrire.cli._output.emit_json`),
#: one encoder for every verdict rather than one made at each ``json.dumps`` call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def overall_exit(verdicts: list[Verdict]) -> ExitCode:
    """SPEC §3 over several verdicts (:func:`eprescrire.results.batch_exit`)."""
    from eprescrire.results import batch_exit

    return batch_exit(v.exit_code for v in verdicts)


def failed(source: str, error: VerificationError) -> Verdict:
    verdict = Verdict(input=source)
    assert error.reason is not None
    verdict.reject(error.reason, str(error))
    return verdict
