"""Items from a CSV file, for ``quiver resources load items.csv``.

The header row names the columns: fields, and the key, parent column and
timestamps when the file carries them.  Each cell is converted by its column's
type (integer, number, ``true``/``false``/``1``/``0``, arrays and objects as JSON
text); an empty cell is no value.  Items are checked as the API checks writes by
:mod:`.transfer`; this module only reads.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import orjson

from quiver.resources.storage import Table

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def read_csv(path: Path, table: Table) -> list[tuple[str, dict[str, Any]]]:
    """Each row as an item with its ``FILE:LINE``; ValueError lists every cell that
    cannot be read, one per line."""
    name = path.name
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{name}: no header row naming the fields")
        unknown = [column for column in header if column not in table.types]
        if unknown:
            raise ValueError(
                f"{name}:1: {unknown[0]}: not a field of '{table.name}' "
                f"(fields: {', '.join(table.columns)})"
            )
        rows: list[tuple[str, dict[str, Any]]] = []
        failures: list[str] = []
        line = reader.line_num + 1
        for cells in reader:
            where = f"{name}:{line}"
            line = reader.line_num + 1
            if not any(cells):
                continue  # a blank line
            if len(cells) != len(header):
                failures.append(f"{where}: {len(cells)} cells, the header names {len(header)}")
                continue
            item: dict[str, Any] = {}
            for column, cell in zip(header, cells, strict=True):
                if cell == "":
                    continue
                try:
                    item[column] = cell_value(table.types[column], cell)
                except ValueError as exc:
                    failures.append(f"{where}: {column}: {exc}")
            rows.append((where, item))
    if failures:
        raise ValueError("\n".join(failures))
    return rows


def cell_value(kind: str, cell: str) -> Any:
    """The JSON value of a cell in a column of type ``kind``."""
    if kind == "string":
        return cell
    if kind == "integer":
        try:
            return int(cell)
        except ValueError:
            raise ValueError(f"not an integer: {cell!r}") from None
    if kind == "number":
        try:
            number = float(cell)
        except ValueError:
            raise ValueError(f"not a number: {cell!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {cell!r}")
        return int(number) if number.is_integer() and "." not in cell else number
    if kind == "boolean":
        if cell.lower() not in _BOOLEANS:
            raise ValueError(f"not a boolean (true, false, 1 or 0): {cell!r}")
        return _BOOLEANS[cell.lower()]
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        raise ValueError(f"not JSON ({kind}): {cell!r}") from None
