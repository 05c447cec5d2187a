"""Prescription input files: TOML or JSON, one schema (see README), parsed strictly."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from eprescrire import canonical
from eprescrire.errors import InputError


def parse_input(data: bytes, name: str) -> Any:
    """Parse prescription input by its file name: ``.toml`` as TOML, anything else as JSON;
    JSON holding FHIR resources is mapped by :func:`eprescrire.fhir.import_.read`.

    On failure, raises :class:`InputError` naming the file and the problem.
    """
    if name.endswith(".toml"):
        try:
            return tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise InputError(f"{name}: not UTF-8 text") from e
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{name}: invalid TOML: {e}") from e
        except RecursionError:
            # tomllib recurses once per nested array or inline table.
            raise InputError(f"{name}: invalid TOML: nested too deeply") from None
    try:
        parsed = canonical.loads(data)
    except canonical.StrictJSONError as e:
        raise InputError(f"{name}: invalid JSON: {e}") from e
    from eprescrire.fhir import import_ as fhir

    if fhir.is_fhir(parsed):  # a FHIR Bundle or MedicationRequest(s) (a DPI's output)
        return fhir.read(parsed, source=name)
    return parsed


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


# --------------------------------------------------------------------------------------------
# CSV: one row per prescription line, rows sharing an ``rx`` key form one prescription.

_INTEGER_COLUMNS = {
    "duration_days",
    "quantity",
    "renewals",
    "days_per_dispensing",
    "pack_months",
    "units_per_box",
}
_BOOLEAN_COLUMNS = {"substitutable", "ald", "narcotic", "share_opposition", "contraceptive"}
_NUMBER_COLUMNS = {"weight_kg"}
_CSV_ROOTS = {"prescriber", "patient", "line", "notes", "issued", "share_opposition"}
_TRUE = {"true", "1", "yes", "oui", "y", "o"}
_FALSE = {"false", "0", "no", "non", "n"}


def _cell(column: str, value: str) -> Any:
    """Convert one CSV cell to the schema's type; leave it as text when it does not convert,
    so that validation reports the field and the rule."""
    leaf = column.rsplit(".", 1)[-1]
    text = value.strip()
    if leaf in _INTEGER_COLUMNS and text.lstrip("-").isdigit():
        return int(text)
    if leaf in _BOOLEAN_COLUMNS and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    if leaf in _NUMBER_COLUMNS:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return text
    return text


def _put(target: dict[str, Any], column: str, value: Any) -> None:
    *parents, leaf = column.split(".")
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise InputError(f"CSV column {column!r} conflicts with another column")
    if leaf in target and target[leaf] != value:
        raise InputError(f"rows of one prescription disagree on {column}")
    target[leaf] = value


def parse_csv(text: str, name: str = "-") -> list[tuple[str, Any]]:
    """Prescription inputs from CSV with dotted column names (``patient.family_name``,
    ``prescriber.facility.name``, ``line.label``, ``line.quantity``, ...). Rows with the same
    ``rx`` value are the lines of one prescription (each row is one prescription without it).
    Returns (source name, input) pairs in order of first appearance."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    try:
        return _parse_rows(reader, name)
    except csv.Error as e:  # a field over the csv module's limit (128 KiB), a stray NUL...
        where = f"{name} line {reader.line_num}" if reader.line_num else name
        raise InputError(f"{where}: not valid CSV ({e})") from None


def _parse_rows(reader: Any, name: str) -> list[tuple[str, Any]]:
    if not reader.fieldnames:
        raise InputError(f"{name}: empty CSV")
    unknown = [c for c in reader.fieldnames if c != "rx" and c.split(".")[0] not in _CSV_ROOTS]
    if unknown:
        raise InputError(f"{name}: unknown CSV column(s): {', '.join(unknown)}")
    groups: dict[str, tuple[str, Any]] = {}
    for row_number, row in enumerate(reader, start=2):
        key = (row.get("rx") or "").strip() or f"row {row_number}"
        source, data = groups.setdefault(key, (f"{name}:{row_number}", {"lines": []}))
        if isinstance(data, InputError):
            continue
        if None in row:
            groups[key] = (source, InputError(f"{source}: row {row_number} has extra cells"))
            continue
        line: dict[str, Any] = {}
        try:
            for column, value in row.items():
                if column == "rx" or value is None or not value.strip():
                    continue
                if column.startswith("line."):
                    line[column[5:]] = _cell(column, value)
                else:
                    _put(data, column, _cell(column, value))
        except InputError as e:
            groups[key] = (source, InputError(f"{source}: {e}"))
            continue
        if line:
            data["lines"].append(line)
    return list(groups.values())
