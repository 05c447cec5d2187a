"""The counter session: what a pharmacy's 2D scanner types, one code per line, verified at once.

A USB scanner in keyboard mode types the QR text and ends it with Enter (CR, LF or CR LF,
depending on its set-up). A line may also be the path of a scan, photo, PDF or signed JSON file,
or a prescription identifier typed by hand from the paper when the code does not scan: with a
ledger, the identifier shows the ledger's copy of the prescription, verified again against the
trust store, with its dispensing state.

:class:`Session` holds what is costly to set up (the trust store, the ledger, the QR and image
libraries once first needed) and turns each line into verdicts; :func:`read_lines` cuts a byte
stream into lines as soon as each one ends. Nothing here prints: the command
(``eprescrire counter``) shows the verdicts. This module uses the verification and dispensing
functions of the package, and never writes the ledger itself: dispensing from the session goes
through :func:`eprescrire.dispensing.dispense`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from eprescrire import ids, rules, signing, verifying
from eprescrire.errors import Error, Reason, VerificationError
from eprescrire.services.verification import without_ledger
from eprescrire.signing import Verdict

if TYPE_CHECKING:
    from eprescrire.ledger import Ledger
    from eprescrire.trust import TrustStore

__all__ = ["DISPENSE_COMMAND", "Dispensing", "Session", "read_lines"]

#: A line at most this long (the longest QR text is 4296 characters; a path is shorter).
MAX_LINE_BYTES = verifying.MAX_TEXT_BYTES
#: The warning a verdict carries when the ledger could not be consulted (as ``verify``'s).
LEDGER_UNAVAILABLE = "ledger unavailable, dispensing state unknown: {}"
#: ``+`` (everything due now), ``+N`` (line N, all due now), ``+N:Q`` (line N, Q units).
DISPENSE_COMMAND = re.compile(r"^\+\s*(?:(?P<line>\d{1,3})\s*(?::\s*(?P<quantity>\d{1,4}))?)?$")
_QR_PREFIX = re.compile(r"^[A-Za-z]{2,4}\d*:")
_FILE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf", ".json", ".txt"}
)


def read_lines(stream: BinaryIO | int, chunk: int = 65536) -> Iterator[bytes]:
    """The lines of a byte stream, each yielded as soon as its end (CR, LF or CR LF) arrives.

    ``stream`` is a file descriptor or a binary file; reads return what is available (a
    scanner's keystrokes arrive a few at a time), never waiting for a full buffer. A CR is an
    end of line at once; a LF right after it is then skipped. A line longer than
    :data:`MAX_LINE_BYTES` is yielded cut (it is not a prescription code anyway) and the rest of
    it skipped. The last line needs no end.
    """
    fd = stream if isinstance(stream, int) else stream.fileno()
    pending = bytearray()
    after_cr = False
    overflow = False
    while True:
        data = os.read(fd, chunk)
        if not data:
            break
        start = 0
        if after_cr and data[:1] == b"\n":
            start = 1
        after_cr = False
        while True:
            ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if not overflow:
                yield bytes(pending + data[start:end])
            pending.clear()
            overflow = False
            start = end + 1
            if data[end] == 13:
                if start < len(data) and data[start] == 10:
                    start += 1
                elif start == len(data):
                    after_cr = True
        if not overflow:
            pending += data[start:]
            if len(pending) > MAX_LINE_BYTES:
                yield bytes(pending[: MAX_LINE_BYTES + 1])
                pending.clear()
                overflow = True
    if pending and not overflow:
        yield bytes(pending)


@dataclass
class Dispensing:
    """The outcome of a dispensing asked from the session (the shape of ``dispense --json``)."""

    result: dict[str, Any]
    exit_code: int


@dataclass
class _Shown:
    """The last prescription shown, which a dispensing command applies to."""

    verdict: Verdict
    text: str  # the line it came from (a signed JSON file carries the signer certificate)
    recorded: Any = None  # for a typed identifier: the certificate the ledger recorded


@dataclass
class Session:
    """One pharmacist's session at the counter.

    ``at`` fixes the verification time (tests, ``--at``); by default each line is verified at
    the time it arrives. ``ledger`` adds the dispensing state to every verdict and lets typed
    identifiers be looked up; ``pharmacist`` (an RPPS already checked) enables dispensing.
    ``ledger_problem`` says why the ledger named could not be opened: verdicts then carry a
    warning that the dispensing state is unknown, and dispensing fails closed.
    """

    store: TrustStore
    ledger: Ledger | None = None
    engine: str = "zxing"
    at: dt.datetime | None = None
    pharmacist: str | None = None
    pharmacy: str | None = None
    ledger_problem: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"valid": 0, "rejected": 0, "unreadable": 0}
    )
    dispensed: int = 0
    refused: int = 0
    _number: int = 0
    _last: _Shown | None = None
    _recorded: Any = None

    def now(self) -> dt.datetime:
        return self.at if self.at is not None else rules.now()

    # ----------------------------------------------------------------------------------------

    def check(self, raw: bytes | str) -> list[Verdict]:
        """Verdicts for one line (none for a blank line); never raises for bad input.

        When the ledger fails (unreachable, lost), the signature verdict stands alone with a
        warning that the dispensing state is unknown (as ``verify --ledger``).
        """
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text:
            return []
        self._number += 1
        source = f"stdin:{self._number}"
        at = self.now()
        self._recorded = None
        verdicts = self._verdicts(text, source, at)
        problem = self.ledger_problem
        if self.ledger is not None:
            from eprescrire.ledger import LedgerError
            from eprescrire.services.verification import annotate

            ledger = self.ledger
            try:
                verdicts = [v if v.dispensing else annotate(v, ledger, at) for v in verdicts]
            except LedgerError as e:
                problem = str(e)
        if self.ledger is None or problem is not None:
            verdicts = [without_ledger(v, at) for v in verdicts]
        if problem is not None:
            warning = LEDGER_UNAVAILABLE.format(problem)
            verdicts = [dataclasses.replace(v, warnings=[*v.warnings, warning]) for v in verdicts]
        for verdict in verdicts:
            self.counts[verdict.status] += 1
        shown = [v for v in verdicts if v.authentic]
        self._last = _Shown(shown[0], text, self._recorded) if len(shown) == 1 else None
        return verdicts

    def _verdicts(self, text: str, source: str, at: dt.datetime) -> list[Verdict]:
        if len(text) > MAX_LINE_BYTES:
            return [_failed(source, Reason.UNREADABLE_INPUT, f"{source}: line too long")]
        if text.startswith("RX") and _QR_PREFIX.match(text):
            return [verifying.verify_text(source, text, self.store, at)]
        path = Path(text)
        if _is_file(path):
            return list(verifying.verify_input(text, self.store, at, engine=self.engine))
        if ids.is_valid(text):
            return [self._identifier(source, ids.parse(text), at)]
        if _QR_PREFIX.match(text) or "://" in text:
            # Another QR code (a web address, a health certificate): not ours.
            return [verifying.verify_text(source, text, self.store, at)]
        if os.sep in text or path.suffix.lower() in _FILE_SUFFIXES:
            return [_failed(text, Reason.UNREADABLE_INPUT, f"{text}: no such file")]
        return [verifying.verify_text(source, text, self.store, at)]

    def _identifier(self, source: str, pid: ids.PrescriptionId, at: dt.datetime) -> Verdict:
        """A typed identifier: the ledger's copy, verified again, with its dispensing state."""
        from eprescrire.ledger import LedgerError

        if self.ledger is None and self.ledger_problem is None:
            return _failed(
                source,
                Reason.UNREADABLE_INPUT,
                f"identifier {ids.grouped(pid)} typed: without a ledger only the code can be "
                "verified (scan it, or start counter with --ledger)",
            )
        from eprescrire import dispensing

        try:
            if self.ledger is None:
                raise LedgerError(str(self.ledger_problem))
            history = self.ledger.history(pid)
        except LedgerError as e:
            return _failed(
                source,
                Reason.UNREADABLE_INPUT,
                f"identifier {ids.grouped(pid)} typed: the ledger is unavailable, scan the "
                f"code ({e})",
            )
        presented, problem = dispensing.recorded_prescription(history)
        if presented is None:
            if problem:
                return _failed(source, Reason.MALFORMED, problem)
            return _failed(
                source,
                Reason.UNREADABLE_INPUT,
                f"the ledger has no record of prescription {ids.grouped(pid)}; scan the code",
            )
        self._recorded = presented.certificate
        certificates = [presented.certificate] if presented.certificate is not None else None
        verdict = signing.verify_token(source, presented.token, self.store, at, certificates)
        if verdict.authentic and verdict.id != pid:
            return _failed(source, Reason.MALFORMED, "the ledger's copy has another identifier")
        return verdict

    def _certificate(self, verdict: Verdict, shown: _Shown) -> Any:
        """The signer certificate to record with a dispensing: the trust store's, else the one
        the ledger recorded, else the one a signed JSON file carries."""
        assert verdict.signer is not None
        text = shown.text
        certificate = self.store.find_signer(verdict.signer.kid)
        if certificate is not None:
            return certificate
        if shown.recorded is not None:
            return shown.recorded
        if verdict.input == text and _is_file(Path(text)):
            from eprescrire.keys import kid_of

            try:
                data = Path(text).read_bytes()
                _, certificates, _ = signing.parse_document(data)
            except (OSError, Error):
                return None
            return next((c for c in certificates if kid_of(c) == verdict.signer.kid), None)
        return None

    # ----------------------------------------------------------------------------------------

    def dispense(self, command: str) -> Dispensing:
        """Dispense from the last prescription shown: ``+`` everything due now, ``+N`` line N,
        ``+N:Q`` Q units of line N. Goes through :func:`eprescrire.dispensing.dispense`.

        On a usage problem (no ledger, no pharmacist, nothing shown, bad command), raises
        :class:`~eprescrire.errors.UsageError`. Without a reachable ledger nothing is
        dispensed: raises :class:`~eprescrire.ledger.LedgerError` (exit 4).
        """
        from eprescrire import dispensing
        from eprescrire.errors import UsageError
        from eprescrire.services.dispense import lines_from

        match = DISPENSE_COMMAND.match(command.strip())
        if match is None:
            raise UsageError(
                "pour délivrer : + (tout ce qui est dû), +N (ligne N), +N:Q (Q unités)"
            )
        if self.ledger is None and self.ledger_problem is not None and self.pharmacist:
            from eprescrire.ledger import LedgerError

            raise LedgerError(f"cannot dispense, the ledger is unavailable: {self.ledger_problem}")
        if self.ledger is None or self.pharmacist is None:
            raise UsageError("pour délivrer, lancer counter avec --ledger et --pharmacist")
        if self._last is None:
            raise UsageError("aucune ordonnance valide affichée : scanner d'abord le code")
        line = None if match["line"] is None else int(match["line"])
        quantity = None if match["quantity"] is None else int(match["quantity"])
        request = dispensing.Request(
            pharmacist=self.pharmacist,
            line=line,
            quantity=quantity,
            substitute=None,
            pharmacy=self.pharmacy,
        )
        verdict = self._last.verdict
        assert verdict.prescription and verdict.token and verdict.signer
        presented = dispensing.Presented(
            verdict.prescription,
            verdict.token,
            verdict.signer.kid,
            self._certificate(verdict, self._last),
        )
        at = self.now()
        result = verdict.to_json()
        result.update(input=command.strip(), dispensed=[])
        try:
            outcome = dispensing.dispense(self.ledger, presented, request, at)
        except dispensing.Refused as e:
            state = dispensing.state_of(
                presented.prescription,
                presented.kid,
                self.ledger.history(presented.prescription.id),
            )
            result.update(
                status="refused", reasons=e.to_json(), dispensing=dispensing.view(state, at)
            )
            self.refused += 1
            return Dispensing(result, 1)
        assert outcome.state is not None
        result.update(
            status="dispensed",
            reasons=[],
            dispensed=lines_from(outcome.records),
            dispensing=dispensing.view(outcome.state, at),
        )
        verdict.dispensing = result["dispensing"]
        self.dispensed += 1
        return Dispensing(result, 0)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _failed(source: str, reason: Reason, message: str) -> Verdict:
    return signing.failed(source, VerificationError(reason, message))
