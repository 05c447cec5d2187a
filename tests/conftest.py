"""Shared fixtures: demo credentials copied with safe modes, trust stores, issued documents."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eprescrire import inputs, keys, model, signing
from eprescrire.trust import TrustStore

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "keys"
EXAMPLES = ROOT / "examples"
ASSETS = Path(__file__).resolve().parent / "assets"
PASSPHRASE = b"demo-only"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))


@pytest.fixture(scope="session")
def demo_credentials() -> keys.Credentials:
    """The demo prescriber (Dr Claire Martin, RPPS 10003456786)."""
    return keys.load_pkcs12(KEYS / "demo-prescriber.p12", PASSPHRASE, insecure=True)


@pytest.fixture(scope="session")
def demo_authority() -> keys.Credentials:
    return keys.load_pkcs12(KEYS / "demo-authority.p12", PASSPHRASE, insecure=True)


@pytest.fixture()
def demo_trust(tmp_path: Path) -> TrustStore:
    """A private copy of keys/demo-trust, safe to modify."""
    target = tmp_path / "trust"
    shutil.copytree(KEYS / "demo-trust", target)
    return TrustStore.open(target)


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    """A copy of the demo prescriber's PKCS#12 file with mode 0600."""
    target = tmp_path / "prescriber.p12"
    shutil.copyfile(KEYS / "demo-prescriber.p12", target)
    target.chmod(0o600)
    return target


@pytest.fixture()
def pharmacy_key_file(tmp_path: Path) -> Path:
    """A copy of the demo pharmacy's PKCS#12 file (checkpoints, consent) with mode 0600."""
    target = tmp_path / "pharmacy.p12"
    shutil.copyfile(KEYS / "demo-pharmacy.p12", target)
    target.chmod(0o600)
    return target


@pytest.fixture()
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Environment for CLI runs: demo passphrase, a private EPRESCRIRE_HOME."""
    env = {"EPRESCRIRE_PASSPHRASE": "demo-only", "EPRESCRIRE_HOME": str(tmp_path / "home")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EPRESCRIRE_TRUST", raising=False)
    monkeypatch.delenv("EPRESCRIRE_LEDGER", raising=False)
    return env


def load_example(name: str = "reference.toml") -> Any:
    return inputs.read_input(EXAMPLES / name)


@pytest.fixture()
def issue_document(
    demo_credentials: keys.Credentials,
) -> Callable[..., signing.SignedDocument]:
    """issue_document(name="reference.toml", now=None, **overrides) -> SignedDocument."""

    def make(
        name: str = "reference.toml", now: dt.datetime | None = None, data: Any = None
    ) -> signing.SignedDocument:
        moment = now or dt.datetime.now(dt.UTC)
        prescription = model.from_input(
            data if data is not None else load_example(name), now=moment
        )
        return signing.sign(prescription, demo_credentials)

    return make


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def json_lines(self) -> list[Any]:
        import json

        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


@pytest.fixture()
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """run_cli(*args, stdin=b"") runs ``eprescrire.cli.main`` in-process, as the console script
    does (same error mapping and exit codes), and captures its output."""
    import contextlib
    import io
    import sys

    from eprescrire.cli import main

    def run(*args: str, stdin: bytes = b"") -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as e:
                code = int(e.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


# --------------------------------------------------------------------------------------------
# Ledger backends: every backend-neutral ledger test runs once per entry of LEDGER_BACKENDS.


class LedgerFactory:
    """Opens fresh ledgers of one backend: ``factory()`` a new ledger, ``factory("b")`` another
    one, ``factory.location("b")`` where it lives (a path or a URL, as ``--ledger`` takes it);
    :meth:`cleanup` gives back what a server backend made."""

    def __init__(
        self,
        backend: str,
        location: Callable[[str], str],
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self._location = location
        self._cleanup = cleanup

    def location(self, name: str = "ledger") -> str:
        return self._location(name)

    def __call__(self, name: str = "ledger", *, create: bool = True) -> Any:
        from eprescrire.ledger import open_ledger

        return open_ledger(self.location(name), create=create)

    def cleanup(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def _sqlite_backend(tmp_path: Path) -> LedgerFactory:
    return LedgerFactory("sqlite", lambda name: str(tmp_path / f"{name}.sqlite3"))


def _postgresql_backend(tmp_path: Path) -> LedgerFactory:
    """A database per ledger name, each an initialised ledger on the test cluster
    (tests/postgres_support.py), given back on cleanup."""
    from tests.postgres_support import server

    pg = server()
    urls: dict[str, str] = {}

    def location(name: str) -> str:
        if name not in urls:
            urls[name] = pg.fresh_ledger()
        return urls[name]

    def cleanup() -> None:
        while urls:
            pg.drop(urls.popitem()[1])

    return LedgerFactory("postgresql", location, cleanup)


#: Backend name -> factory maker (a fresh database or file for each test).
LEDGER_BACKENDS: dict[str, Callable[[Path], LedgerFactory]] = {
    "sqlite": _sqlite_backend,
    "postgresql": _postgresql_backend,
}


@pytest.fixture(params=list(LEDGER_BACKENDS))
def ledger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerFactory]:
    """A factory of fresh ledgers, once per backend in LEDGER_BACKENDS."""
    factory = LEDGER_BACKENDS[request.param](tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture()
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """set_clock(moment) makes ``moment`` the real clock of in-process commands (eprescrire's
    ``rules.now``): how tests let days pass, since ``--at`` never moves the clock of a write."""
    from eprescrire import rules

    def set_to(moment: dt.datetime) -> None:
        monkeypatch.setattr(rules, "now", lambda: moment)

    return set_to
