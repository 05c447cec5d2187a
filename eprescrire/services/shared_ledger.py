"""The shared ledger's administration (PostgreSQL): create or upgrade its schema (``ledger
init``), add a site from its certificate (``ledger add-site``), and move a pharmacy's SQLite
ledgers into it (``ledger import LEDGER.sqlite3``), keeping their records verifiable."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eprescrire import config, ids
from eprescrire.errors import InputError, UsageError
from eprescrire.results import result

SITE_KINDS = ("pharmacy", "prescriber", "auditor")


def shared_url(location: str | None) -> str:
    """The shared ledger's URL (``--ledger`` or EPRESCRIRE_LEDGER). Raises UsageError when it
    is not a postgresql:// URL."""
    url = config.ledger_location(location)
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("--ledger: a shared ledger's postgresql:// URL is needed here")
    return url


@dataclass(frozen=True)
class InitResult:
    ledger: str  # the URL, password redacted
    id: str
    schema_before: int
    schema: int

    def to_json(self) -> dict[str, Any]:
        return result(
            self.ledger,
            "ok",
            ledger=self.ledger,
            id=self.id,
            schema_before=self.schema_before,
            schema=self.schema,
        )


def init(location: str | None) -> InitResult:
    """Create or upgrade the shared ledger's schema, group roles and grants (as its
    administrator). Refused when the database's schema is newer than this version's."""
    from eprescrire.ledger import postgres

    url = shared_url(location)
    before, after, ledger_id = postgres.initialise(url)
    return InitResult(postgres.redact(url), ledger_id, before, after)


@dataclass(frozen=True)
class SiteRequest:
    """A site (or person) to add: its certificate (its common name is the role), its kind, its
    FINESS (a pharmacy) or RPPS (a pharmacist; a prescriber's comes from the certificate), and
    for a SCRAM login a role name and a file holding the password."""

    certificate: Path
    kind: str
    finess: str | None = None
    rpps: str | None = None
    role: str | None = None
    password_file: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise UsageError(f"--kind must be {', '.join(SITE_KINDS[:-1])} or {SITE_KINDS[-1]}")


@dataclass(frozen=True)
class SiteResult:
    role: str
    kind: str
    finess: str | None
    rpps: str | None

    def to_json(self) -> dict[str, Any]:
        return result(
            self.role, "added", role=self.role, kind=self.kind, finess=self.finess, rpps=self.rpps
        )


def _identifier(check: Any, value: str, option: str) -> str:
    try:
        checked: str = check(value)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from e
    return checked


def add_site(location: str | None, request: SiteRequest) -> SiteResult:
    """Add the site's login role in the group of its kind, with the identity the database
    checks on every record it writes."""
    from cryptography import x509

    from eprescrire.ledger import postgres

    url = shared_url(location)
    finess = (
        None
        if request.finess is None
        else _identifier(ids.check_finess, request.finess, "--finess")
    )
    rpps = None if request.rpps is None else _identifier(ids.check_rpps, request.rpps, "--rpps")
    try:
        data = request.certificate.read_bytes()
    except OSError as e:
        raise InputError(f"{request.certificate}: {e.strerror}") from e
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as e:
        raise InputError(f"{request.certificate}: not an X.509 certificate") from e
    password = None
    if request.password_file is not None:
        try:
            password = request.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{request.password_file}: cannot read the password") from e
        if not password:
            raise InputError(f"{request.password_file}: the password is empty")
    try:
        role = postgres.add_site(
            url,
            certificate,
            request.kind,
            finess=finess,
            rpps=rpps,
            role=request.role,
            password=password,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    return SiteResult(role, request.kind, finess, rpps)


def is_sqlite_ledger(path: Path) -> bool:
    """Whether ``path`` is a SQLite file (a pharmacy's ledger to move into the shared one)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@dataclass(frozen=True)
class LedgerImportResult:
    input: str
    source_ledger: str
    records: int
    prescriptions: int

    def to_json(self) -> dict[str, Any]:
        return result(
            self.input,
            "imported",
            source_ledger=self.source_ledger,
            records=self.records,
            prescriptions=self.prescriptions,
        )


def import_ledgers(location: str | None, sources: Sequence[Path]) -> Iterator[LedgerImportResult]:
    """Append each SQLite ledger's records to the shared ledger, per prescription chain."""
    from eprescrire.ledger import open_ledger, postgres

    url = shared_url(location)
    with open_ledger(url, create=False) as target:
        assert isinstance(target, postgres.PostgresLedger)
        for file in sources:
            with open_ledger(str(file), create=False) as source:
                appended, prescriptions = postgres.import_sqlite(source, target)
                yield LedgerImportResult(str(file), source.ledger_id, appended, prescriptions)


__all__ = [
    "InitResult",
    "LedgerImportResult",
    "SiteRequest",
    "SiteResult",
    "add_site",
    "import_ledgers",
    "init",
    "is_sqlite_ledger",
    "shared_url",
]
