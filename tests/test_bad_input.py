"""Bad input gets its exit code and one line, never exit 70; one bad input never stops a
batch (``--jobs 2`` included)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import ASSETS, EXAMPLES, KEYS

REFERENCE = (EXAMPLES / "reference.toml").read_text("utf-8")


def _one_line(result) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _overflowing_issue_date(tmp_path: Path) -> Path:
    target = tmp_path / "overflow.toml"
    target.write_text("issued = 9999-12-31T23:59:59-23:59\n" + REFERENCE, "utf-8")
    return target


def _deep_toml(tmp_path: Path) -> Path:
    target = tmp_path / "deep.toml"
    target.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n" + REFERENCE, "utf-8")
    return target


def _huge_csv_field(tmp_path: Path) -> Path:
    target = tmp_path / "huge.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rx", "line.label"])
    writer.writerow(["1", "x" * (129 * 1024)])
    target.write_text(buffer.getvalue(), "utf-8")
    return target


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (_overflowing_issue_date, "issued"),
        (_deep_toml, "nested too deeply"),
        (_huge_csv_field, "CSV"),
    ],
)
def test_issue_refuses_bad_input_in_one_line(
    make, field: str, tmp_path: Path, key_file, cli_env, run_cli
) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("issue", make(tmp_path), "--key", key_file, "--out-dir", tmp_path / "out")
    assert result.code == 3, result
    assert field in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_one_bad_input_does_not_stop_a_parallel_batch(
    tmp_path: Path, key_file, cli_env, run_cli
) -> None:
    inputs = [
        _overflowing_issue_date(tmp_path),
        _deep_toml(tmp_path),
        EXAMPLES / "reference.toml",
        EXAMPLES / "antibiotic.toml",
    ]
    result = run_cli(
        "issue", *inputs, "--key", key_file, "--out-dir", tmp_path / "out", "--jobs", "2", "--json"
    )
    summaries = result.json_lines()
    assert [s["status"] for s in summaries] == ["invalid", "invalid", "issued", "issued"]
    assert result.code == 3, result
    assert len(list((tmp_path / "out").glob("*.json"))) == 2


def test_out_dir_pointing_at_a_file(tmp_path: Path, key_file, cli_env, run_cli) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    result = run_cli("issue", EXAMPLES / "reference.toml", "--key", key_file, "--out-dir", target)
    assert result.code == 2, result
    _one_line(result)
    assert "not a directory" in result.stderr


def test_trust_add_of_a_file_saying_x509_crl(tmp_path: Path, cli_env, run_cli) -> None:
    result = run_cli(
        "trust", "add", ASSETS / "crl" / "not-a-crl.pem", "--trust", tmp_path / "trust"
    )
    assert result.code == 2, result
    _one_line(result)
    assert "not a valid CRL" in result.stderr


@pytest.mark.parametrize("serial", ["0", "-1", "9" * 100])
def test_keys_revoke_refuses_a_serial_no_certificate_has(
    serial: str, tmp_path: Path, cli_env, run_cli
) -> None:
    import shutil

    authority = tmp_path / "authority.p12"
    shutil.copyfile(KEYS / "demo-authority.p12", authority)
    authority.chmod(0o600)
    crl = tmp_path / "crl.pem"
    shutil.copyfile(KEYS / "demo-authority.crl.pem", crl)
    before = crl.read_bytes()
    result = run_cli("keys", "revoke", "--authority", authority, "--crl", crl, "--", serial)
    assert result.code == 2, result
    _one_line(result)
    assert crl.read_bytes() == before


def test_trust_toml_with_nested_algorithms(tmp_path: Path, cli_env, run_cli) -> None:
    import shutil

    trust = tmp_path / "trust"
    shutil.copytree(KEYS / "demo-trust", trust)
    (trust / "trust.toml").write_text("algorithms = [[1]]\n", "utf-8")
    result = run_cli("verify", ASSETS / "crl" / "rx.json", "--trust", trust)
    assert result.code == 4, result
    _one_line(result)
    assert json.dumps("algorithms")[1:-1] in result.stderr
