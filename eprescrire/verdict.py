"""The verdict of a verification: its status, reasons, and what may be shown of it."""

from __future__ import annotations

import functools
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

    @functools.cached_property
    def json_text(self) -> str:
        """The compact JSON of the verdict's ``signer`` field (written once per signer)."""
        return _dumps({"rpps": self.rpps, "name": self.name, "kid": self.kid})


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
        return _EXIT_CODES[self.status]

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
        signed = self.signed
        if signed is None or signed[0] is not self.prescription or not self.authentic:
            return _dumps(self.to_json())
        return "".join(self._signed_line(signed[1].decode("utf-8")))

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json_text` in UTF-8, the signed bytes copied in as they are."""
        signed = self.signed
        if signed is None or signed[0] is not self.prescription or not self.authentic:
            return _dumps(self.to_json()).encode("utf-8")
        head, _, tail = self._signed_line("")
        return b"".join((head.encode("utf-8"), signed[1], tail.encode("utf-8")))

    def _signed_line(self, prescription: str) -> tuple[str, str, str]:
        """(head, ``prescription``, tail) of the line of an authentic verdict: the keys and
        values of :meth:`to_json` in its order, written by the same encoder."""
        reasons = self.reasons
        signer = self.signer
        dispensing = self.dispensing
        head = (
            f'{{"input":{_dumps(self.input)},"status":"{self.status}","id":{_dumps(self.id)},'
            f'"reasons":{_dumps([reason(r.code, r.message) for r in reasons]) if reasons else "[]"},'
            '"prescription":'
        )
        tail = (
            f',"signer":{"null" if signer is None else signer.json_text},'
            f'"dispensing":{"null" if dispensing is None else _dumps(dispensing)},'
            f'"warnings":{_dumps(self.warnings) if self.warnings else "[]"}}}'
        )
        return head, prescription, tail

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


_EXIT_CODES = {
    "valid": ExitCode.OK,
    "rejected": ExitCode.REJECTED,
    "unreadable": ExitCode.UNREADABLE,
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
