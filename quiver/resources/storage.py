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
#: the type of a field declared without one (json-server dialect): any JSON value,
#: stored as JSON text like arrays and objects
ANY_TYPE = "any"
_JSON_TEXT = ("array", "object", ANY_TYPE)


@dataclass(frozen=True, slots=True)
class Table:
    """A resource's table: its columns in order and how values cross into SQL."""

    resource: Resource
    columns: tuple[str, ...]  # key, parent column, fields, timestamps
    types: dict[str, str]  # column -> JSON type

    @classmethod
    def of(cls, resource: Resource) -> Table:
        columns = [resource.primary_key]
        types = {resource.primary_key: "integer"}
        if resource.parent is not None:
            columns.append(resource.parent.field)
            types[resource.parent.field] = "integer"
        for name, schema in resource.fields.items():
            columns.append(name)
            types[name] = schema.get("type", ANY_TYPE)
        if resource.timestamps:
            columns.extend(TIMESTAMPS)
            types.update(dict.fromkeys(TIMESTAMPS, "string"))
        return cls(resource, tuple(columns), types)

    @property
    def name(self) -> str:
        return self.resource.name

    def create_sql(self, parent: Table | None) -> str:
        resource = self.resource
        lines = [f'"{resource.primary_key}" INTEGER PRIMARY KEY AUTOINCREMENT']
        if resource.parent is not None and parent is not None:
            action = resource.parent.on_delete.upper()
            lines.append(
                f'"{resource.parent.field}" INTEGER NOT NULL REFERENCES '
                f'"{parent.name}"("{parent.resource.primary_key}") ON DELETE {action}'
            )
        for name, schema in resource.fields.items():
            line = f'"{name}" {_AFFINITY.get(schema.get("type", ANY_TYPE), "TEXT")}'
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
        if kind in _JSON_TEXT:
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
            if kind in _JSON_TEXT:
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
    tables = {resource.name: Table.of(resource) for resource in resources}
    done: set[str] = set()

    def create(table: Table) -> None:
        if table.name in done:
            return
        parent = None
        if table.resource.parent is not None:
            parent = tables[table.resource.parent.resource]
            create(parent)
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in table.create_sql(parent).split(";\n"):
                connection.execute(statement)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        done.add(table.name)

    for table in tables.values():
        create(table)
    return connection
