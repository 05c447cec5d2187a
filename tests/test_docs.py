"""README's examples run: the "Use from Python" section is a program, run here as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no section {section!r}"
    return re.findall(r"```python\n(.*?)```", match.group(1), re.S)


def test_use_from_python_runs() -> None:
    (program,) = python_blocks("Use from Python")
    assert "ep.issue(" in program and "ep.verify(" in program
    assert "ep.dispense(" in program and "ep.status(" in program
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPRESCRIRE_")}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 dispensed on line 1"


def test_public_api_names_exist() -> None:
    import eprescrire

    missing = [name for name in eprescrire.__all__ if not hasattr(eprescrire, name)]
    assert missing == []


def test_public_names_never_hide_a_submodule() -> None:
    import pkgutil

    import eprescrire

    submodules = {m.name for m in pkgutil.iter_modules(eprescrire.__path__)}
    assert not submodules & set(eprescrire.__all__)
