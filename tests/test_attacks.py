"""The negative corpus: one asset per attack, each refused with its reason and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ASSETS

CORPUS = ASSETS / "attacks"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(MANIFEST["cases"]))
def test_attack_is_refused_with_its_reason(name: str, run_cli) -> None:
    case = MANIFEST["cases"][name]
    trust = CORPUS / case.get("trust", "trust")
    result = run_cli("verify", CORPUS / name, "--trust", trust, "--at", MANIFEST["at"], "--json")
    assert "Traceback" not in result.stderr
    assert result.code == case["exit"], result
    (verdict,) = result.json_lines()
    codes = [r["code"] for r in verdict["reasons"]]
    if case["reason"] is None:
        assert verdict["status"] == "valid" and codes == []
        warnings = verdict["warnings"]
        if "warning" in case:  # authentic, but the verdict must say what is wrong
            assert any(case["warning"] in w for w in warnings), (case["attack"], warnings)
        else:
            assert warnings == []
    else:
        assert codes == [case["reason"]], case["attack"]
        assert verdict["status"] in ("rejected", "unreadable")
        # What is shown is only ever what was signed, and never for a forged document.
        if case["reason"] not in ("expired", "not_yet_valid"):
            assert verdict["prescription"] is None
            assert verdict["id"] is None and verdict["signer"] is None


def test_every_attack_named_in_the_plan_is_in_the_corpus() -> None:
    wanted = {
        "tampered-field.json": "signature_invalid",
        "transplanted-signature.json": "signature_invalid",
        "unknown-signer.json": "unknown_signer",
        "untrusted-authority.json": "untrusted_chain",
        "expired-certificate.json": "certificate_expired",
        "revoked-certificate.json": "certificate_revoked",
        "rpps-mismatch.json": "prescriber_mismatch",
        "alg-none.json": "signature_invalid",
        "hs256-public-key.json": "signature_invalid",
        "kid-path-traversal.json": "unknown_signer",
        "duplicate-keys-document.json": "malformed",
        "duplicate-keys-payload.json": "malformed",
        "older-than-3-months.json": "expired",
        "issued-in-future.json": "not_yet_valid",
        "rs256-verified-as-ps256.json": "signature_invalid",
        "ps256-verified-as-rs256.json": "signature_invalid",
        "rsa-1024-key.json": "signature_invalid",
        "es256-header-rsa-key.json": "signature_invalid",
        "ps256-header-ec-key.json": "signature_invalid",
        "rs256-not-pinned.json": "signature_invalid",
        "ps256-not-pinned.json": "signature_invalid",
        "name-not-certificate.json": None,
        "expired-since-signing.json": None,
    }
    for name, reason in wanted.items():
        assert MANIFEST["cases"][name]["reason"] == reason


def test_generator_reproduces_the_same_verdicts(tmp_path: Path, run_cli) -> None:
    """The corpus is made by a script kept beside it; a fresh run gives the same verdicts."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("attack_generator", CORPUS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = module.generate(tmp_path)
    assert manifest.keys() == MANIFEST["cases"].keys()
    for name in (
        "tampered-field.json",
        "revoked-certificate.json",
        "exactly-3-months.json",
        "rsa-ps256-valid.json",
        "rs256-verified-as-ps256.json",
        "rsa-1024-key.json",
        "name-not-certificate.json",
        "expired-since-signing.json",
    ):
        result = run_cli(
            "verify",
            tmp_path / name,
            "--trust",
            tmp_path / str(manifest[name].get("trust", "trust")),
            "--at",
            MANIFEST["at"],
            "--json",
        )
        assert result.code == manifest[name]["exit"], result
