"""Moving items in and out of the resources' tables: what ``quiver resources export``
prints and ``load`` writes back."""

from __future__ import annotations

import sqlite3
from typing import Any

from quiver.config.resources import Resource
from quiver.resources.errors import Unprocessable
from quiver.resources.storage import Table, now
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
    for resource in _parents_first(resources):
        table = Table.of(resource)
        columns = ", ".join(f'"{column}"' for column in table.columns)
        sql = f'SELECT {columns} FROM "{resource.name}" ORDER BY "{resource.primary_key}"'
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
    counts: dict[str, int] = {}
    connection.execute("BEGIN IMMEDIATE")
    try:
        for resource in _parents_first(resources):
            items = document.get(resource.name, [])
            if not isinstance(items, list):
                raise ValueError(f"/{resource.name}: an array of items")
            table, schema = Table.of(resource), ItemSchema(resource)
            names = ", ".join(f'"{column}"' for column in table.columns)
            marks = ", ".join("?" * len(table.columns))
            sql = f'INSERT INTO "{resource.name}" ({names}) VALUES ({marks})'
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ValueError(f"/{resource.name}/{index}: an item is a JSON object")
                fields = {
                    name: value
                    for name, value in {**schema.defaults, **item}.items()
                    if name in resource.fields and value is not None
                }
                try:
                    schema.check(fields)
                except Unprocessable as exc:
                    raise ValueError(f"/{resource.name}/{index}: {exc.detail}") from None
                stamp = now()
                row = {**item, **fields}
                if resource.timestamps:
                    row.setdefault("created_at", stamp)
                    row.setdefault("updated_at", stamp)
                values = [table.to_sql(column, row.get(column)) for column in table.columns]
                try:
                    connection.execute(sql, values)
                except sqlite3.IntegrityError as exc:
                    raise ValueError(f"/{resource.name}/{index}: {exc}") from None
            counts[resource.name] = len(items)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return counts
