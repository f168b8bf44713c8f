"""A json-server collection's table: the inferred fields' columns, and ``_extra``.

json-server keeps whatever fields a client sends.  Here the fields db.json had are
columns of their inferred types, and any other field of an item is kept in its
``_extra`` column, a JSON object: a collection that was empty in db.json, or a
field added later, is stored, read, filtered and sorted like the others (by
SQLite's JSON functions), with no type checked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from quiver.config.resources import Resource
from quiver.resources.errors import invalid
from quiver.resources.storage import Table
from quiver.resources.validate import ItemSchema

EXTRA = "_extra"


class ServerTable(Table):
    """A :class:`Table` whose last column, ``_extra``, holds the undeclared fields."""

    __slots__ = ()

    @classmethod
    def of(cls, resource: Resource, parent: Table | None = None) -> ServerTable:
        table = Table.of(resource, parent)
        return cls(
            resource,
            table.key,
            (*table.columns, EXTRA),
            {**table.types, EXTRA: "object"},
            (*table.encoded, EXTRA),
            table.booleans,
        )

    def from_row(self, row: Sequence[Any]) -> dict[str, Any]:
        item = super().from_row(row)
        item.update(item.pop(EXTRA, None) or {})
        return item

    def values(self, schema: ItemSchema, document: Any) -> dict[str, Any]:
        """The column values of an item (its id aside): the inferred fields checked
        (a 422 naming each that breaks its type), any other field into ``_extra``, and
        so are nulls, which json-server keeps."""
        if not isinstance(document, dict):
            raise invalid([{"pointer": "", "detail": "an item is a JSON object"}])
        fields = self.resource.fields
        typed = {name: document[name] for name in fields if document.get(name) is not None}
        item = schema.check(typed)
        values = {name: self.to_sql(name, item.get(name)) for name in fields}
        extra = {
            name: value for name, value in document.items() if name not in fields or value is None
        }
        values[EXTRA] = orjson.dumps(extra).decode() if extra else None
        return values


def add_extra_column(connection: sqlite3.Connection, name: str) -> None:
    """Gives the table ``name`` its ``_extra`` column when it has none yet."""
    columns = {row[1] for row in connection.execute(f"SELECT * FROM pragma_table_info('{name}')")}
    if EXTRA in columns:
        return
    try:
        connection.execute(f'ALTER TABLE "{name}" ADD COLUMN "{EXTRA}" TEXT')
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another worker added it meanwhile
            raise
