"""One exception hierarchy; each class carries its exit code (SPEC §3) and reason code (SPEC §4)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Process exit codes; fixed by the specification, scripts depend on them."""

    OK = 0  # success; for verify: every input is VALID
    REJECTED = 1  # the prescription must not be honoured
    USAGE = 2  # bad command line
    UNREADABLE = 3  # missing file, no code, not ours, invalid input data
    ENVIRONMENT = 4  # key, passphrase, ledger or configuration problem
    INTERNAL = 70  # a bug: one line, never a traceback unless --verbose


class Reason(StrEnum):
    """Reason codes of a verdict; spelled as in the specification."""

    NO_CODE_FOUND = "no_code_found"
    NOT_A_PRESCRIPTION = "not_a_prescription"
    MALFORMED = "malformed"
    SIGNATURE_INVALID = "signature_invalid"
    UNKNOWN_SIGNER = "unknown_signer"
    UNTRUSTED_CHAIN = "untrusted_chain"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_REVOKED = "certificate_revoked"
    PRESCRIBER_MISMATCH = "prescriber_mismatch"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FULLY_DISPENSED = "fully_dispensed"
    QUANTITY_EXCEEDED = "quantity_exceeded"
    # Finer refusals of the dispensing rules (SPEC §6).
    RENEWAL_NOT_DUE = "renewal_not_due"
    NARCOTIC_WINDOW = "narcotic_window"
    SUBSTITUTION_FORBIDDEN = "substitution_forbidden"
    CONFLICTING_RECORD = "conflicting_record"
    # No usable CRL for an authority of the chain, or one past its next update beyond the
    # grace the trust store allows: whether the signer was revoked is unknown.
    REVOCATION_UNKNOWN = "revocation_unknown"
    UNREADABLE_INPUT = "unreadable_input"


#: Reasons that make an input unreadable (exit 3) rather than rejected (exit 1).
UNREADABLE_REASONS = frozenset(
    {Reason.NO_CODE_FOUND, Reason.NOT_A_PRESCRIPTION, Reason.UNREADABLE_INPUT}
)


class Error(Exception):
    """Base of every error eprescrire raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL
    reason: Reason | None = None

    def diagnostics(self) -> str:
        """One line for people; never contains key material or patient data."""
        return str(self)


class UsageError(Error):
    exit_code = ExitCode.USAGE


class InputError(Error):
    """Unreadable input: a missing file, data that is not ours, or invalid prescription input."""

    exit_code = ExitCode.UNREADABLE
    reason = Reason.UNREADABLE_INPUT


class FieldError:
    """One failed rule on one field of a prescription input."""

    __slots__ = ("field", "message")

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldError) and (self.field, self.message) == (
            other.field,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.field, self.message))


class ValidationError(InputError):
    """A prescription input broke one or more rules; carries every error at once."""

    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{len(errors)} invalid field(s): " + "; ".join(map(str, errors)))


class EnvironmentProblem(Error):
    """Missing or unreadable key, wrong passphrase, ledger unavailable, bad configuration."""

    exit_code = ExitCode.ENVIRONMENT


class KeyFileError(EnvironmentProblem):
    pass


class TrustStoreError(EnvironmentProblem):
    pass


class VerificationError(Error):
    """A prescription must not be honoured; carries the reason code."""

    exit_code = ExitCode.REJECTED

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        super().__init__(message)
        if reason in UNREADABLE_REASONS:
            self.exit_code = ExitCode.UNREADABLE
