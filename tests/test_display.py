"""Signed text is shown harmlessly: the display corpus (tests/assets/display) and the rule
that refuses such text at ``issue``."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from conftest import ASSETS, load_example
from eprescrire import model, text
from eprescrire.errors import ValidationError

CORPUS = ASSETS / "display"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
AT = MANIFEST["at"]


def _unsafe(output: str) -> list[str]:
    return [c for c in output if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.mark.parametrize("name", sorted(MANIFEST["cases"]))
def test_signed_text_cannot_forge_lines_in_the_verdict(name: str, run_cli) -> None:
    result = run_cli("verify", CORPUS / name, "--trust", CORPUS / "trust", "--at", AT)
    assert result.code == 0, result  # the signature is good: the document verifies
    output = result.stdout + result.stderr
    lines = output.splitlines()
    # One verdict line, one numbered line: none forged by the signed text.
    assert [line for line in lines if line.startswith("VALIDE")] == [lines[0]], output
    assert [line for line in lines if re.match(r"\s*\d+\. ", line)] == [
        line for line in lines if line.startswith("  1. ")
    ], output
    assert not any(re.match(r"\s*2\. ", line) for line in lines), output
    assert _unsafe(output) == [], MANIFEST["cases"][name]["attack"]
    # What was signed is still there, visibly escaped.
    # (case-blind: the family name is shown in capitals)
    assert text.printable(MANIFEST["cases"][name]["value"]).casefold() in output.casefold()


def test_the_json_verdict_keeps_the_exact_signed_text(run_cli) -> None:
    name = "newline-in-label.json"
    result = run_cli(
        "verify", CORPUS / name, "--trust", CORPUS / "trust", "--at", AT, "--json", "--quiet"
    )
    (verdict,) = result.json_lines()
    assert verdict["prescription"]["lines"][0]["label"] == MANIFEST["cases"][name]["value"]


def test_the_pdf_shows_a_signed_line_break_as_an_escape(tmp_path: Path, run_cli) -> None:
    import pypdfium2 as pdfium

    out = tmp_path / "rx.pdf"
    result = run_cli("render", CORPUS / "newline-in-label.json", "--out", out)
    assert result.code == 0, result
    document = pdfium.PdfDocument(out)
    try:
        page_text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    flat = page_text.replace("\r", "").replace("\n", " ")
    assert "mg\\nVALIDE" in flat.replace(" ", "") or "mg\\nVALIDE" in flat
    assert not any(line.strip().startswith("VALIDE") for line in page_text.splitlines())


def test_pdf_markup_escapes_controls_but_keeps_line_breaks_in_notes() -> None:
    from eprescrire import pdf_layout

    assert "<br/>" not in pdf_layout.markup("DOLIPRANE\nVALIDE")
    assert "\\n" in pdf_layout.markup("DOLIPRANE\nVALIDE")
    assert "\u202e" not in pdf_layout.markup("abc\u202edef")
    assert pdf_layout.markup("ligne 1\nligne 2", newlines=True).count("<br/>") == 1


# ------------------------------------------------------------------------------ printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, accentuée — ok", "plain text, accentuée — ok"),
        ("a\nb", "a\\nb"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x1b[2J", "\\x1b[2J"),
        ("\x9b2K\x7f", "\\x9b2K\\x7f"),
        ("\u202eabc\u202c", "\\u202eabc\\u202c"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("a\u200bb\u200fc\u2060d\ufeff", "a\\u200bb\\u200fc\\u2060d\\ufeff"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    ],
)
def test_printable_escapes_what_could_act(raw: str, shown: str) -> None:
    assert text.printable(raw) == shown


def test_printable_keeps_line_breaks_only_when_asked() -> None:
    assert text.printable("a\nb\u202e", newlines=True) == "a\nb\\u202e"


# ------------------------------------------------------------------------------ at issue


def _input(path: str, value: Any) -> dict[str, Any]:
    data = load_example()
    target = data
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[leaf] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("lines.0.label", "METFORMINE\nVALIDE", "lines[1].label"),
        ("lines.0.posology", "1 cp\x9b2K", "lines[1].posology"),
        ("lines.0.label", "METFORMINE\x7f", "lines[1].label"),
        ("patient.family_name", "Durand\u202e", "patient.family_name"),
        ("patient.given_name", "Lou\u2066ise", "patient.given_name"),
        ("prescriber.name", "Dr\u200b Claire Martin", "prescriber.name"),
        ("prescriber.specialty", "Médecine\u200e générale", "prescriber.specialty"),
        (
            "prescriber.facility.address",
            "12 rue\ufeff de la Roquette",
            "prescriber.facility.address",
        ),
        ("lines.1.unit", "boîte\u2028de 30", "lines[2].unit"),
        ("notes", "Revoir\x1b[2J dans un mois", "notes"),
        ("notes", "Revoir\u202e dans un mois", "notes"),
    ],
)
def test_issue_refuses_control_bidi_and_invisible_characters(
    path: str, value: str, field: str
) -> None:
    import datetime as dt

    with pytest.raises(ValidationError) as raised:
        model.from_input(_input(path, value), now=dt.datetime.now(dt.UTC))
    assert [e.field for e in raised.value.errors] == [field]
    assert "characters" in raised.value.errors[0].message


def test_notes_may_hold_line_breaks() -> None:
    import datetime as dt

    p = model.from_input(
        _input("notes", "Revoir dans un mois.\nBilan sanguin avant."), now=dt.datetime.now(dt.UTC)
    )
    assert p.notes == "Revoir dans un mois.\nBilan sanguin avant."


def test_issue_names_the_field_on_the_command_line(
    tmp_path: Path, key_file, cli_env, run_cli
) -> None:
    data = _input("lines.0.label", "METFORMINE 1000 mg\n2. MORPHINE 100 mg")
    data["patient"]["birth_date"] = data["patient"]["birth_date"].isoformat()
    source = tmp_path / "rx.json"
    source.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    result = run_cli("issue", source, "--key", key_file, "--out", tmp_path / "out.json")
    assert result.code == 3, result
    assert "lines[1].label" in result.stderr and "U+000A" in result.stderr
    assert not (tmp_path / "out.json").exists()
