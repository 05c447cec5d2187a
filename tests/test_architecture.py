"""The package's layers, stated in pyproject.toml ([tool.importlinter]) and checked here:
cli -> services -> adapters -> core, no cycle, no command-line library below the CLI; and the
CLI stays a thin front end."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eprescrire"
MAX_CLI_MODULE_LINES = 350


def test_import_contracts_hold() -> None:
    # A separate process: the contracts are about what the package imports, not what the test
    # session happened to load.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports;"
            f" sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def test_cli_modules_are_small() -> None:
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in (PACKAGE / "cli").glob("*.py")}
    assert sizes and max(sizes.values()) <= MAX_CLI_MODULE_LINES, sizes


def test_cli_holds_no_ledger_write_or_rule() -> None:
    """The CLI never writes to the ledger nor applies a dispensing rule itself: it calls the
    application layer (eprescrire.services)."""
    forbidden = {
        "update",
        "plan",
        "allow",
        "first_sight",
        "state_of",
        "record_cancellation",
        "set_consent",
        "prove_possession",
        "recorded_prescription",
    }
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        called = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not called & forbidden, (path.name, called & forbidden)
