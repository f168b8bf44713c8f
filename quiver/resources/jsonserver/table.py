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

from quiver.config.resources import Resource
from quiver.resources.storage import Table

EXTRA = "_extra"


class ServerTable(Table):
    """A :class:`Table` whose last column, ``_extra``, holds the undeclared fields."""

    __slots__ = ()

    @classmethod
    def of(cls, resource: Resource) -> ServerTable:
        table = Table.of(resource)
        return cls(resource, (*table.columns, EXTRA), {**table.types, EXTRA: "object"})

    def from_row(self, row: Sequence[Any]) -> dict[str, Any]:
        item = super().from_row(row)
        item.update(item.pop(EXTRA, None) or {})
        return item


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
