"""DuckDB: each Arrow table inserted by one ``INSERT ... SELECT`` over it, zero-copy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from quiver.sync.destinations.sql import SqlDestination, quote


class DuckDBDestination(SqlDestination):
    types = {
        "bool": "BOOLEAN",
        "int64": "BIGINT",
        "double": "DOUBLE",
        "string": "VARCHAR",
        "timestamp[us]": "TIMESTAMP",
        "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    }

    def __init__(self, path: str) -> None:
        # one thread: the rows come a batch at a time, and parallel scans of a batch
        # cost more CPU than they save (what is measured is records per CPU-second)
        self.connection = duckdb.connect(path, config={"threads": 1})
        self.connection.execute("SET TimeZone = 'UTC'")
        self.create_bookkeeping()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.connection.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.connection.executemany(sql, rows)

    def begin(self) -> None:
        self.connection.begin()

    def end(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def load(self, table: str, rows: pa.Table) -> None:
        names = ", ".join(quote(name) for name in rows.column_names)
        self.connection.register("_quiver_rows", rows)
        try:
            self.execute(f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM _quiver_rows")
        finally:
            self.connection.unregister("_quiver_rows")

    @contextmanager
    def staged(self, keys: pa.Table, like: str) -> Iterator[str]:
        """The Arrow table itself, registered: no copy."""
        self.connection.register("_quiver_keys", keys)
        try:
            yield "_quiver_keys"
        finally:
            self.connection.unregister("_quiver_keys")

    def close(self) -> None:
        self.connection.close()
