"""Resources stored in PostgreSQL: a connection that speaks what the resources use of
the stdlib ``sqlite3`` connection, so that one code path serves both databases.

The resources' SQL is written once, for SQLite; the differences are few and made
here: ``?`` placeholders become ``%s``, ``BEGIN IMMEDIATE`` (SQLite's write lock
taken up front) becomes ``BEGIN`` (a write that checks a precondition first locks
its row with ``FOR UPDATE``, see :data:`LOCK_ROW`), and a constraint broken in
PostgreSQL is raised as the ``sqlite3.IntegrityError`` the resources already
answer (409 for a unique clash or a restricted delete, 422 for the rest).

Columns are PostgreSQL's own types (:func:`column_type`): numbers are NUMERIC and
read back as ints or floats (not Decimals), arrays and objects are JSONB, read back
as their text.  The connection is opened in autocommit mode, each resource write
in an explicit transaction: a 2xx is answered after PostgreSQL committed it (durable
as the server's ``synchronous_commit`` says: on by default).  A connection that
broke is opened again on the next request.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader

#: what follows a write's SELECT of the current row in PostgreSQL: the row stays
#: locked until the write commits, so a precondition and the write see one row
LOCK_ROW = " FOR UPDATE"
CONNECT_TIMEOUT = 5  # seconds
STATEMENT_TIMEOUT_MS = 10_000  # as long as a SQLite writer waits for another (busy_timeout)

_TYPES = {
    "string": "TEXT",
    "number": "NUMERIC",
    "integer": "BIGINT",
    "boolean": "SMALLINT",  # 0 or 1, as in SQLite (a CHECK keeps it so)
    "array": "JSONB",
    "object": "JSONB",
}
_KEY_CLASH = re.compile(r"Key \((?P<columns>[^)]*)\)=")


def is_postgres(database: str) -> bool:
    """Whether ``database`` (the ``resources_db`` setting) names a PostgreSQL database."""
    return database.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def column_type(json_type: str, column: str) -> str:
    """The column definition of a JSON type (without NOT NULL, UNIQUE)."""
    if json_type == "boolean":
        return f'SMALLINT CHECK ("{column}" IN (0, 1))'
    return _TYPES[json_type]


class _NumberLoader(Loader):
    """NUMERIC read as the JSON number it was written as: 3 an int, 2.5 a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        if text.lstrip(b"-").isdigit():
            return int(text)
        value = float(text)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value


class Cursor:
    """The rows of one statement, as a ``sqlite3.Cursor`` hands them out."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Any:
        return iter(self._rows)


class PostgresConnection:
    """One worker's connection to the database of its resources."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._connection: psycopg.Connection[Any] | None = None
        self._translated: dict[str, str] = {}

    def _connect(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if connection is None or connection.closed:
            try:
                connection = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                )
            except psycopg.Error as exc:
                raise sqlite3.OperationalError(f"cannot reach PostgreSQL: {exc}") from exc
            connection.adapters.register_loader("numeric", _NumberLoader)
            connection.adapters.register_loader("jsonb", TextLoader)
            self._connection = connection
        return connection

    @property
    def in_transaction(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed:
            return False
        return connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        statement = self._translated.get(sql)
        if statement is None:
            statement = "BEGIN" if sql == "BEGIN IMMEDIATE" else sql.replace("?", "%s")
            self._translated[sql] = statement
        connection = self._connect()
        try:
            cursor = connection.execute(statement.encode(), tuple(params) or None)
            rows = cursor.fetchall() if cursor.description is not None else []
            return Cursor(rows, cursor.rowcount)
        except psycopg.errors.IntegrityError as exc:
            raise _integrity(exc) from exc
        except psycopg.Error as exc:
            if connection.broken:
                connection.close()
            raise sqlite3.OperationalError(str(exc)) from exc

    def executescript(self, script: str) -> None:
        for statement in script.split(";\n"):
            if statement.strip():
                self.execute(statement)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _integrity(exc: psycopg.errors.IntegrityError) -> sqlite3.IntegrityError:
    """The sqlite3 error a broken constraint would have raised in SQLite (its text is
    what the resources read to answer)."""
    table = exc.diag.table_name or ""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        match = _KEY_CLASH.match(exc.diag.message_detail or "")
        column = match["columns"].split(",")[0].strip().strip('"') if match else ""
        return sqlite3.IntegrityError(f"UNIQUE constraint failed: {table}.{column}")
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return sqlite3.IntegrityError("FOREIGN KEY constraint failed")
    if isinstance(exc, psycopg.errors.NotNullViolation):
        return sqlite3.IntegrityError(f"NOT NULL constraint failed: {table}.{exc.diag.column_name}")
    return sqlite3.IntegrityError(f"CHECK constraint failed: {exc.diag.constraint_name}")
