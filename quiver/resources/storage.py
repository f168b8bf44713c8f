"""The database resources live in: one real table per resource, in a SQLite file
or in PostgreSQL (:mod:`.postgres`), made by the same code with a dialect switch.

Each field is a column of its JSON type (:data:`COLUMN_TYPES`: arrays and objects
as JSON text in SQLite, JSONB in PostgreSQL), ``required`` fields are NOT NULL,
``unique`` ones UNIQUE, and a child's parent column a foreign key with the declared
ON DELETE.  The SQLite file is opened in WAL mode with ``synchronous=FULL``: a write
acknowledged with 2xx has reached the disk
(https://www.sqlite.org/pragma.html#pragma_synchronous).  Every worker holds its own
connection; ``busy_timeout`` makes a writer wait for another worker's write instead
of failing.  The stdlib driver is used directly: statements are cached by sqlite3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from quiver.config.resources import TIMESTAMPS, MigrateMode, Resource
from quiver.resources.keys import Key

#: the databases resources are stored in
Dialect = Literal["sqlite", "postgresql"]
#: the column type of each JSON type, by database
COLUMN_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "string": "TEXT",
        # NUMERIC keeps 3 an integer and 2.5 a real: an item reads back as it was sent
        "number": "NUMERIC",
        "integer": "INTEGER",
        "boolean": "INTEGER",
        "array": "TEXT",
        "object": "TEXT",
        "any": "TEXT",  # (:data:`ANY_TYPE`: JSON text, as arrays and objects)
    },
    "postgresql": {
        "string": 'TEXT COLLATE "C"',  # compared and sorted by code point, as in SQLite
        "number": "NUMERIC",  # (read back as int or float, see .postgres)
        "integer": "BIGINT",
        "boolean": "SMALLINT",  # 0 or 1, as in SQLite (a CHECK keeps it so)
        "array": "JSONB",
        "any": "JSONB",
        "object": "JSONB",
    },
}
_AFFINITY = COLUMN_TYPES["sqlite"]
#: what follows a write's SELECT of the current row: in PostgreSQL the row stays
#: locked until the write commits, so a precondition and the write see one row
#: (SQLite's BEGIN IMMEDIATE already keeps every other writer out)
LOCK_ROW: dict[Dialect, str] = {"sqlite": "", "postgresql": " FOR UPDATE"}
BUSY_TIMEOUT_MS = 10_000
#: the first SQLite with ``RETURNING``, which inserts and updates read their row by
MIN_SQLITE = (3, 35, 0)
#: SQL's lower() beyond ASCII (SQLite's own lowers only A-Z): what ``[ilike]`` compares
UNICODE_LOWER = "unicode_lower"
#: the type of a field declared without one (json-server dialect): any JSON value,
#: stored as JSON text like arrays and objects
ANY_TYPE = "any"
_JSON_TEXT = ("array", "object", ANY_TYPE)


class Rows(Protocol):
    """What the resources read of a statement's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the resources use of a database connection: ``sqlite3.Connection``, or
    :class:`quiver.resources.postgres.PostgresConnection` speaking the same."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows: ...

    def close(self) -> None: ...


def is_postgres(database: str) -> bool:
    """Whether ``database`` (the ``resources_db`` setting) names a PostgreSQL database."""
    return database.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def dialect_of(connection: Connection) -> Dialect:
    """The database a connection is to."""
    dialect: Dialect = getattr(connection, "dialect", "sqlite")
    return dialect


@dataclass(frozen=True, slots=True)
class Table:
    """A resource's table: its columns in order and how values cross into SQL."""

    resource: Resource
    key: Key
    columns: tuple[str, ...]  # key, parent column, fields, timestamps
    types: dict[str, str]  # column -> JSON type
    encoded: tuple[str, ...] = ()  # the columns holding JSON text (arrays, objects)
    booleans: tuple[str, ...] = ()  # the columns holding booleans as 0/1
    #: the parent's table (its key gives the parent column's type)
    parent: Table | None = None

    @classmethod
    def of(cls, resource: Resource, parent: Table | None = None) -> Table:
        key = Key.of(resource)
        columns = [key.name]
        types = {key.name: key.json_type}
        if resource.parent is not None:
            assert parent is not None, "a child's table is made with its parent's"
            columns.append(resource.parent.field)
            types[resource.parent.field] = parent.key.json_type
        for name, schema in resource.fields.items():
            if name != key.name:
                columns.append(name)
            types[name] = schema.get("type", ANY_TYPE)
        if resource.timestamps:
            columns.extend(TIMESTAMPS)
            types.update(dict.fromkeys(TIMESTAMPS, "string"))
        encoded = tuple(c for c in columns if types[c] in _JSON_TEXT)
        booleans = tuple(c for c in columns if types[c] == "boolean")
        return cls(resource, key, tuple(columns), types, encoded, booleans, parent)

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def inserted(self) -> tuple[str, ...]:
        """The columns an insert names: all but an auto key, which SQLite assigns."""
        return self.columns[1:] if self.key.type == "auto" else self.columns

    def column_sql(self, column: str, dialect: Dialect = "sqlite") -> str:
        """The declaration of one of the table's columns, as CREATE TABLE has it."""
        resource, parent = self.resource, self.parent
        if column == self.key.name:
            return self.key.column_sql(dialect)
        if resource.parent is not None and column == resource.parent.field:
            assert parent is not None
            return f'"{column}" {parent.key.column_type(dialect)} NOT NULL {self.reference()}'
        if column in TIMESTAMPS:
            return f'"{column}" {COLUMN_TYPES[dialect]["string"]} NOT NULL'
        line = f'"{column}" {COLUMN_TYPES[dialect][self.types[column]]}'
        if dialect == "postgresql" and self.types[column] == "boolean":
            line += f' CHECK ("{column}" IN (0, 1))'
        if column in resource.required:
            line += " NOT NULL"
        if column in resource.unique:
            line += " UNIQUE"
        return line

    def reference(self) -> str:
        """A child's parent column's REFERENCES clause, with the declared ON DELETE."""
        resource, parent = self.resource, self.parent
        assert resource.parent is not None and parent is not None
        action = resource.parent.on_delete.upper()
        return f'REFERENCES "{parent.name}"("{parent.key.name}") ON DELETE {action}'

    def affinity(self, column: str) -> str:
        """The column's type in SQLite (what a table read from either database is
        compared with)."""
        return _AFFINITY[self.types[column]]

    def create_sql(self, name: str | None = None, dialect: Dialect = "sqlite") -> str:
        """CREATE TABLE for the table, or for a copy of it named ``name``."""
        body = ",\n  ".join(self.column_sql(column, dialect) for column in self.columns)
        return f'CREATE TABLE "{name or self.name}" (\n  {body}\n)'

    def indexes(self) -> dict[str, str]:
        """CREATE INDEX of each index by name: the parent column's and the declared ones."""
        resource = self.resource
        wanted = list(resource.index_columns)
        if resource.parent is not None:
            wanted.insert(0, (resource.parent.field,))
        statements: dict[str, str] = {}
        for columns in wanted:
            name = f"{resource.name}_{'_'.join(columns)}"
            listed = ", ".join(f'"{column}"' for column in columns)
            statements[name] = f'CREATE INDEX IF NOT EXISTS "{name}" ON "{self.name}"({listed})'
        return statements

    def to_sql(self, column: str, value: Any) -> Any:
        """A JSON value as stored in ``column``."""
        if value is None:
            return None
        kind = self.types[column]
        if kind in _JSON_TEXT:
            return orjson.dumps(value).decode()
        if kind == "boolean":
            return 1 if value else 0
        return value

    def from_row(self, row: Sequence[Any]) -> dict[str, Any]:
        """An item as JSON (null columns left out) from a row of every column."""
        pairs = zip(self.columns, row, strict=True)
        item = {column: value for column, value in pairs if value is not None}
        for column in self.encoded:
            if column in item:
                item[column] = orjson.loads(item[column])
        for column in self.booleans:
            if column in item:
                item[column] = bool(item[column])
        return item


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def now() -> str:
    """The time a row is written, ISO 8601 in UTC to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_database(
    path: str, resources: Sequence[Resource], migrate: MigrateMode = "safe"
) -> Connection:
    """A connection to ``path`` (a SQLite file or a PostgreSQL URL) with every
    resource's table as declared: created, or changed by
    :func:`quiver.resources.migrate.migrate` (ConfigError when a change would lose
    data and ``migrate`` is not ``force``)."""
    from quiver.resources.migrate import migrate as apply_changes

    if is_postgres(path):
        try:
            from quiver.resources.postgres import PostgresConnection
        except ImportError as exc:
            raise sqlite3.NotSupportedError(
                f"PostgreSQL needs psycopg ({exc}): pip install 'quiver[postgres]'"
            ) from exc
        database = PostgresConnection(path)
        try:
            apply_changes(database, resources, migrate, source=database.shown)
        except BaseException:
            database.close()
            raise
        return database
    if sqlite3.sqlite_version_info < MIN_SQLITE:  # (INSERT ... RETURNING)
        needed = ".".join(map(str, MIN_SQLITE))
        raise sqlite3.NotSupportedError(
            f"resources need SQLite {needed} or later; this Python has {sqlite3.sqlite_version}"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA case_sensitive_like = ON")
        connection.create_function(UNICODE_LOWER, 1, _lower, deterministic=True)
        apply_changes(connection, resources, migrate, source=path)
        connection.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def tables_of(resources: Sequence[Resource]) -> dict[str, Table]:
    """Every resource's table by name, each child's made with its parent's."""
    by_name = {resource.name: resource for resource in resources}
    tables: dict[str, Table] = {}

    def table(resource: Resource) -> Table:
        if resource.name not in tables:
            parent = None
            if resource.parent is not None:
                parent = table(by_name[resource.parent.resource])
            tables[resource.name] = Table.of(resource, parent)
        return tables[resource.name]

    for resource in resources:
        table(resource)
    return tables
