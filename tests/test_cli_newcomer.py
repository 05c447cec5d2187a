"""What a newcomer trips on: trust ids, the default ledger, conflicting options, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eprescrire.errors import UsageError
from eprescrire.trust import Entry, TrustStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_trust_list_shows_the_whole_id_on_a_narrow_terminal(
    demo_trust: TrustStore, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    text = run_cli("trust", "list", "--trust", demo_trust.path).stdout
    for entry in demo_trust.entries():
        assert entry.ident in text, text


def test_trust_remove_takes_an_unambiguous_prefix(demo_trust: TrustStore, run_cli) -> None:
    authority = next(e for e in demo_trust.entries() if e.kind == "authority")
    signer = next(e for e in demo_trust.entries() if e.kind == "signer")
    short = run_cli("trust", "remove", "--trust", demo_trust.path, "--", authority.ident[:3])
    assert short.code == 2 and "4 characters" in short.stderr
    removed = run_cli(
        "trust", "remove", "--trust", demo_trust.path, "--", authority.ident[:6].upper()
    )
    assert removed.code == 0, removed.stderr
    assert authority.ident in removed.stderr
    assert run_cli("trust", "remove", "--trust", demo_trust.path, "--", signer.ident[:5]).code == 0
    assert not any(demo_trust.path.glob("*/*.pem"))


def test_trust_remove_refuses_an_ambiguous_prefix_naming_the_candidates(
    demo_trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    twins = [Entry("authority", "A", "abcd1111", None), Entry("authority", "B", "abcd2222", None)]
    monkeypatch.setattr(TrustStore, "entries", lambda self: twins)
    with pytest.raises(UsageError, match="ambiguous: authority abcd1111, authority abcd2222"):
        demo_trust.remove("abcd")
    assert any(demo_trust.path.glob("authorities/*.pem"))


def test_render_onto_the_pdf_issue_wrote_says_the_output_exists(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    rx, pdf = tmp_path / "rx.json", tmp_path / "rx.pdf"
    issued = run_cli(
        "issue", EXAMPLES / "reference.toml", "--key", key_file, "--out", rx, "--pdf", pdf
    )
    assert issued.code == 0, issued.stderr
    again = run_cli("render", rx, "--out", pdf)
    # Exit 3, as for every existing output (README "Exit codes"), and the message says why.
    assert again.code == 3
    assert "rx.pdf already exists; refusing to overwrite it" in again.stderr
    assert "unreadable" not in again.stderr


def test_dispense_all_and_line_exclude_each_other(run_cli, cli_env, tmp_path: Path) -> None:
    result = run_cli(
        "dispense", tmp_path / "rx.json", "--all", "--line", "1", "--pharmacist", "12345678901"
    )
    assert result.code == 2
    assert "--all and --line exclude each other" in result.stderr
    neither = run_cli("dispense", tmp_path / "rx.json", "--pharmacist", "12345678901")
    assert neither.code == 2 and "say what to dispense" in neither.stderr


def test_the_default_ledger_is_named_on_stderr(
    run_cli, cli_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EPRESCRIRE_LEDGER", raising=False)
    result = run_cli("ledger", "verify")
    default = str(Path(cli_env["EPRESCRIRE_HOME"]) / "ledger.sqlite3")
    assert f"eprescrire: ledger {default} (the default;" in result.stderr
    assert result.stdout == ""
    assert "(the default;" not in run_cli("ledger", "verify", "--quiet").stderr
    given = run_cli("ledger", "verify", "--ledger", tmp_path / "other.sqlite3")
    assert "the default" not in given.stderr
    monkeypatch.setenv("EPRESCRIRE_LEDGER", "postgresql://alice:s3cret@127.0.0.1:1/db")
    from_env = run_cli("ledger", "verify")
    assert "(from EPRESCRIRE_LEDGER)" in from_env.stderr
    assert "s3cret" not in from_env.stderr


def test_zbar_reads_a_one_bit_scan_of_a_chronic_prescription(
    tmp_path: Path, issue_document
) -> None:
    """A 1-bit (dithered) scan at 100 dpi, slightly turned: both engines read it, zbar (and
    zxing for about one such page in ten, the identifier and signature changing the symbol)
    through the last retry (doubled, median-filtered)."""
    import pypdfium2 as pdfium
    from PIL import Image

    from eprescrire import render, scan

    document = issue_document("chronic-ald.toml")
    pdf = pdfium.PdfDocument(render.pdf_bytes(document, page="A5"))
    page = pdf[0].render(scale=100 / 72, grayscale=True).to_pil().convert("L")
    pdf.close()
    turned = page.rotate(2, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    one_bit = tmp_path / "scan.png"
    turned.convert("1").save(one_bit)
    assert Image.open(one_bit).mode == "1"
    (text,) = scan.read_codes(one_bit, engine="zxing")
    assert scan.read_codes(one_bit, engine="zbar") == [text]
