"""The BDPM drug reference: reading the files, the catalogue, search, and the drugs commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eprescrire.drugs import bdpm, catalogue_path
from eprescrire.drugs.catalogue import SqliteCatalogue, import_directory, open_catalogue
from eprescrire.drugs.interface import (
    CatalogueMissing,
    CatalogueUnavailable,
    ImportFailed,
    regulation_of,
)
from eprescrire.drugs.text import fold, query_words

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "assets" / "bdpm"


def _snapshot() -> Path | None:
    """The full BDPM snapshot, shared data kept beside the repository (``../shared/bdpm``), or
    beside the directory holding it; EPRESCRIRE_BDPM_SNAPSHOT names another place."""
    named = os.environ.get("EPRESCRIRE_BDPM_SNAPSHOT")
    candidates = [Path(named)] if named else []
    candidates += [base / "shared" / "bdpm" for base in (ROOT.parent, ROOT.parent.parent)]
    return next((c for c in candidates if (c / bdpm.DRUGS).is_file()), None)


SNAPSHOT = _snapshot()


@pytest.fixture()
def bdpm_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture files, safe to modify."""
    target = tmp_path / "bdpm"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture()
def cat(tmp_path: Path) -> Iterator[SqliteCatalogue]:
    path = tmp_path / "drugs.sqlite3"
    import_directory(FIXTURE, path)
    with open_catalogue(path) as opened:
        yield opened


@pytest.fixture()
def drugs_env(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("EPRESCRIRE_DRUGS", raising=False)
    monkeypatch.delenv("EPRESCRIRE_BDPM_URL", raising=False)
    return cli_env


# --------------------------------------------------------------------------------------------
# Text and conditions


def test_folding_ignores_accents_case_and_ligatures() -> None:
    assert fold("PARACÉTAMOL") == fold("paracetamol") == "paracetamol"
    assert fold("Œstradiol 75 µg") == "oestradiol 75 ug"
    assert fold("Lévothyroxine") == "levothyroxine"
    assert query_words("Amoxicilline + acide clavulanique, pour enfant") == [
        "amoxicilline",
        "acide",
        "clavulanique",
        "enfant",
    ]
    assert query_words("de la") == ["de", "la"]  # nothing but stop words: keep them


def test_conditions_are_read_into_a_regulation() -> None:
    skenan = regulation_of(
        [
            "prescription limitée à 4 semaines",
            "prescription en toutes lettres sur ordonnance sécurisée",
            "stupéfiants",
        ]
    )
    assert skenan.narcotic and skenan.secure_form and skenan.max_days == 28
    assert regulation_of(["liste II"]).list == "II"
    assert regulation_of(["liste I"]).list == "I"
    assert regulation_of(["réservé à l'usage HOSPITALIER"]).hospital == "reserve"
    assert regulation_of(["prescription hospitalière", "liste I"]).hospital == "prescription"
    assert regulation_of(["prescription initiale hospitalière annuelle"]).hospital == "initial"
    both = regulation_of(["prescription limitée à 7 jours ou 28 jours"])
    assert (both.max_days, both.min_limit_days) == (28, 7)
    assert regulation_of(["prescription limitée à 12 semaines"]).max_days == 84
    assert regulation_of(["délivrance fractionnée de 7 jours"]).fraction_days == 7
    assert regulation_of(["liste I"]).narcotic is False


# --------------------------------------------------------------------------------------------
# Reading the files


def test_fixture_encodings_and_line_ends_are_detected() -> None:
    drugs = bdpm.read_file(FIXTURE / bdpm.DRUGS, bdpm.DRUGS)
    assert (drugs.encoding, drugs.line_ending) == ("windows-1252", "CRLF")
    names = {row.name for row in drugs.rows}
    assert "DOLIPRANE 1000 mg, comprimé" in names  # é decoded from Windows-1252
    compo = bdpm.read_file(FIXTURE / bdpm.COMPOSITIONS, bdpm.COMPOSITIONS)
    assert (compo.encoding, compo.line_ending) == ("utf-8", "CRLF")
    cip = bdpm.read_file(FIXTURE / bdpm.PRESENTATIONS, bdpm.PRESENTATIONS)
    assert (cip.encoding, cip.line_ending) == ("utf-8", "LF")
    assert not drugs.problems and not compo.problems and not cip.problems


def test_prices_with_thousands_commas_and_rates() -> None:
    read = bdpm.read_file(FIXTURE / bdpm.PRESENTATIONS, bdpm.PRESENTATIONS)
    by_cip = {p.cip13: p for p in read.rows}
    lynparza = by_cip["3400930144213"]
    assert (lynparza.price_cents, lynparza.price_with_fees_cents, lynparza.fees_cents) == (
        476873,
        476975,
        102,
    )
    assert lynparza.reimbursement_rate == 100
    assert by_cip["3400935955838"].price_cents == 107
    assert by_cip["3400956369553"].price_cents is None  # no price: hospital pack
    assert by_cip["3400935955838"].declared_on == dt.date(2003, 1, 2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("60234100\tX\t3595583\n", "3 fields, expected 10 to 13"),
        (
            "6023410\t3595583\tboîte\tPrésentation active\tDéclaration de commercialisation\t02/01/2003\t3400935955838\toui\t65%\t1,07\t2,09\t1,02\t\n",
            "CIS '6023410' is not 8 digits",
        ),
        (
            "60234100\t3595583\tboîte\tPrésentation active\tDéclaration de commercialisation\t02/01/2003\t3400935955839\toui\t65%\t1,07\t2,09\t1,02\t\n",
            "not 13 digits with a valid EAN-13 key",
        ),
        (
            "60234100\t359558\tboîte\tPrésentation active\tDéclaration de commercialisation\t02/01/2003\t3400935955838\toui\t65%\t1,07\t2,09\t1,02\t\n",
            "CIP7 '359558' is not 7 digits",
        ),
    ],
)
def test_malformed_rows_are_skipped_and_named(
    bdpm_dir: Path, tmp_path: Path, line: str, message: str
) -> None:
    path = bdpm_dir / bdpm.PRESENTATIONS
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, line.encode("utf-8"))
    path.write_bytes(b"".join(lines))
    report = import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    skipped = [p for p in report.problems if p.skipped]
    assert len(skipped) == 1
    assert (skipped[0].file, skipped[0].line) == (bdpm.PRESENTATIONS, 4)
    assert message in skipped[0].message
    assert str(skipped[0]).startswith("CIS_CIP_bdpm.txt:4: ")


def test_bad_optional_values_keep_the_row(bdpm_dir: Path, tmp_path: Path) -> None:
    path = bdpm_dir / bdpm.PRESENTATIONS
    text = path.read_text("utf-8").replace("\t1,07\t2,09\t", "\t1;07\t2,09\t", 1)
    text = text.replace("02/01/2003", "31/02/2003", 1)
    path.write_text(text, "utf-8")
    report = import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    kept = [p for p in report.problems if not p.skipped]
    assert {p.message for p in kept} == {
        "price '1;07' is not a price",
        "declaration date '31/02/2003' is not a date DD/MM/YYYY",
    }
    with open_catalogue(tmp_path / "c.sqlite3") as opened:
        doliprane = opened.presentation("3400935955838")
        assert doliprane is not None
        assert doliprane.price_cents is None and doliprane.price_with_fees_cents == 209


def test_mixed_and_odd_files(bdpm_dir: Path, tmp_path: Path) -> None:
    """A UTF-8 BOM, blank lines, mixed line ends, a stray Windows-1252 byte in a UTF-8 file."""
    path = bdpm_dir / bdpm.CONDITIONS
    text = path.read_bytes().decode("cp1252")
    lines = text.splitlines()
    data = (
        b"\xef\xbb\xbf"
        + "\r\n".join(lines[:5]).encode("utf-8")
        + b"\n\n"
        + "\n".join(lines[5:]).encode("utf-8")
        + b"\n60234100\tr\xe9serv\xe9\n"
    )
    path.write_bytes(data)
    report = import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    cpd = next(f for f in report.info.files if f.name == bdpm.CONDITIONS)
    assert (cpd.encoding, cpd.line_ending, cpd.rows) == ("utf-8", "mixed", len(lines))
    assert [(p.file, p.line, p.message) for p in report.problems] == [
        (bdpm.CONDITIONS, len(lines) + 2, "not valid utf-8")
    ]
    with open_catalogue(tmp_path / "c.sqlite3") as opened:
        skenan = opened.drug("61227030")
        assert skenan is not None and skenan.regulation.narcotic


def test_duplicate_keys_keep_the_first(bdpm_dir: Path, tmp_path: Path) -> None:
    path = bdpm_dir / bdpm.DRUGS
    data = path.read_bytes()
    first = data.split(b"\r\n")[0]
    path.write_bytes(data + first.replace(b"\t", b"X\t", 1)[:0] + first + b"\r\n")
    report = import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    assert [(p.file, p.line, p.skipped) for p in report.problems] == [(bdpm.DRUGS, 13, True)]
    assert report.problems[0].message.startswith("repeats CIS ")


# --------------------------------------------------------------------------------------------
# Import: atomic, dated, refusing what is not BDPM


def test_import_records_the_files_and_their_date(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    report = import_directory(
        FIXTURE, path, source_date=dt.date(2021, 1, 15), now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    assert report.problems == ()
    with open_catalogue(path) as opened:
        info = opened.info()
    assert (info.source_date, info.imported_at) == ("2021-01-15", "2026-12-01T00:00:00Z")
    assert (info.drugs, info.presentations) == (12, 20)
    assert [f.name for f in info.files] == list(bdpm.FILES)
    assert all(len(f.sha256) == 64 for f in info.files)
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_default_date_is_the_newest_file(bdpm_dir: Path, tmp_path: Path) -> None:
    for n, name in enumerate(bdpm.FILES):
        moment = dt.datetime(2024, 3, 1 + n, 10, tzinfo=dt.UTC).timestamp()
        os.utime(bdpm_dir / name, (moment, moment))
    report = import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    assert report.info.source_date == "2024-03-05"


def test_missing_directory_or_file(bdpm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="no such directory"):
        import_directory(tmp_path / "nowhere", tmp_path / "c.sqlite3")
    (bdpm_dir / bdpm.GROUPS).unlink()
    with pytest.raises(ImportFailed, match=r"missing BDPM file.*CIS_GENER_bdpm\.txt"):
        import_directory(bdpm_dir, tmp_path / "c.sqlite3")
    assert not (tmp_path / "c.sqlite3").exists()


def test_a_failed_import_leaves_the_previous_catalogue(bdpm_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    import_directory(FIXTURE, path, source_date=dt.date(2021, 1, 15))
    before = path.read_bytes()
    (bdpm_dir / bdpm.PRESENTATIONS).write_text("<html><body>Service indisponible</body></html>\n")
    with pytest.raises(ImportFailed, match="no usable row"):
        import_directory(bdpm_dir, path)
    (bdpm_dir / bdpm.PRESENTATIONS).write_text(
        "".join(f"junk line {n}\n" for n in range(100))
        + (FIXTURE / bdpm.PRESENTATIONS).read_text("utf-8")
    )
    with pytest.raises(ImportFailed, match=r"100 of 120 rows are malformed \(first: line 1"):
        import_directory(bdpm_dir, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_strict_refuses_any_malformed_row(bdpm_dir: Path, tmp_path: Path) -> None:
    with (bdpm_dir / bdpm.CONDITIONS).open("ab") as out:
        out.write(b"123\tliste I\n")
    with pytest.raises(ImportFailed, match=r"1 malformed row\(s\), first: CIS_CPD_bdpm.txt:24"):
        import_directory(bdpm_dir, tmp_path / "c.sqlite3", strict=True)
    assert import_directory(bdpm_dir, tmp_path / "c.sqlite3").problems[0].line == 24


def test_readers_of_the_old_catalogue_are_not_disturbed(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    import_directory(FIXTURE, path, source_date=dt.date(2021, 1, 15))
    with open_catalogue(path) as old:
        import_directory(FIXTURE, path, source_date=dt.date(2022, 2, 2))
        assert old.info().source_date == "2021-01-15"
    with open_catalogue(path) as new:
        assert new.info().source_date == "2022-02-02"


def test_opening_a_missing_or_foreign_catalogue(tmp_path: Path) -> None:
    with pytest.raises(CatalogueMissing, match="drugs import"):
        open_catalogue(tmp_path / "none.sqlite3")
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CatalogueUnavailable):
        open_catalogue(tmp_path / "junk.sqlite3")
    other = sqlite3.connect(tmp_path / "other.sqlite3")
    other.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    other.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    other.commit()
    other.close()
    with pytest.raises(CatalogueUnavailable, match="format 99"):
        open_catalogue(tmp_path / "other.sqlite3")


def test_catalogue_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EPRESCRIRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EPRESCRIRE_DRUGS", raising=False)
    assert catalogue_path() == tmp_path / "home" / "drugs.sqlite3"
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(tmp_path / "x.db"))
    assert catalogue_path() == tmp_path / "x.db"
    assert catalogue_path(tmp_path / "y.db") == tmp_path / "y.db"


# --------------------------------------------------------------------------------------------
# Look-up and search


def test_drug_with_everything(cat: SqliteCatalogue) -> None:
    drug = cat.drug("61227030")
    assert drug is not None
    assert drug.name.startswith("SKENAN L.P. 10 mg")
    assert drug.substances == ("SULFATE DE MORPHINE",)
    assert drug.regulation.narcotic and drug.regulation.max_days == 28
    assert [p.cip13 for p in drug.presentations] == ["3400933323523"]
    assert drug.marketed and drug.routes == ("orale",)
    glucophage = cat.drug("61052830")
    assert glucophage is not None
    assert [(g.group_id, g.role) for g in glucophage.groups] == [(33, "princeps")]
    assert [m.cis for m in cat.group_members(33)] == ["61052830", "67346461"]
    assert cat.drug("12345678") is None


def test_lookup_by_any_code(cat: SqliteCatalogue) -> None:
    by_cis = cat.lookup("60234100")
    by_cip13 = cat.lookup("3400935955838")
    by_cip7 = cat.lookup("3595583")
    assert by_cis is not None and by_cis[1] is None
    assert by_cip13 is not None and by_cip13[1] is not None
    assert by_cip7 is not None and by_cip7[1] == by_cip13[1]
    assert by_cis[0].cis == by_cip13[0].cis == "60234100"
    assert cat.lookup("3400 935 955 838") is not None
    assert cat.lookup("3400935955839") is None
    assert cat.lookup("doliprane") is None


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("doliprane", "60234100"),
        ("DOLIPRANE", "60234100"),
        ("skenan", "61227030"),
        ("morphine", "61227030"),  # by substance
        ("paracétamol effervescent", "67217826"),
        ("paracetamol 1000", "67217826"),  # in the name ranks before in the substances only
        ("amoxicilline acide clavulanique enfant", "69776892"),
        ("augmentin", "66853013"),
        ("metformine 1000", "67346461"),  # the generic's name, before the princeps' substance
        ("glucophage", "67547090"),  # equal matches: the shorter name first
        ("3400933323523", "61227030"),  # CIP13
        ("3332352", "61227030"),  # CIP7
        ("61227030", "61227030"),  # CIS
        ("thiopental", "60010084"),
        ("zolpidem", "63179285"),
    ],
)
def test_search_best_first(cat: SqliteCatalogue, query: str, first: str) -> None:
    hits = cat.search(query)
    assert hits and hits[0].cis == first, [h.name for h in hits]


def test_search_details(cat: SqliteCatalogue) -> None:
    code = cat.search("3400933323523")
    assert (code[0].matched, code[0].cip13) == ("cip13", "3400933323523")
    metformin = [h.cis for h in cat.search("metformine 1000")]
    assert set(metformin) == {"67346461", "61052830"}  # 850 mg is not 1000
    assert cat.search("metformine", limit=1)[0].cis in {"61052830", "67346461", "67547090"}
    assert len(cat.search("metformine", limit=2)) == 2
    assert cat.search("xyzzy") == []
    # No drug has every word: the drugs with most of them, rather than nothing.
    partial = cat.search("skenan xyzzy")
    assert partial and partial[0].cis == "61227030"
    assert cat.search('"; DROP TABLE drug; --') == []
    assert cat.drug("61227030") is not None


def test_label_matching(cat: SqliteCatalogue) -> None:
    assert cat.match_label("Doliprane 1000 mg, comprimé") == ["60234100"]
    assert cat.match_label("DOLIPRANE 1000 MG COMPRIME") == ["60234100"]
    assert cat.match_label("Skenan LP 10 mg") == []  # "LP" is not a word of "L.P."
    assert cat.match_label("Skenan 10 mg") == ["61227030"]
    assert sorted(cat.match_label("Glucophage")) == ["61052830", "67547090"]
    assert cat.match_label("") == []


# --------------------------------------------------------------------------------------------
# The commands


def test_cli_import_search_show(tmp_path: Path, run_cli, drugs_env) -> None:
    missing = run_cli("drugs", "search", "doliprane")
    assert missing.code == 4 and "drugs import" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    imported = run_cli("drugs", "import", FIXTURE, "--date", "2021-01-15", "--json")
    assert imported.code == 0, imported
    (summary,) = imported.json_lines()
    assert summary["source_date"] == "2021-01-15"
    assert summary["drugs"] == 12 and summary["problems"] == []
    assert summary["catalogue"] == str(Path(drugs_env["EPRESCRIRE_HOME"]) / "drugs.sqlite3")
    assert {f["name"]: f["encoding"] for f in summary["files"]}[bdpm.DRUGS] == "windows-1252"

    found = run_cli("drugs", "search", "Doliprane", "--json")
    assert found.code == 0
    (result,) = found.json_lines()
    assert result["query"] == "Doliprane" and result["source_date"] == "2021-01-15"
    assert result["results"][0]["cis"] == "60234100"
    assert result["results"][0]["substances"] == ["PARACÉTAMOL"]

    words = run_cli("drugs", "search", "amoxicilline", "acide", "clavulanique", "enfant")
    assert words.code == 0 and words.stdout.splitlines()[0].startswith("69776892  AMOXICILLINE")

    none = run_cli("drugs", "search", "xyzzy")
    assert none.code == 0 and "no drug matches" in none.stderr

    shown = run_cli("drugs", "show", "3400955923305", "--json")
    assert shown.code == 0
    (drug,) = shown.json_lines()
    assert drug["cis"] == "67547090" and drug["presentation"]["withdrawn"] is True
    assert drug["regulation"]["list"] == "I"
    assert drug["generic_groups"] == [
        {"id": 32, "label": drug["generic_groups"][0]["label"], "type": 0, "role": "princeps"}
    ]
    lynparza = run_cli("drugs", "show", "60058620", "--json").json_lines()[0]
    assert lynparza["presentations"][0]["price"] == "4768.73"
    assert lynparza["regulation"]["hospital"] == "prescription"

    human = run_cli("drugs", "show", "61227030")
    assert human.code == 0
    assert "stupéfiant" in human.stdout and "limitée à 28 jours" in human.stdout
    assert "3400933323523" in human.stdout

    unknown = run_cli("drugs", "show", "12345678")
    assert unknown.code == 3 and "12345678" in unknown.stderr
    assert run_cli("drugs", "show", "doliprane").code == 3

    info = run_cli("drugs", "info", "--json").json_lines()[0]
    assert info["source_date"] == "2021-01-15" and info["presentations"] == 20


def test_cli_import_errors(tmp_path: Path, bdpm_dir: Path, run_cli, drugs_env) -> None:
    assert run_cli("drugs", "import", tmp_path / "nowhere").code == 3
    (bdpm_dir / bdpm.CONDITIONS).unlink()
    result = run_cli("drugs", "import", bdpm_dir)
    assert result.code == 3 and "CIS_CPD_bdpm.txt" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli("drugs", "import", FIXTURE, "--date", "15/01/2021").code == 2
    assert run_cli("drugs").code in (0, 2)


def test_cli_import_reports_malformed_rows(bdpm_dir: Path, run_cli, drugs_env) -> None:
    with (bdpm_dir / bdpm.GROUPS).open("a", encoding="utf-8") as out:
        out.write("x\tGROUPE\t61052830\t1\t2\t\n")
    result = run_cli("drugs", "import", bdpm_dir)
    assert result.code == 0
    assert "CIS_GENER_bdpm.txt:8: generic group 'x' is not a number (skipped)" in result.stderr
    assert "1 malformed row(s) skipped" in result.stdout
    strict = run_cli("drugs", "import", bdpm_dir, "--strict")
    assert strict.code == 3 and "CIS_GENER_bdpm.txt:8" in strict.stderr


def test_cli_catalogue_option_and_env(tmp_path: Path, run_cli, drugs_env, monkeypatch) -> None:
    target = tmp_path / "elsewhere" / "cat.sqlite3"
    assert run_cli("drugs", "import", FIXTURE, "--catalogue", target, "-q").code == 0
    assert target.exists()
    assert run_cli("drugs", "search", "skenan").code == 4
    monkeypatch.setenv("EPRESCRIRE_DRUGS", str(target))
    assert run_cli("drugs", "search", "skenan").stdout.startswith("61227030")


def test_every_drugs_command_has_help(run_cli) -> None:
    for command in ("import", "update", "search", "show", "info"):
        result = run_cli("drugs", command, "--help")
        assert result.code == 0 and len(result.stdout) > 200, command


def test_importing_the_cli_loads_no_drug_module() -> None:
    """The drugs commands cost the other commands nothing at start-up."""
    code = (
        "import sys, eprescrire.cli._app\n"
        "print(sorted(m for m in sys.modules if m.startswith('eprescrire.drugs') or m in ('sqlite3', 'urllib.request')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# drugs update, against a server on the loopback


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` as ``http://127.0.0.1:PORT/download/file/<name>``."""
    root = directory.parent / f".{directory.name}-root"
    (root / "download").mkdir(parents=True, exist_ok=True)
    link = root / "download" / "file"
    if not link.exists():
        link.symlink_to(directory.resolve(), target_is_directory=True)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/download/file/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_update_downloads_and_imports(tmp_path: Path, bdpm_dir: Path, run_cli, drugs_env) -> None:
    moment = dt.datetime(2024, 6, 3, 8, tzinfo=dt.UTC).timestamp()
    for name in bdpm.FILES:
        os.utime(bdpm_dir / name, (moment, moment))
    with serve(bdpm_dir) as url:
        result = run_cli("drugs", "update", "--url", url, "--json", "--keep", tmp_path / "kept")
    assert result.code == 0, result
    (summary,) = result.json_lines()
    assert summary["source_date"] == "2024-06-03"  # the server's Last-Modified
    assert summary["drugs"] == 12
    assert (tmp_path / "kept" / bdpm.DRUGS).read_bytes() == (FIXTURE / bdpm.DRUGS).read_bytes()
    home = Path(drugs_env["EPRESCRIRE_HOME"])
    assert [p.name for p in home.iterdir()] == ["drugs.sqlite3"]  # no download left behind


def test_update_failures_keep_the_catalogue(
    tmp_path: Path, bdpm_dir: Path, run_cli, drugs_env, monkeypatch
) -> None:
    assert run_cli("drugs", "import", FIXTURE, "--date", "2021-01-15", "-q").code == 0
    home = Path(drugs_env["EPRESCRIRE_HOME"])
    before = (home / "drugs.sqlite3").read_bytes()

    (bdpm_dir / bdpm.CONDITIONS).unlink()  # 404
    with serve(bdpm_dir) as url:
        result = run_cli("drugs", "update", "--url", url)
    assert result.code == 4 and "HTTP 404" in result.stderr and "CIS_CPD_bdpm.txt" in result.stderr

    (bdpm_dir / bdpm.CONDITIONS).write_text("<!DOCTYPE html><html>Maintenance</html>\n")
    with serve(bdpm_dir) as url:
        monkeypatch.setenv("EPRESCRIRE_BDPM_URL", url)
        result = run_cli("drugs", "update")
    assert result.code == 4 and f"{url}CIS_CPD_bdpm.txt" in result.stderr

    with serve(bdpm_dir) as url:
        pass  # the server is gone: connection refused
    result = run_cli("drugs", "update", "--url", url, "--timeout", "5")
    assert result.code == 4 and "cannot download" in result.stderr
    assert run_cli("drugs", "update", "--url", "file:///etc/").code == 4

    assert (home / "drugs.sqlite3").read_bytes() == before
    assert [p.name for p in home.iterdir()] == ["drugs.sqlite3"]
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------
# The full snapshot (shared data beside the repository)


@pytest.mark.slow
@pytest.mark.skipif(SNAPSHOT is None, reason="the BDPM snapshot (../shared/bdpm) is not here")
def test_full_snapshot_update_and_search(tmp_path: Path, run_cli, drugs_env) -> None:
    assert SNAPSHOT is not None
    with serve(SNAPSHOT) as url:
        result = run_cli("drugs", "update", "--url", url, "--json", "--timeout", "120")
    assert result.code == 0, result.stderr
    (summary,) = result.json_lines()
    rows = {f["name"]: f["rows"] for f in summary["files"]}
    assert rows == {
        "CIS_bdpm.txt": 15291,
        "CIS_CIP_bdpm.txt": 20508,
        "CIS_COMPO_bdpm.txt": 30594,
        "CIS_GENER_bdpm.txt": 9871,
        "CIS_CPD_bdpm.txt": 22734,
    }
    assert summary["problems"] == []
    assert summary["orphans"]["CIS_CIP_bdpm.txt"] == 7  # presentations of a CIS not listed
    with open_catalogue(catalogue_path()) as opened:
        assert opened.search("doliprane")[0].name.startswith("DOLIPRANE")
        assert opened.search("skenan")[0].name.startswith("SKENAN L.P.")
        top = opened.search("metformine 1000")[0]
        assert "METFORMINE" in top.name and "1000" in top.name
        amox = opened.search("amoxicilline acide clavulanique enfant")[0]
        assert "ENFANTS" in amox.name and amox.marketed
        skenan = opened.drug("61227030")
        assert skenan is not None and skenan.regulation.narcotic
        expensive = opened.presentation("3400930144213")
        assert expensive is not None and expensive.price_cents == 476873
    shown = run_cli("drugs", "show", "3400935955838", "--json").json_lines()[0]
    assert shown["name"] == "DOLIPRANE 1000 mg, comprimé"
    _examples_are_real_presentations(catalogue_path())


def _examples_are_real_presentations(catalogue: Path) -> None:
    """Every drug of every example is a presentation on the market in the snapshot, and the
    example issues with that catalogue: a user who imports the BDPM can still run the tour."""
    import tomllib

    from eprescrire import model
    from eprescrire.drugs import checks

    examples = sorted((ROOT / "examples").glob("*.toml"))
    assert len(examples) >= 5
    with open_catalogue(catalogue) as opened:
        for example in examples:
            data = tomllib.loads(example.read_text(encoding="utf-8"))
            devices = set()  # medical devices (pen needles) are not in the BDPM
            for n, line in enumerate(data["lines"], 1):
                if "cip13" not in line:
                    assert "AIGUILLES" in line["label"], f"{example.name} line {n}: no CIP13"
                    devices.add(f"lines[{n}].label")
                    continue
                presentation = opened.presentation(line["cip13"])
                assert presentation is not None, f"{example.name} line {n}: unknown CIP13"
                assert not presentation.withdrawn, f"{example.name} line {n}: withdrawn"
            prescription = model.from_input(data, now=dt.datetime.now(dt.UTC))
            _, report = checks.check_prescription(prescription, opened, source=example.name)
            refused = {"label_mismatch", "unknown_label", "withdrawn", "not_marketed"}
            odd = [n for n in report.warnings if n.code in refused and n.field not in devices]
            assert not odd, (example.name, odd)


# --------------------------------------------------------------------------------------------
# Properties


@given(st.integers(min_value=0, max_value=10**9))
def test_prices_as_the_ansm_writes_them_round_trip(cents: int) -> None:
    euros, rest = divmod(cents, 100)
    grouped = f"{euros:,}"  # 1,466 (the ANSM groups thousands with commas too)
    soft = bdpm._Soft()
    assert soft.price(f"{grouped},{rest:02d}", "price") == cents
    assert soft.price(f"{euros},{rest:02d}", "price") == cents
    assert soft.messages == []


@pytest.fixture(scope="module")
def shared_cat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteCatalogue]:
    path = tmp_path_factory.mktemp("drugs") / "drugs.sqlite3"
    import_directory(FIXTURE, path)
    with open_catalogue(path) as opened:
        yield opened


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_search_text_is_safe(shared_cat: SqliteCatalogue, text: str) -> None:
    hits = shared_cat.search(text)
    assert len(hits) <= 20
    assert all(shared_cat.drug(h.cis) is not None for h in hits)
    shared_cat.match_label(text)


def test_console_script(tmp_path: Path) -> None:
    """The installed entry point: exit codes, JSON on stdout, one line on stderr."""
    script = Path(sys.executable).parent / "eprescrire"
    env = {**os.environ, "EPRESCRIRE_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    env.pop("EPRESCRIRE_DRUGS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "drugs", *args], capture_output=True, text=True, env=env, timeout=120
        )

    missing = run("show", "61227030")
    assert missing.returncode == 4
    assert missing.stderr.count("\n") == 1 and "eprescrire drugs import" in missing.stderr
    assert run("import", str(tmp_path / "none")).returncode == 3
    assert run("import", str(FIXTURE), "--quiet").returncode == 0
    shown = run("show", "3400933323523", "--json")
    assert shown.returncode == 0 and shown.stderr == ""
    body = json.loads(shown.stdout)
    assert (
        body["regulation"]["narcotic"] is True and body["presentation"]["cip13"] == "3400933323523"
    )
