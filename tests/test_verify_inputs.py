"""What a pharmacist may feed to ``verify``: scanner text, pipes, odd pages, odd times."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import KEYS

TRUST = ["--trust", str(KEYS / "demo-trust")]


def _qr(text: str) -> Image.Image:
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=4, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def test_scanner_codes_separated_by_carriage_returns(issue_document, run_cli, cli_env) -> None:
    from eprescrire import qr

    first, second = qr.encode(issue_document()), qr.encode(issue_document("antibiotic.toml"))
    for separator in ("\r", "\n", "\r\n"):
        result = run_cli(
            "verify", "-", *TRUST, "--json", stdin=(first + separator + second + separator).encode()
        )
        assert result.code == 0, (separator, result)
        assert [v["status"] for v in result.json_lines()] == ["valid", "valid"]


def test_other_codes_on_the_page_are_set_aside(
    issue_document, tmp_path: Path, run_cli, cli_env
) -> None:
    from eprescrire import qr

    page = Image.new("L", (1240, 1000), 255)
    page.paste(_qr(qr.encode(issue_document())), (60, 60))
    page.paste(_qr("https://cabinet-du-parc.example/rdv"), (800, 80))
    page.save(tmp_path / "page.png")
    result = run_cli("verify", tmp_path / "page.png", *TRUST, "--json")
    assert result.code == 0, result
    (verdict,) = result.json_lines()
    assert verdict["status"] == "valid" and "not prescriptions" in verdict["warnings"][0]
    # A page with only a foreign code is still "not a prescription".
    Image.new("L", (600, 600), 255).save(tmp_path / "blank.png")
    only_url = Image.new("L", (600, 600), 255)
    only_url.paste(_qr("https://example.org"), (50, 50))
    only_url.save(tmp_path / "url.png")
    assert (
        run_cli("verify", tmp_path / "url.png", *TRUST, "--json").json_lines()[0]["reasons"][0][
            "code"
        ]
        == "not_a_prescription"
    )


def test_a_pipe_is_read_once_and_whole(issue_document, tmp_path: Path) -> None:
    """``verify <(cat rx.json)`` or a FIFO: no first bytes lost to sniffing the type."""
    script = Path(sys.executable).parent / "eprescrire"
    document = issue_document().to_json_bytes()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [str(script), "verify", str(fifo), *TRUST, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with open(fifo, "wb") as writer:
        writer.write(document)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert json.loads(out)["status"] == "valid"


def test_images_no_scanner_makes_are_unreadable_not_a_crash(
    tmp_path: Path, run_cli, cli_env
) -> None:
    Image.new("L", (70000, 1), 255).save(tmp_path / "wide.png")
    result = run_cli("verify", tmp_path / "wide.png", *TRUST, "--json")
    assert result.code == 3 and "internal error" not in result.stderr
    assert result.json_lines()[0]["reasons"][0]["code"] == "unreadable_input"


def test_times_out_of_range_are_usage_errors(tmp_path: Path, run_cli, cli_env) -> None:
    for moment in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00"):
        result = run_cli("verify", tmp_path / "x.json", *TRUST, "--at", moment)
        assert result.code == 2 and "internal error" not in result.stderr


def test_oversized_stdin_is_unreadable(run_cli, cli_env) -> None:
    result = run_cli("verify", "-", *TRUST, "--json", stdin=b"RX1:" + b"0" * (2 << 20))
    assert result.code == 3
    assert result.json_lines()[0]["reasons"][0]["code"] == "unreadable_input"
