"""Tables' columns as loaded so far, and how a new page changes them.

Each page is fitted to its table: a column never seen is added, a column whose values
no longer fit its type is widened along ``bool -> int64 -> double -> string`` (a
timestamp or anything else that disagrees becomes text), and the page is cast to the
table's types. Every change is a :class:`Change` the destination applies before the
rows and records in ``_quiver_sync_schema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

_NUMERIC = (pa.bool_(), pa.int64(), pa.float64())
#: the types columns are kept as, by the name the schema table stores them under
TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "timestamp[us]": pa.timestamp("us"),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
}
TYPE_NAMES = {kind: name for name, kind in TYPES.items()}


@dataclass(frozen=True)
class Change:
    table: str
    column: str
    kind: Literal["table", "column", "widen"]
    type: pa.DataType
    was: pa.DataType | None = None

    def __str__(self) -> str:
        if self.kind == "table":
            return f"new table {self.table}"
        if self.kind == "column":
            return f"{self.table}.{self.column}: new column ({type_name(self.type)})"
        return f"{self.table}.{self.column}: {type_name(self.was)} -> {type_name(self.type)}"


def type_name(kind: pa.DataType | None) -> str:
    return "null" if kind is None else str(kind)


def normal(kind: pa.DataType) -> pa.DataType:
    """The type a column of ``kind`` is kept as: one integer, one float, one text."""
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind):
        return pa.float64()
    if pa.types.is_timestamp(kind):
        kind = pa.timestamp("us", tz="UTC" if kind.tz else None)
    return kind if kind in TYPE_NAMES else pa.string()


def wider(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b:
        return a
    if a in _NUMERIC and b in _NUMERIC:
        return max(a, b, key=_NUMERIC.index)
    return pa.string()


class Schema:
    """The columns of every table, as the destination holds them."""

    def __init__(self, tables: dict[str, dict[str, pa.DataType]]) -> None:
        self.tables = tables
        #: per table, the last page's types that fitted without a change, the table's
        #: columns then, and which of the page's columns were cast: the next page of the
        #: same types (most of them) is fitted without a look at each column
        self._fitted: dict[str, tuple[pa.Schema, list[tuple[str, pa.DataType]], list[int]]] = {}

    def fit(self, name: str, rows: pa.Table) -> tuple[pa.Table, list[Change]]:
        """``rows`` cast to the table's types, and the changes the table needs first."""
        known = self.tables.get(name)
        fitted = self._fitted.get(name)
        if (
            fitted is not None
            and known is not None
            and rows.schema.equals(fitted[0])
            and list(known.items()) == fitted[1]
        ):
            if not fitted[2]:
                return rows, []
            for index in fitted[2]:
                field = rows.schema.field(index)
                rows = rows.set_column(
                    index, field.name, rows.column(index).cast(known[field.name])
                )
            return rows, []
        fitted_rows, changes = self._fit(name, rows)
        if not changes:
            cast = [n for n, c in enumerate(rows.columns) if c.type != fitted_rows.column(n).type]
            self._fitted[name] = (rows.schema, list(self.tables[name].items()), cast)
        return fitted_rows, changes

    def _fit(self, name: str, rows: pa.Table) -> tuple[pa.Table, list[Change]]:
        changes: list[Change] = []
        known = self.tables.get(name)
        if known is None:
            known = self.tables[name] = {}
            changes.append(Change(name, "", "table", pa.null()))
        columns = []
        for column_name, column in zip(rows.column_names, rows.columns, strict=True):
            kind = normal(column.type)
            was = known.get(column_name)
            if was is None:
                known[column_name] = kind
                changes.append(Change(name, column_name, "column", kind))
            elif was != kind:
                kind = wider(was, kind)
                if kind != was:
                    known[column_name] = kind
                    changes.append(Change(name, column_name, "widen", kind, was))
            columns.append(column if column.type == kind else column.cast(kind))
        return pa.table(columns, names=rows.column_names), changes

    def rename(self, old: str, new: str) -> None:
        self.tables[new] = self.tables.pop(old)
