"""The SQLite file serving a db.json: seeded once, then the data's home.

The first start (no file yet) infers the layout from db.json, creates one table
per collection (a TEXT key for string ids), loads the items and singular
documents, and records the layout in the file itself; it is written under a
temporary name and renamed, so a failed seed leaves nothing behind.  Later starts
read the layout from the file, never db.json again: the data written meanwhile is
kept, and :func:`snapshot` gives it back in db.json's shape.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from quiver.config.resources import Resource
from quiver.errors import HTTPError
from quiver.resources.jsonserver.infer import ID, DbJsonError, Layout, Seed, read_db
from quiver.resources.jsonserver.table import ServerTable, add_extra_column
from quiver.resources.storage import Table, open_database
from quiver.resources.validate import ItemSchema

_META = "_quiver_json_server"
#: the singular documents, by name, as JSON text
DOCUMENTS = "_quiver_documents"
_INTEGER_KEY = '"id" INTEGER PRIMARY KEY AUTOINCREMENT'
_TEXT_KEY = '"id" TEXT PRIMARY KEY'


def open_sqlite(path: str) -> sqlite3.Connection:
    """A connection to the SQLite file of a db.json's data (a db.json is served from
    SQLite alone)."""
    connection = open_database(path, [])
    assert isinstance(connection, sqlite3.Connection), "a db.json is served from SQLite"
    return connection


def default_database(db_json: str) -> str:
    """The SQLite file next to ``db_json``: ``db.json`` -> ``db.quiver.sqlite``."""
    path = Path(db_json)
    return str(path.with_name(path.stem + ".quiver.sqlite"))


def prepare(db_json: str, database: str) -> tuple[Layout, bool]:
    """The layout of the data in ``database``, seeded from ``db_json`` when the file
    does not exist yet (then True)."""
    if os.path.exists(database):
        return read_layout(database), False
    try:
        document = orjson.loads(Path(db_json).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DbJsonError(f"{db_json}: not JSON: {exc}") from None
    seed = read_db(document)
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    temporary = database + ".seeding"
    Path(temporary).unlink(missing_ok=True)
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            _seed(connection, seed)
        finally:
            connection.close()
        os.replace(temporary, database)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return seed.layout, True


def _seed(connection: sqlite3.Connection, seed: Seed) -> None:
    layout = seed.layout
    for resource in layout.resources:
        table = Table.of(resource)
        sql = table.create_sql()
        if layout.id_kinds[resource.name] == "string":
            # json-server's string ids: kept as text, and made on create
            assert _INTEGER_KEY in sql, "the key's column is declared otherwise"
            sql = sql.replace(_INTEGER_KEY, _TEXT_KEY, 1)
        for statement in [sql, *table.indexes().values()]:
            connection.execute(statement)
        add_extra_column(connection, resource.name)
    connection.execute(f'CREATE TABLE "{_META}" (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
    connection.execute(f'CREATE TABLE "{DOCUMENTS}" (name TEXT PRIMARY KEY, value TEXT NOT NULL)')
    stored = {
        "resources": [
            resource.model_dump(mode="json", exclude_defaults=True) for resource in layout.resources
        ],
        "id_kinds": layout.id_kinds,
        "singulars": layout.singulars,
        "order": layout.order,
    }
    connection.execute(f'INSERT INTO "{_META}" VALUES (?, ?)', ("layout", json.dumps(stored)))
    for name, document in seed.documents.items():
        connection.execute(
            f'INSERT INTO "{DOCUMENTS}" VALUES (?, ?)', (name, orjson.dumps(document).decode())
        )
    for resource in layout.resources:
        _load(connection, resource, seed.items[resource.name])


def _load(connection: sqlite3.Connection, resource: Resource, items: list[dict[str, Any]]) -> None:
    """Inserts db.json's ``items`` as they are, nulls and all."""
    table, schema = ServerTable.of(resource), ItemSchema(resource)
    names = ", ".join(f'"{column}"' for column in table.columns)
    marks = ", ".join("?" * len(table.columns))
    sql = f'INSERT INTO "{resource.name}" ({names}) VALUES ({marks})'
    for index, item in enumerate(items):
        document = {name: value for name, value in item.items() if name != ID}
        try:
            values = table.values(schema, document)
        except HTTPError as exc:
            raise DbJsonError(f'db.json: "{resource.name}"[{index}]: {exc.detail}') from None
        connection.execute(sql, (item[ID], *values.values()))


def read_layout(database: str) -> Layout:
    """The layout recorded in ``database`` when it was seeded."""
    if not os.path.isfile(database):
        raise DbJsonError(f"{database}: no such file (`quiver resources serve` makes it)")
    connection = sqlite3.connect(Path(database).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        row = connection.execute(f'SELECT value FROM "{_META}" WHERE key = ?', ("layout",))
        found = row.fetchone()
    except sqlite3.Error:
        found = None
    finally:
        connection.close()
    if found is None:
        raise DbJsonError(f"{database}: not a database `quiver resources serve` made")
    stored = json.loads(found[0])
    return Layout(
        [Resource.model_validate(each) for each in stored["resources"]],
        stored["id_kinds"],
        stored["singulars"],
        stored["order"],
    )


def read_document(connection: sqlite3.Connection, name: str) -> dict[str, Any]:
    row = connection.execute(f'SELECT value FROM "{DOCUMENTS}" WHERE name = ?', (name,))
    found = row.fetchone()
    return {} if found is None else dict(orjson.loads(found[0]))


def write_document(connection: sqlite3.Connection, name: str, document: dict[str, Any]) -> None:
    connection.execute(
        f'INSERT OR REPLACE INTO "{DOCUMENTS}" VALUES (?, ?)',
        (name, orjson.dumps(document).decode()),
    )


def snapshot(connection: sqlite3.Connection, layout: Layout) -> dict[str, Any]:
    """Every collection and singular document, in db.json's shape and order (items
    in the order they were added, as json-server keeps its arrays)."""
    collections = {resource.name: _items(connection, resource) for resource in layout.resources}
    documents = {name: read_document(connection, name) for name in layout.singulars}
    every = {**collections, **documents}
    return {name: every[name] for name in layout.order}


def _items(connection: sqlite3.Connection, resource: Resource) -> list[dict[str, Any]]:
    table = ServerTable.of(resource)
    columns = ", ".join(f'"{column}"' for column in table.columns)
    sql = f'SELECT {columns} FROM "{resource.name}" ORDER BY rowid'
    return [table.from_row(row) for row in connection.execute(sql)]
