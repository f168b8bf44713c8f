"""Moving items in and out of the resources' tables: what ``quiver resources export``
prints and ``load`` writes back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quiver.config.resources import Resource
from quiver.resources.csvfile import read_csv
from quiver.resources.errors import Unprocessable
from quiver.resources.storage import Connection, Table, dialect_of, now, tables_of
from quiver.resources.validate import ItemSchema


def _parents_first(resources: list[Resource]) -> list[Resource]:
    by_name = {resource.name: resource for resource in resources}
    ordered: list[Resource] = []

    def visit(resource: Resource) -> None:
        if resource in ordered:
            return
        if resource.parent is not None:
            visit(by_name[resource.parent.resource])
        ordered.append(resource)

    for resource in resources:
        visit(resource)
    return ordered


def export(connection: Connection, resources: list[Resource]) -> dict[str, Any]:
    """Every item of every resource, parents first, in key order."""
    result: dict[str, Any] = {}
    tables = tables_of(resources)
    for resource in _parents_first(resources):
        table = tables[resource.name]
        columns = ", ".join(f'"{column}"' for column in table.columns)
        sql = f'SELECT {columns} FROM "{resource.name}" ORDER BY "{resource.key}"'
        result[resource.name] = [table.from_row(row) for row in connection.execute(sql)]
    return result


def load_items(connection: Connection, resources: list[Resource], document: Any) -> dict[str, int]:
    """Inserts the items of ``document`` (as ``export`` prints) in one transaction;
    ValueError names the first item that does not fit."""
    if not isinstance(document, dict):
        raise ValueError("the document is a JSON object of arrays by resource name")
    known = {resource.name for resource in resources}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"no resource named '{unknown[0]}'")
    tables = tables_of(resources)
    counts: dict[str, int] = {}
    with _transaction(connection):
        for resource in _parents_first(resources):
            items = document.get(resource.name, [])
            if not isinstance(items, list):
                raise ValueError(f"/{resource.name}: an array of items")
            inserter = Inserter(connection, tables[resource.name])
            for index, item in enumerate(items):
                try:
                    inserter.insert(item)
                except ValueError as exc:
                    raise ValueError(f"/{resource.name}/{index}: {exc}") from None
            inserter.finish()
            counts[resource.name] = len(items)
    return counts


def load_csv(
    connection: Connection, resources: list[Resource], path: Path, name: str | None
) -> dict[str, int]:
    """Inserts the rows of the CSV file ``path`` as items of resource ``name`` (by
    default the file's name without ``.csv``), all or none."""
    name = name or path.stem
    tables = tables_of(resources)
    if name not in tables:
        known = ", ".join(tables)
        raise ValueError(
            f"{path.name}: no resource named '{name}' (resources: {known}); give --resource NAME"
        )
    rows = read_csv(path, tables[name])
    load_rows(connection, tables[name], rows)
    return {name: len(rows)}


@contextmanager
def _transaction(connection: Connection) -> Iterator[None]:
    """All or nothing: a file half loaded is worse than one refused."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class ItemRefused(ValueError):
    """An item that does not fit: its first failure as ``field``/``detail`` (no field
    for the item as a whole), the message as a JSON load reports it."""

    def __init__(self, message: str, field: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message


def load_rows(connection: Connection, table: Table, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Inserts ``rows`` (each with where it comes from: ``items.csv:3``) in one
    transaction; ValueError lists every row that does not fit, one per line."""
    inserter = Inserter(connection, table)
    failures: list[str] = []
    with _transaction(connection):
        for where, item in rows:
            try:
                inserter.insert(item)
            except ItemRefused as exc:
                failures.append(f"{where}: {exc.field or 'item'}: {exc.detail}")
        inserter.finish()
        if failures:
            more = f"\n(and {len(failures) - 20} more)" if len(failures) > 20 else ""
            raise ValueError("\n".join(failures[:20]) + more)


class Inserter:
    """Writes loaded items into one table, each checked as the API checks a write;
    the key, parent column and timestamps are kept when the item has them."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self.connection = connection
        self.table = table
        self.schema = ItemSchema(table.resource)
        self.sql = self._insert_sql(table.columns)
        #: without an auto key, which the database then assigns (PostgreSQL takes
        #: no NULL for it)
        self.sql_keyless = self._insert_sql(table.inserted)

    def _insert_sql(self, columns: tuple[str, ...]) -> str:
        names = ", ".join(f'"{column}"' for column in columns)
        marks = ", ".join("?" * len(columns))
        return f'INSERT INTO "{self.table.name}" ({names}) VALUES ({marks})'

    def finish(self) -> None:
        """After items were loaded with their auto keys, the keys PostgreSQL assigns
        next start past them (SQLite's AUTOINCREMENT follows by itself)."""
        table = self.table
        if table.key.type != "auto" or dialect_of(self.connection) != "postgresql":
            return
        key, name = table.key.name, table.name
        self.connection.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), "
            f'(SELECT COALESCE(MAX("{key}"), 0) + 1 FROM "{name}"), false)',
            (f'"{name}"', key),
        )

    def insert(self, item: Any) -> None:
        """ItemRefused says what is wrong with ``item``."""
        if not isinstance(item, dict):
            raise ItemRefused("an item is a JSON object")
        table, resource = self.table, self.table.resource
        fields = {
            name: value
            for name, value in {**self.schema.defaults, **item}.items()
            if name in resource.fields and value is not None
        }
        try:
            self.schema.check(fields)
        except Unprocessable as exc:
            errors = exc.extensions.get("errors")
            first = errors[0] if isinstance(errors, list) and errors else {}
            pointer = str(first.get("pointer", ""))
            detail = str(first.get("detail", exc.detail))
            raise ItemRefused(exc.detail, pointer.lstrip("/"), detail) from None
        row = {**item, **fields}
        key = table.key
        if row.get(key.name) is None:
            row[key.name] = key.new()
        elif not key.fits(row[key.name]):
            detail = f"not a {key.type} key: {row[key.name]!r}"
            raise ItemRefused(f"/{key.name}: {detail}", key.name, detail)
        if resource.timestamps:
            stamp = now()
            row.setdefault("created_at", stamp)
            row.setdefault("updated_at", stamp)
        columns, sql = table.columns, self.sql
        if row[key.name] is None:
            columns, sql = table.inserted, self.sql_keyless
        values = [table.to_sql(column, row.get(column)) for column in columns]
        try:
            self.connection.execute(sql, values)
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            column = text.rpartition(".")[2] if "constraint failed: " in text else ""
            if text.startswith("UNIQUE"):
                raise ItemRefused(text, column, "another item has this value") from None
            if text.startswith("NOT NULL"):
                raise ItemRefused(text, column, "is required") from None
            parent = resource.parent
            if "FOREIGN KEY" in text and parent is not None:
                detail = f"no {parent.resource} item {row.get(parent.field)!r}"
                raise ItemRefused(text, parent.field, detail) from None
            raise ItemRefused(text, column) from None
