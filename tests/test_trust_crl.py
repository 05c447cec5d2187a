"""CRLs: only a full, current CRL is relied on (tests/assets/crl)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ASSETS

CORPUS = ASSETS / "crl"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
AT = MANIFEST["at"]


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A copy of the corpus trust store: the authority and its full CRL (one revocation)."""
    target = tmp_path / "trust"
    shutil.copytree(CORPUS / "trust", target)
    return target


def _verdict(run_cli, document: str, trust: Path) -> tuple[int, dict]:
    result = run_cli("verify", CORPUS / document, "--trust", trust, "--at", AT, "--json")
    assert "Traceback" not in result.stderr
    (verdict,) = result.json_lines()
    return result.code, verdict


def _codes(verdict: dict) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


@pytest.mark.parametrize("name", sorted(MANIFEST["refused"]))
def test_trust_add_refuses_what_is_not_a_full_crl(name: str, store: Path, run_cli) -> None:
    before = sorted(p.read_bytes() for p in (store / "crls").iterdir())
    result = run_cli("trust", "add", CORPUS / name, "--trust", store)
    assert result.code == 2, (MANIFEST["refused"][name]["attack"], result)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert sorted(p.read_bytes() for p in (store / "crls").iterdir()) == before
    # The revoked prescriber stays revoked.
    code, verdict = _verdict(run_cli, "revoked.json", store)
    assert (code, _codes(verdict)) == (1, ["certificate_revoked"])


@pytest.mark.parametrize("name", sorted(set(MANIFEST["refused"]) - {"not-a-crl.pem"}))
def test_trust_crl_refuses_it_too(name: str, store: Path, run_cli) -> None:
    result = run_cli("trust", "crl", CORPUS / name, "--trust", store)
    assert result.code == 2 and "refusing the CRL" in result.stderr, result


def test_a_partial_crl_planted_in_the_store_is_not_relied_on(store: Path, run_cli) -> None:
    """Copied into crls/ by hand, a delta CRL still does not stand for the full one."""
    for old in (store / "crls").iterdir():
        old.unlink()
    shutil.copyfile(CORPUS / "delta.pem", store / "crls" / "delta.pem")
    code, verdict = _verdict(run_cli, "revoked.json", store)
    assert (code, _codes(verdict)) == (1, ["revocation_unknown"])


def test_a_missing_crl_means_revocation_unknown(store: Path, run_cli) -> None:
    for old in (store / "crls").iterdir():
        old.unlink()
    code, verdict = _verdict(run_cli, "rx.json", store)
    assert (code, verdict["status"], _codes(verdict)) == (1, "rejected", ["revocation_unknown"])


def _with_crl(store: Path, name: str, run_cli, grace: int | None = None) -> None:
    for old in (store / "crls").iterdir():
        old.unlink()
    if grace is not None:
        (store / "trust.toml").write_text(f"crl_grace_days = {grace}\n", "utf-8")
    assert run_cli("trust", "add", CORPUS / name, "--trust", store).code == 0


def test_a_year_old_crl_means_revocation_unknown(store: Path, run_cli) -> None:
    _with_crl(store, "year-old.pem", run_cli)
    code, verdict = _verdict(run_cli, "rx.json", store)
    assert (code, _codes(verdict)) == (1, ["revocation_unknown"])
    assert "due for renewal" in verdict["reasons"][0]["message"]
    # A revocation the stale CRL does list still stands.
    code, verdict = _verdict(run_cli, "revoked.json", store)
    assert _codes(verdict) == ["certificate_revoked"]


def test_a_crl_within_the_grace_gives_a_warning(store: Path, run_cli) -> None:
    _with_crl(store, "three-days-late.pem", run_cli)
    code, verdict = _verdict(run_cli, "rx.json", store)
    assert (code, verdict["status"]) == (0, "valid")
    assert any("due for renewal" in w for w in verdict["warnings"])


def test_the_grace_is_set_in_trust_toml(store: Path, run_cli) -> None:
    _with_crl(store, "three-days-late.pem", run_cli, grace=0)
    assert _codes(_verdict(run_cli, "rx.json", store)[1]) == ["revocation_unknown"]
    _with_crl(store, "three-days-late.pem", run_cli, grace=3)
    assert _verdict(run_cli, "rx.json", store)[0] == 0
    _with_crl(store, "year-old.pem", run_cli, grace=365)  # the most a store may allow
    assert _codes(_verdict(run_cli, "rx.json", store)[1]) == ["revocation_unknown"]


@pytest.mark.parametrize(
    "setting",
    [
        "algorithms = [[1]]",
        "algorithms = [1]",
        "algorithms = []",
        'algorithms = "ES256"',
        'algorithms = ["HS256"]',
        "crl_grace_days = -1",
        "crl_grace_days = 1000",
        'crl_grace_days = "7"',
        "crl_grace_days = true",
        "crl_grace = 7",
        "a = " + "[" * 5000 + "]" * 5000,
    ],
)
def test_a_bad_trust_toml_is_one_line_exit_4(setting: str, store: Path, run_cli) -> None:
    (store / "trust.toml").write_text(setting + "\n", "utf-8")
    for args in (("verify", CORPUS / "rx.json"), ("trust", "list")):
        result = run_cli(*args, "--trust", store)
        assert result.code == 4, (setting, result)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "trust.toml" in result.stderr
