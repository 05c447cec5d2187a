"""The two rules every command's result follows: the reason object and the batch exit code.

Every ``--json`` object carries ``input``, ``status`` and ``reasons``; a reason is
``{"code", "message"}`` plus ``"field"`` where one input field is at fault (see README, "JSON
results"). With several inputs the exit code follows SPEC §3 (:func:`batch_exit`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eprescrire.errors import Error, ExitCode, Reason, ValidationError


def reason(code: Reason | str, message: str, field: str | None = None) -> dict[str, str]:
    """One reason object: ``code`` and ``message``, and ``field`` when a field is at fault."""
    item = {"code": str(code), "message": message}
    if field is not None:
        item["field"] = field
    return item


def result(
    input: str, status: str, reasons: Iterable[dict[str, str]] = (), **own: Any
) -> dict[str, Any]:
    """A command's JSON result: ``input``, ``status`` and ``reasons`` first, then its own keys."""
    return {"input": input, "status": status, "reasons": list(reasons)} | own


def reasons_of(error: Error) -> list[dict[str, str]]:
    """The reason objects of an error: one per field of a ValidationError, else one."""
    if isinstance(error, ValidationError):
        return [reason(Reason.UNREADABLE_INPUT, e.message, e.field) for e in error.errors]
    return [reason(code_of(error), error.diagnostics())]


def status_of(error: Error) -> str:
    """The ``status`` of a result that failed with ``error``: ``rejected`` (exit 1),
    ``unreadable`` (exit 3), else ``failed``."""
    return {ExitCode.REJECTED: "rejected", ExitCode.UNREADABLE: "unreadable"}.get(
        error.exit_code, "failed"
    )


def code_of(error: Error) -> str:
    """The reason code of an error: its own, else one named for its exit code."""
    if error.reason is not None:
        return str(error.reason)
    return _BY_EXIT.get(error.exit_code, str(Reason.UNREADABLE_INPUT))


_BY_EXIT = {
    ExitCode.USAGE: "usage_error",
    ExitCode.ENVIRONMENT: "environment_error",
    ExitCode.INTERNAL: "internal_error",
}


def batch_exit(codes: Iterable[int]) -> ExitCode:
    """SPEC §3 over several inputs: 1 if any was rejected, else 3 if any was unreadable, else
    the worst other code (4 when the environment failed for one), else 0."""
    seen = {int(c) for c in codes}
    if ExitCode.REJECTED in seen:
        return ExitCode.REJECTED
    if ExitCode.UNREADABLE in seen:
        return ExitCode.UNREADABLE
    return ExitCode(max(seen, default=ExitCode.OK))
