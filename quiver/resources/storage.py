"""The SQLite file resources live in: one real table per resource.

Each field is a column of its JSON type's affinity (arrays and objects as JSON
text), ``required`` fields are NOT NULL, ``unique`` ones UNIQUE, and a child's
parent column a foreign key with the declared ON DELETE.  The file is opened in WAL
mode with ``synchronous=FULL``: a write acknowledged with 2xx has reached the disk
(https://www.sqlite.org/pragma.html#pragma_synchronous).  Every worker holds its own
connection; ``busy_timeout`` makes a writer wait for another worker's write instead
of failing.  The stdlib driver is used directly: statements are cached by sqlite3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from quiver.config.resources import TIMESTAMPS, Resource
from quiver.resources.keys import Key

_AFFINITY = {
    "string": "TEXT",
    # NUMERIC keeps 3 an integer and 2.5 a real: an item reads back as it was sent
    "number": "NUMERIC",
    "integer": "INTEGER",
    "boolean": "INTEGER",
    "array": "TEXT",
    "object": "TEXT",
}
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class Table:
    """A resource's table: its columns in order and how values cross into SQL."""

    resource: Resource
    key: Key
    columns: tuple[str, ...]  # key, parent column, fields, timestamps
    types: dict[str, str]  # column -> JSON type
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
            types[name] = schema["type"]
        if resource.timestamps:
            columns.extend(TIMESTAMPS)
            types.update(dict.fromkeys(TIMESTAMPS, "string"))
        return cls(resource, key, tuple(columns), types, parent)

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def inserted(self) -> tuple[str, ...]:
        """The columns an insert names: all but an auto key, which SQLite assigns."""
        return self.columns[1:] if self.key.type == "auto" else self.columns

    def create_sql(self) -> str:
        resource, parent = self.resource, self.parent
        lines = [self.key.column_sql()]
        if resource.parent is not None and parent is not None:
            action = resource.parent.on_delete.upper()
            lines.append(
                f'"{resource.parent.field}" {parent.key.affinity} NOT NULL REFERENCES '
                f'"{parent.name}"("{parent.key.name}") ON DELETE {action}'
            )
        for name, schema in resource.fields.items():
            if name == self.key.name:
                continue
            line = f'"{name}" {_AFFINITY[schema["type"]]}'
            if name in resource.required:
                line += " NOT NULL"
            if name in resource.unique:
                line += " UNIQUE"
            lines.append(line)
        if resource.timestamps:
            lines += [f'"{name}" TEXT NOT NULL' for name in TIMESTAMPS]
        body = ",\n  ".join(lines)
        sql = f'CREATE TABLE IF NOT EXISTS "{resource.name}" (\n  {body}\n)'
        if resource.parent is not None:
            field = resource.parent.field
            sql += (
                f';\nCREATE INDEX IF NOT EXISTS "{resource.name}_{field}" '
                f'ON "{resource.name}"("{field}")'
            )
        for columns in resource.index_columns:
            listed = ", ".join(f'"{column}"' for column in columns)
            sql += (
                f';\nCREATE INDEX IF NOT EXISTS "{resource.name}_{"_".join(columns)}" '
                f'ON "{resource.name}"({listed})'
            )
        return sql

    def to_sql(self, column: str, value: Any) -> Any:
        """A JSON value as stored in ``column``."""
        if value is None:
            return None
        kind = self.types[column]
        if kind in ("array", "object"):
            return orjson.dumps(value).decode()
        if kind == "boolean":
            return 1 if value else 0
        return value

    def from_row(self, row: Sequence[Any]) -> dict[str, Any]:
        """An item as JSON (null columns left out) from a row of every column."""
        item: dict[str, Any] = {}
        for column, value in zip(self.columns, row, strict=True):
            if value is None:
                continue
            kind = self.types[column]
            if kind in ("array", "object"):
                value = orjson.loads(value)
            elif kind == "boolean":
                value = bool(value)
            item[column] = value
        return item


def now() -> str:
    """The time a row is written, ISO 8601 in UTC to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_database(path: str, resources: Sequence[Resource]) -> sqlite3.Connection:
    """A connection to ``path`` with every resource's table created (parents first)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA case_sensitive_like = ON")
    done: set[str] = set()

    def create(table: Table) -> None:
        if table.name in done:
            return
        if table.parent is not None:
            create(table.parent)
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in table.create_sql().split(";\n"):
                connection.execute(statement)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        done.add(table.name)

    for table in tables_of(resources).values():
        create(table)
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
