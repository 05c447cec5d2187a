"""Dispense (``dispense``): verify each prescription, then record what is handed over.

Every input is verified (in ``jobs`` processes) and recorded one after the other, in order;
one refused or unreadable input never stops the others.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eprescrire import batch, config
from eprescrire.dispensing import (
    Presented,
    Refused,
    Request,
    check_finess,
    check_rpps,
    state_of,
    view,
)
from eprescrire.dispensing import (
    dispense as record_dispensing,
)
from eprescrire.errors import Error, ExitCode, InputError, Reason, UsageError
from eprescrire.ledger import Ledger, Record
from eprescrire.results import reason
from eprescrire.services.context import check_engine, signer_certificate
from eprescrire.services.drug_aid import substitute_check
from eprescrire.trust import TrustStore
from eprescrire.verdict import Verdict

BATCH_COLUMNS = (
    "input",
    "line",
    "quantity",
    "substitute",
    "pharmacist",
    "pharmacy",
    "handed_over",
    "at",  # refused when filled: a write's clock is the real one (see ``handed_over``)
)


@dataclass(frozen=True)
class DispenseItem:
    """One input and what to hand over; ``request`` is the error when its CSV row was bad.
    ``at`` is the real time the rules decide at (never a time given by the user)."""

    input: str
    request: Request | Error
    at: dt.datetime


@dataclass(frozen=True)
class DispenseRequest:
    items: tuple[DispenseItem, ...]
    store: TrustStore
    ledger: Ledger
    engine: str = "zxing"
    jobs: int = 1
    stdin: bytes = b""
    drugs: Path | None = None  # catalogue checking --substitute (services.drug_aid)

    def __post_init__(self) -> None:
        check_engine(self.engine)
        check_items(self.items)


def check_items(items: Sequence[DispenseItem]) -> None:
    """Standard input is one input. Raises UsageError."""
    if sum(item.input == "-" for item in items) > 1:
        raise UsageError("standard input (-) can be read once")


@dataclass(frozen=True)
class DispenseResult:
    """What became of one input: ``status`` is dispensed, refused, rejected or unreadable."""

    input: str
    status: str
    exit_code: ExitCode
    reasons: tuple[dict[str, str], ...] = ()
    dispensed: tuple[dict[str, Any], ...] = ()
    dispensing: dict[str, Any] | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    #: The lines a dispensing of every line (--all) left out, each with why.
    skipped: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()  # from the substitute's check, in French

    def to_json(self) -> dict[str, Any]:
        result = dict(self.verdict) | {"input": self.input}
        result.update(
            status=self.status,
            reasons=list(self.reasons),
            dispensed=list(self.dispensed),
            skipped=list(self.skipped),
        )
        if self.warnings:
            result["warnings"] = [*result.get("warnings", []), *self.warnings]
        if self.dispensing is not None or "dispensing" in result:
            result["dispensing"] = self.dispensing
        return result


def request_for(
    pharmacist: str,
    *,
    line: int | None = None,
    quantity: int | None = None,
    substitute: str | None = None,
    pharmacy: str | None = None,
    handed_over: dt.datetime | None = None,
) -> Request:
    """A dispensing request, identifiers checked. Raises UsageError."""
    return Request(
        pharmacist=check_rpps(pharmacist),
        line=line,
        quantity=quantity,
        substitute=substitute,
        pharmacy=None if pharmacy is None else check_finess(pharmacy),
        handed_over=handed_over,
    )


def parse_handed_over(text: str) -> dt.datetime:
    """``--handed-over``: an ISO 8601 date and time (naive: Paris time). Raises UsageError."""
    if len(text.strip()) == 10:
        raise UsageError("--handed-over: give the date and time of the hand-over, not only a date")
    try:
        return config.parse_moment(text)
    except UsageError as e:
        raise UsageError(str(e).replace("--at", "--handed-over", 1)) from None


def read_batch(
    path: Path, *, pharmacist: str | None, pharmacy: str | None, at: dt.datetime
) -> tuple[DispenseItem, ...]:
    """The items of a dispensing CSV, one per row.

    Columns: ``input`` (required), ``line`` and ``quantity`` (empty line: everything due),
    ``substitute``, ``pharmacist`` and ``pharmacy`` (default: ``pharmacist``/``pharmacy``),
    ``handed_over`` (an earlier hand-over, bounded as ``--handed-over``). An ``at`` cell is a
    row error: every row is decided and recorded at the real time ``at``. Relative inputs are relative to the CSV file. A bad row becomes
    an item holding its error; an unreadable file raises InputError."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the dispensing batch ({e})") from e
    try:
        return _rows(path, text, pharmacist, pharmacy, at)
    except csv.Error as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from e


def _rows(
    path: Path, text: str, pharmacist: str | None, pharmacy: str | None, at: dt.datetime
) -> tuple[DispenseItem, ...]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "input" not in reader.fieldnames:
        raise InputError(f"{path}: a dispensing batch needs an 'input' column")
    unknown = set(reader.fieldnames) - set(BATCH_COLUMNS)
    if unknown:
        raise InputError(f"{path}: unknown column(s): {', '.join(sorted(unknown))}")
    items: list[DispenseItem] = []
    for number, row in enumerate(reader, start=2):
        cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
        name = cell.get("input", "")
        if name and name != "-" and not Path(name).is_absolute():
            name = str(path.parent / name)
        request: Request | Error
        try:
            if not name:
                raise InputError(f"{path}:{number}: empty input")
            who = cell.get("pharmacist") or pharmacist
            if not who:
                raise UsageError(f"{path}:{number}: no pharmacist (column or --pharmacist)")
            if cell.get("at"):
                raise UsageError(
                    "the 'at' column never moves the clock of a dispensing (it is decided and "
                    "recorded now); an earlier hand-over goes in the 'handed_over' column"
                )
            handed = cell.get("handed_over")
            request = request_for(
                who,
                line=int(cell["line"]) if cell.get("line") else None,
                quantity=int(cell["quantity"]) if cell.get("quantity") else None,
                substitute=cell.get("substitute") or None,
                pharmacy=cell.get("pharmacy") or pharmacy or None,
                handed_over=parse_handed_over(handed) if handed else None,
            )
        except ValueError as e:
            request = InputError(f"{path}:{number}: {e}")
        except Error as e:
            message = str(e) if str(e).startswith(f"{path}:") else f"{path}:{number}: {e}"
            request = InputError(message)
        items.append(DispenseItem(name or f"{path}:{number}", request, at))
    return tuple(items)


def _verify_item(request: DispenseRequest, item: tuple[str, dt.datetime]) -> tuple[Any, ...]:
    """Verify one input (in a worker process or in-process): its verdicts, and its bytes when
    it is a small file (a signed JSON document carries the signer certificate)."""
    from eprescrire import verifying

    name, when = item
    data: bytes | None = None
    stdin = None
    if name == "-":
        data = request.stdin
        stdin = io.BytesIO(data)
    else:
        path = Path(name)
        try:
            if path.is_file() and path.stat().st_size <= verifying.MAX_TEXT_BYTES:
                data = path.read_bytes()
        except OSError:
            data = None
    verdicts = list(
        verifying.verify_input(name, request.store, when, engine=request.engine, stdin=stdin)
    )
    return verdicts, data


def dispense(request: DispenseRequest) -> Iterator[DispenseResult]:
    """Verify and record each item, in order; one result per item."""
    jobs = min(request.jobs, max(1, len(request.items)))
    verified = batch.run(
        _verify_item, request, [(i.input, i.at) for i in request.items], jobs, chunksize=1
    )
    for item, (verdicts, data) in zip(request.items, verified, strict=True):
        if isinstance(item.request, Error):
            # A bad row (mistyped RPPS, no input, ...) is unreadable input; the others go on.
            yield _unreadable(item.input, str(item.request))
        else:
            yield _record(request, item, verdicts, data)


def _unreadable(name: str, message: str) -> DispenseResult:
    return DispenseResult(
        name,
        "unreadable",
        ExitCode.UNREADABLE,
        (reason(Reason.UNREADABLE_INPUT, message),),
        verdict={"input": name},
    )


def _record(
    request: DispenseRequest,
    item: DispenseItem,
    verdicts: list[Verdict],
    data: bytes | None,
) -> DispenseResult:
    """Record one verified input in the ledger."""
    assert isinstance(item.request, Request)
    if len(verdicts) != 1:
        return _unreadable(
            item.input, f"{len(verdicts)} prescription codes found; dispense one at a time"
        )
    verdict = verdicts[0]
    shown = verdict.to_json()
    reasons = tuple(shown["reasons"])
    # Expiry is the ledger's call: a prescription first dispensed in time may still be renewed.
    blocking = [r for r in verdict.reasons if r.code is not Reason.EXPIRED]
    if blocking or not verdict.authentic:
        return DispenseResult(
            item.input,
            verdict.status,
            verdict.exit_code,
            reasons,
            dispensing=shown["dispensing"],
            verdict=shown,
        )
    assert verdict.prescription and verdict.token and verdict.signer  # authentic, so present
    presented = Presented(
        verdict.prescription,
        verdict.token,
        verdict.signer.kid,
        signer_certificate(verdict, request.store, data),
    )
    # The substitute against the drug catalogue's generic groups (services.drug_aid).
    refusal, warnings = substitute_check(
        request.drugs, verdict.prescription.lines, item.request.line, item.request.substitute
    )
    try:
        if refusal is not None:
            raise Refused(Reason.SUBSTITUTION_FORBIDDEN, refusal)
        outcome = record_dispensing(request.ledger, presented, item.request, item.at)
    except Refused as e:
        from eprescrire.dispensing.lanes import conflict

        history = request.ledger.history(presented.prescription.id)
        state = state_of(presented.prescription, presented.kid, history)
        if (warning := conflict(history, presented.kid)) is not None:
            shown["warnings"] = [*shown["warnings"], warning]
        return DispenseResult(
            item.input,
            "refused",
            ExitCode.REJECTED,
            tuple(e.to_json()),
            dispensing=view(state, item.at),
            verdict=shown,
        )
    assert outcome.state is not None
    if outcome.notes:  # another signer's prescription under this identifier
        shown["warnings"] = [*shown["warnings"], *outcome.notes]
    return DispenseResult(
        item.input,
        "dispensed",
        ExitCode.OK,
        (),
        tuple(lines_from(outcome.records)),
        view(outcome.state, item.at),
        verdict=shown,
        skipped=tuple(
            {"line": line} | reason(code, message) for line, code, message in outcome.skipped
        ),
        warnings=warnings,
    )


def lines_from(records: Sequence[Record]) -> list[dict[str, Any]]:
    """The dispensing records of an outcome, as reported to the pharmacist."""
    return [
        {
            "seq": r.seq,
            **{k: r.body[k] for k in ("line", "quantity", "substituted", "generic")},
            "dispensing": int(r.body["round"]) + 1,
        }
        for r in records
        if r.kind == "dispensing"
    ]
