"""SQLite: the rows of each Arrow table through one ``executemany`` in the transaction.

SQLite has no bulk path from Arrow: rows become tuples here, so this destination
costs per record what the columnar ones do not. Types widen for free (a column's
declared type is only an affinity), so widening changes nothing but the record.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from quiver.sync.destinations.sql import SqlDestination, quote


class SQLiteDestination(SqlDestination):
    types = {
        "bool": "INTEGER",
        "int64": "INTEGER",
        "double": "REAL",
        "string": "TEXT",
        "timestamp[us]": "TEXT",
        "timestamp[us, tz=UTC]": "TEXT",
    }

    def __init__(self, path: str) -> None:
        # autocommit off at the driver: BEGIN and COMMIT are ours
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.create_bookkeeping()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.connection.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.connection.executemany(sql, rows)

    def load(self, table: str, rows: pa.Table) -> None:
        names = ", ".join(quote(name) for name in rows.column_names)
        marks = ", ".join("?" for _ in rows.column_names)
        columns = [_plain(column).to_pylist() for column in rows.columns]
        self.executemany(
            f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",
            list(zip(*columns, strict=True)),
        )

    def widen(self, table: str, column: str, sql_type: str) -> None:
        """Nothing to alter: the widening is recorded, the column takes any value."""

    def close(self) -> None:
        self.connection.close()


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as ISO 8601 text (SQLite has no such type)."""
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, "%Y-%m-%dT%H:%M:%S.%f")
    return column
