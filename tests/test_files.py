"""Files are created new, 0600 when they hold patient data, never through a symbolic link, and
never half-written; trust-store files and CRLs are replaced in one step; a ledger path that is
a dangling symbolic link is refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from eprescrire import files
from eprescrire.errors import InputError, TrustStoreError
from eprescrire.ledger import LedgerError, open_ledger

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "examples" / "reference.toml"
PHARMACIST = "10003456786"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture()
def wide_umask() -> Any:
    old = os.umask(0)
    yield
    os.umask(old)


def test_create_is_private_by_default_whatever_the_umask(tmp_path: Path, wide_umask: Any) -> None:
    files.create(tmp_path / "a.json", b"{}")
    files.create(tmp_path / "b.pem", b"cert", mode=files.PUBLIC)
    assert mode(tmp_path / "a.json") == 0o600
    assert mode(tmp_path / "b.pem") == 0o644
    assert leftovers(tmp_path) == []


def test_create_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        files.create(target, b"new")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("dangling", [True, False])
def test_create_never_follows_a_symlink(tmp_path: Path, dangling: bool) -> None:
    victim = tmp_path / "victim"
    if not dangling:
        victim.write_bytes(b"precious")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    with pytest.raises(InputError, match="already exists"):
        files.create(link, b"patient data")
    assert link.is_symlink()
    assert victim.exists() != dangling
    if not dangling:
        assert victim.read_bytes() == b"precious"


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    with pytest.raises(RuntimeError), files.creating(target) as handle:
        handle.write(b"half")
        raise RuntimeError("the export failed half-way")
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_missing_directory_is_unreadable_output(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write"):
        files.create(tmp_path / "absent" / "a.json", b"{}")
    with pytest.raises(InputError, match="cannot write"):
        files.check_target(tmp_path / "absent" / "a.json")


def test_replace_swaps_a_symlink_not_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "crl.pem"
    link.symlink_to(victim)
    files.replace(link, b"new crl", mode=files.PUBLIC, error=TrustStoreError)
    assert not link.is_symlink() and link.read_bytes() == b"new crl"
    assert mode(link) == 0o644
    assert victim.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_dangling_symlink_ledger_refused(tmp_path: Path) -> None:
    link = tmp_path / "ledger.sqlite3"
    link.symlink_to(tmp_path / "elsewhere.sqlite3")
    with pytest.raises(LedgerError, match="dangling symbolic link"):
        open_ledger(str(link))
    assert not (tmp_path / "elsewhere.sqlite3").exists()


def test_commands_create_patient_files_0600(
    tmp_path: Path,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    pharmacy_key_file: Path,
    wide_umask: Any,
) -> None:
    rx, pdf, png = tmp_path / "rx.json", tmp_path / "rx.pdf", tmp_path / "rx.png"
    issued = run_cli("issue", REFERENCE, "--key", key_file, "--out", rx, "--pdf", pdf, "--qr", png)
    assert issued.code == 0, issued
    rendered = tmp_path / "again.pdf"
    assert run_cli("render", rx, "--out", rendered, "-q").code == 0
    image = tmp_path / "again.svg"
    assert run_cli("qr", rx, "--out", image, "-q").code == 0
    ledger = tmp_path / "ledger.sqlite3"
    trust = ROOT / "keys" / "demo-trust"
    dispensed = run_cli(
        "dispense", rx, "--all", "--pharmacist", PHARMACIST, "--ledger", ledger, "--trust", trust
    )
    assert dispensed.code == 0, dispensed
    export = tmp_path / "export.jsonl"
    assert run_cli("ledger", "export", "--ledger", ledger, "--out", export).code == 0
    kinds = [json.loads(line)["kind"] for line in export.read_text().splitlines()]
    assert kinds[0] == "prescription" and set(kinds[1:]) == {"dispensing"}
    checkpoint = tmp_path / "head.json"
    made = run_cli(
        "ledger", "checkpoint", "--ledger", ledger, "--key", pharmacy_key_file, "--out", checkpoint
    )
    assert made.code == 0, made
    cancellation = tmp_path / "cancel.json"
    cancelled = run_cli(
        "cancel", rx, "--key", key_file, "--reason", "erreur", "--ledger", ledger,
        "--trust", trust, "--out", cancellation,
    )  # fmt: skip
    assert cancelled.code == 0, cancelled
    for path in (rx, pdf, png, rendered, image, ledger, export, checkpoint, cancellation):
        assert mode(path) == 0o600, path
    assert leftovers(tmp_path) == []


def test_commands_refuse_a_symlink_as_output(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    victim = tmp_path / "victim"
    for option, name in (("--out", "rx.json"), ("--pdf", "rx.pdf"), ("--qr", "rx.png")):
        link = tmp_path / name
        link.symlink_to(victim)
        extra = [] if option == "--out" else ["--out", tmp_path / f"x{name}.json"]
        result = run_cli("issue", REFERENCE, "--key", key_file, option, link, *extra, "--json")
        assert result.code == 3, (option, result)
        assert not victim.exists()
        (summary,) = result.json_lines()
        assert (
            summary["status"] == "invalid" and "already exists" in summary["reasons"][0]["message"]
        )
        link.unlink()
    export = tmp_path / "export.jsonl"
    export.symlink_to(victim)
    ledger = tmp_path / "ledger.sqlite3"
    open_ledger(str(ledger)).close()
    result = run_cli("ledger", "export", "--ledger", ledger, "--out", export)
    assert result.code == 3 and "already exists" in result.stderr
    assert not victim.exists()


def test_exported_json_is_one_result_shape(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = tmp_path / "rx.json"
    assert run_cli("issue", REFERENCE, "--key", key_file, "--out", rx, "-q").code == 0
    outputs = [
        run_cli("render", rx, tmp_path / "absent.json", "--out-dir", tmp_path / "pdf", "--json"),
        run_cli("verify", rx, "--trust", ROOT / "keys" / "demo-trust", "--json"),
    ]
    ident = json.loads(rx.read_text())["id"]
    ledger = tmp_path / "ledger.sqlite3"
    trust = ROOT / "keys" / "demo-trust"
    outputs.append(
        run_cli("dispense", rx, "--line", "1", "--pharmacist", PHARMACIST, "--ledger", ledger,
                "--trust", trust, "--json")
    )  # fmt: skip
    outputs.append(
        run_cli("consent", ident, "--oppose", "--ledger", ledger, "--key", key_file, "--json")
    )
    outputs.append(run_cli("status", ident, "--ledger", ledger, "--json"))
    outputs.append(run_cli("ledger", "verify", "--ledger", ledger, "--json"))
    for output in outputs:
        for item in output.json_lines():
            assert {"input", "status", "reasons"} <= set(item), item
            for reason in item["reasons"]:
                assert set(reason) - {"field"} == {"code", "message"}, reason
    rendered = outputs[0].json_lines()
    assert [r["status"] for r in rendered] == ["rendered", "unreadable"]
    assert outputs[0].code == 3
