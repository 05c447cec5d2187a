"""Prescription input files: TOML or JSON, one schema (see README), parsed strictly."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from eprescrire import canonical
from eprescrire.errors import InputError


def parse_input(data: bytes, name: str) -> Any:
    """Parse prescription input by its file name: ``.toml`` as TOML, anything else as JSON.

    On failure, raises :class:`InputError` naming the file and the problem.
    """
    if name.endswith(".toml"):
        try:
            return tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise InputError(f"{name}: not UTF-8 text") from e
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{name}: invalid TOML: {e}") from e
    try:
        return canonical.loads(data)
    except canonical.StrictJSONError as e:
        raise InputError(f"{name}: invalid JSON: {e}") from e


def read_input(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise InputError(f"{path}: is a directory") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e
    return parse_input(data, path.name)
