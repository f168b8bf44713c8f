"""Moving items in and out of the resources' tables: what ``quiver resources export``
prints and ``load`` writes back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quiver.config.resources import Resource
from quiver.resources.errors import Unprocessable
from quiver.resources.storage import Table, now, tables_of
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


def export(connection: sqlite3.Connection, resources: list[Resource]) -> dict[str, Any]:
    """Every item of every resource, parents first, in key order."""
    result: dict[str, Any] = {}
    tables = tables_of(resources)
    for resource in _parents_first(resources):
        table = tables[resource.name]
        columns = ", ".join(f'"{column}"' for column in table.columns)
        sql = f'SELECT {columns} FROM "{resource.name}" ORDER BY "{resource.key}"'
        result[resource.name] = [table.from_row(row) for row in connection.execute(sql)]
    return result


def load_items(
    connection: sqlite3.Connection, resources: list[Resource], document: Any
) -> dict[str, int]:
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
            counts[resource.name] = len(items)
    return counts


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """All or nothing: a file half loaded is worse than one refused."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class Inserter:
    """Writes loaded items into one table, each checked as the API checks a write;
    the key, parent column and timestamps are kept when the item has them."""

    def __init__(self, connection: sqlite3.Connection, table: Table) -> None:
        self.connection = connection
        self.table = table
        self.schema = ItemSchema(table.resource)
        names = ", ".join(f'"{column}"' for column in table.columns)
        marks = ", ".join("?" * len(table.columns))
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'

    def insert(self, item: Any) -> None:
        """ValueError says what is wrong with ``item``."""
        if not isinstance(item, dict):
            raise ValueError("an item is a JSON object")
        table, resource = self.table, self.table.resource
        fields = {
            name: value
            for name, value in {**self.schema.defaults, **item}.items()
            if name in resource.fields and value is not None
        }
        try:
            self.schema.check(fields)
        except Unprocessable as exc:
            raise ValueError(exc.detail) from None
        row = {**item, **fields}
        key = table.key
        if row.get(key.name) is None:
            row[key.name] = key.new()
        elif not key.fits(row[key.name]):
            raise ValueError(f"/{key.name}: not a {key.type} key: {row[key.name]!r}")
        if resource.timestamps:
            stamp = now()
            row.setdefault("created_at", stamp)
            row.setdefault("updated_at", stamp)
        values = [table.to_sql(column, row.get(column)) for column in table.columns]
        try:
            self.connection.execute(self.sql, values)
        except sqlite3.IntegrityError as exc:
            raise ValueError(str(exc)) from None
