"""Resources stored in PostgreSQL: a connection that speaks what the resources use of
the stdlib ``sqlite3`` connection, so that one code path serves both databases.

The resources' SQL is written once; the differences are few and made here: ``?``
placeholders become ``%s``, ``BEGIN IMMEDIATE`` (SQLite's write lock taken up
front) becomes ``BEGIN`` (a write that checks a precondition first locks its row
with ``FOR UPDATE``, see :data:`.storage.LOCK_ROW`), the ``unicode_lower``
function SQLite is given becomes PostgreSQL's own ``lower`` (in the database's
locale), and a constraint broken in PostgreSQL is raised as the
``sqlite3.IntegrityError`` the resources already answer (409 for a unique clash or
a restricted delete, 422 for the rest and for a value PostgreSQL cannot hold).

Columns are PostgreSQL's own types (:data:`quiver.resources.storage.COLUMN_TYPES`):
numbers are NUMERIC, written with every digit of the float and read back as ints
or floats (not Decimals), arrays and objects are JSONB, read back as their text.
The connection is opened in autocommit mode, each resource write in an explicit
transaction: a 2xx is answered after
PostgreSQL committed it (durable as the server's ``synchronous_commit`` says: on by
default).  The connection is synchronous, like sqlite3, and used on the worker's
event loop: each statement is a round trip, so the database should be close.  A
connection that broke is opened again on the next request.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import postgres
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import TextLoader
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from quiver.resources.storage import UNICODE_LOWER
from quiver.resources.validate import INT64_MAX, INT64_MIN

CONNECT_TIMEOUT = 5  # seconds
STATEMENT_TIMEOUT_MS = 10_000  # as long as a SQLite writer waits for another (busy_timeout)
_TRANSLATIONS_KEPT = 1024
_INT64_DIGITS = 20  # (with a sign)

_KEY_CLASH = re.compile(r"Key \((?P<columns>[^)]*)\)=")
#: quoted text and identifiers, where ``?`` and ``%`` are not placeholders
_QUOTED = re.compile(r"""('(?:[^']|'')*'|"[^"]*")""")
#: ``[ilike]``'s lowering: by the database's own locale, which a text column's
#: "C" collation (its order) would narrow to ASCII
_LOWER = re.compile(rf'{UNICODE_LOWER}\(("[a-z0-9_]+"|\?|CAST\("[a-z0-9_]+" AS TEXT\))\)')


class _NumberLoader(Loader):
    """NUMERIC read as the JSON number it was written as: 3 an int, 2.5 a float (and
    an integer past 64 bits a float, as SQLite keeps it)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        if text.lstrip(b"-").isdigit() and len(text) <= _INT64_DIGITS:
            number = int(text)
            if INT64_MIN <= number <= INT64_MAX:
                return number
        value = float(text)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value


class _FloatDumper(Dumper):
    """A float sent as the NUMERIC its shortest repr reads as: all 17 digits kept
    (as float8, PostgreSQL would keep 15 when it converts to NUMERIC)."""

    oid = postgres.types["numeric"].oid

    def dump(self, obj: float) -> bytes:
        return repr(obj).encode()


class Cursor:
    """The rows of one statement, as a ``sqlite3.Cursor`` hands them out."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


def translate(sql: str, with_parameters: bool) -> str:
    """A statement written for SQLite as PostgreSQL (and psycopg) take it."""
    if sql == "BEGIN IMMEDIATE":
        return "BEGIN"
    sql = _LOWER.sub(r'lower((\1)::text COLLATE "default")', sql)
    parts = _QUOTED.split(sql)
    for index in range(0, len(parts), 2):  # (the odd ones are quoted)
        part = parts[index]
        if with_parameters:
            part = part.replace("%", "%%").replace("?", "%s")
        parts[index] = part
    if with_parameters:  # psycopg reads % in quoted text too
        parts[1::2] = [part.replace("%", "%%") for part in parts[1::2]]
    return "".join(parts)


class PostgresConnection:
    """One worker's connection to the database of its resources."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            self.shown = make_url(url).render_as_string(hide_password=True)
            settings = conninfo_to_dict(url)
        except (ArgumentError, ValueError, psycopg.Error) as exc:
            # (the URL is not shown: it may hold a password)
            raise sqlite3.OperationalError(
                "not a PostgreSQL URL (postgresql://USER@HOST/DB)"
            ) from exc
        # the URL's own options (a search_path) kept, a statement timeout added
        options = f"{settings.get('options') or ''} -c statement_timeout={STATEMENT_TIMEOUT_MS}"
        settings["options"] = options.strip()
        settings.setdefault("connect_timeout", CONNECT_TIMEOUT)
        self.conninfo = make_conninfo("", **settings)
        self._connection: psycopg.Connection[Any] | None = None
        self._translated: dict[tuple[str, bool], bytes] = {}

    def _connect(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if connection is None or connection.closed:
            try:
                connection = psycopg.connect(self.conninfo, autocommit=True)
            except psycopg.Error as exc:
                raise sqlite3.OperationalError(f"cannot reach PostgreSQL: {exc}") from exc
            connection.adapters.register_loader("numeric", _NumberLoader)
            connection.adapters.register_loader("jsonb", TextLoader)
            connection.adapters.register_dumper(float, _FloatDumper)
            self._connection = connection
        return connection

    @property
    def in_transaction(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed:
            return False
        return connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        shape = (sql, bool(parameters))
        statement = self._translated.get(shape)
        if statement is None:
            if len(self._translated) >= _TRANSLATIONS_KEPT:
                self._translated.clear()
            statement = self._translated[shape] = translate(sql, bool(parameters)).encode()
        connection = self._connect()
        try:
            cursor = connection.execute(statement, tuple(parameters) or None)
            rows = cursor.fetchall() if cursor.description is not None else []
            return Cursor(rows, cursor.rowcount)
        except psycopg.errors.IntegrityError as exc:
            raise _integrity(exc) from exc
        except psycopg.DataError as exc:
            # a value PostgreSQL cannot hold (text with U+0000): the item does not fit
            raise sqlite3.IntegrityError(f"CHECK constraint failed: {exc}") from exc
        except psycopg.Error as exc:
            if connection.broken:
                connection.close()
            raise sqlite3.OperationalError(str(exc)) from exc

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
