"""``issue`` is served without Typer (a batch starts sooner); both parsers must agree, and the
two paths must issue the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE_FILES


def test_issue_fast_path_accepts_exactly_the_typer_options() -> None:
    import typer.main

    from eprescrire.cli import app, issue_parser

    command = typer.main.get_command(app).commands["issue"]  # type: ignore[attr-defined]
    typer_options = {
        opt for param in command.params for opt in param.opts if opt.startswith("-")
    } - {"--help", "-h"}
    fast = issue_parser()
    assert {opt for action in fast._actions for opt in action.option_strings} == typer_options
    # Same destinations and defaults, so that both paths call _issue.run alike.
    typer_defaults = {param.name: param.default for param in command.params}
    fast_defaults = {action.dest: action.default for action in fast._actions}
    assert set(fast_defaults) == set(typer_defaults)
    for name, default in typer_defaults.items():
        if name not in ("inputs", "key"):
            assert fast_defaults[name] == default, name


def test_issue_without_typer(tmp_path: Path, key_file: Path, cli_env: dict[str, str]) -> None:
    """A plain ``issue`` neither imports Typer nor pydantic (Typer's coercion), and writes what
    the Typer path writes."""
    code = (
        "import sys\n"
        "from eprescrire.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    print(e.code, [m for m in ('typer', 'pydantic', 'rich') if m in sys.modules])\n"
    )
    out = tmp_path / "fast"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "issue",
            *map(str, EXAMPLE_FILES[:2]),
            "--key",
            str(key_file),
            "--out-dir",
            str(out),
            "--with-pdf",
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **cli_env},
    )
    *lines, last = result.stdout.strip().splitlines()
    assert last == "0 []"
    summaries = [json.loads(line) for line in lines]
    assert [s["status"] for s in summaries] == ["issued", "issued"]
    assert all(Path(s["pdf"]).read_bytes().startswith(b"%PDF") for s in summaries)


def test_fast_and_typer_paths_agree_on_errors(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    """Usage errors the fast parser cannot explain go to Typer (exit 2); our own errors exit
    with their code either way."""
    assert run_cli("issue", EXAMPLE_FILES[0], "--key", key_file).code == 2  # no --out
    assert run_cli("issue", EXAMPLE_FILES[0], "--out", tmp_path / "a.json").code == 2  # no key
    jobs = run_cli("issue", EXAMPLE_FILES[0], "--key", key_file, "--out-dir", tmp_path, "-j", "0")
    assert jobs.code == 2
    bad_page = run_cli(
        "issue", EXAMPLE_FILES[0], "--key", key_file, "--out-dir", tmp_path, "--page", "A3"
    )
    assert bad_page.code == 2 and "A5 or A4" in bad_page.stderr
    first = run_cli(
        "issue", EXAMPLE_FILES[0], "--key", key_file, "--out", tmp_path / "rx.json", "--json"
    )
    assert first.code == 0 and first.json_lines()[0]["status"] == "issued"
    again = run_cli(
        "issue", EXAMPLE_FILES[0], "--key", key_file, "--out", tmp_path / "rx.json", "--json"
    )
    assert again.code == 3  # never overwritten
    helped = run_cli("issue", "--help")
    assert helped.code == 0 and "--with-pdf" in helped.stdout
