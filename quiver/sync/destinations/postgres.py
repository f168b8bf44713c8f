"""PostgreSQL: each Arrow table written as CSV by Arrow (C++) and sent by one ``COPY``.

CSV keeps NULL and the empty string apart (an unquoted empty field is NULL, Arrow
quotes every string), which the text format would not without escaping each value.
"""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pcsv

from quiver.sync.destinations.sql import SqlDestination, quote

_CSV = pcsv.WriteOptions(include_header=False, batch_size=65536)


class PostgresDestination(SqlDestination):
    placeholder = "%s"
    types = {
        "bool": "boolean",
        "int64": "bigint",
        "double": "double precision",
        "string": "text",
        "timestamp[us]": "timestamp",
        "timestamp[us, tz=UTC]": "timestamptz",
    }

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url)
        self.execute("SET TIME ZONE 'UTC'")
        self.create_bookkeeping()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.connection.execute(sql.encode(), params or None)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql.encode(), params or None).fetchall()

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql.encode(), rows)

    def begin(self) -> None:
        """psycopg opens the transaction with the first statement."""

    def end(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def load(self, table: str, rows: pa.Table) -> None:
        names = ", ".join(quote(name) for name in rows.column_names)
        self._copy(f"COPY {quote(table)} ({names}) FROM STDIN (FORMAT csv)", rows)

    def _copy(self, sql: str, rows: pa.Table) -> None:
        buffer = io.BytesIO()
        pcsv.write_csv(rows, buffer, write_options=_CSV)
        with self.connection.cursor() as cursor, cursor.copy(sql.encode()) as copy:
            copy.write(buffer.getbuffer())

    def close(self) -> None:
        self.connection.close()
