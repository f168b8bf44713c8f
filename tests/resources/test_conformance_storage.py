"""Conformance of how resources are kept, seen from the database file and from restarts:
real tables with real columns and constraints, WAL, and schema changes applied as
migrations (one that would drop data refused unless forced).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.resources.test_conformance_crud import (
    SPEC_RESOURCES,
    create,
    quiver_serving,
    send,
)
from tests.support.process import (
    LISTENING,
    START_TIMEOUT,
    QuiverProcess,
    run_quiver,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


def config_text(directory: Path, resources: str) -> str:
    """What ``quiver_serving`` runs in ``directory``, for the commands run beside it."""
    return f"listen: 127.0.0.1:0\nresources_db: {directory / 'resources.db'}\n" + resources


def columns(db: sqlite3.Connection, table: str) -> dict[str, dict[str, Any]]:
    rows = db.execute(f"PRAGMA table_info({table})").fetchall()
    return {row[1]: {"type": row[2], "notnull": bool(row[3]), "pk": bool(row[5])} for row in rows}


def unique_columns(db: sqlite3.Connection, table: str) -> set[str]:
    found = set()
    for index in db.execute(f"PRAGMA index_list({table})").fetchall():
        if index[2]:  # unique
            names = [row[2] for row in db.execute(f"PRAGMA index_info('{index[1]}')")]
            if len(names) == 1:
                found.add(names[0])
    return found


def test_resources_are_real_tables_with_columns_and_constraints(tmp_path: Path) -> None:
    with quiver_serving(tmp_path, SPEC_RESOURCES) as api:
        create(api, "/items", {"name": "kept", "price": 1})
    db = sqlite3.connect(tmp_path / "resources.db")
    try:
        items = columns(db, "items")
        assert {"name", "price", "tags", "status", "created_at", "updated_at"} <= set(items)
        assert items["name"]["notnull"] and items["price"]["notnull"]
        assert "name" in unique_columns(db, "items")
        guests = columns(db, "guests")
        assert {"email", "event_id"} <= set(guests)
        keys = db.execute("PRAGMA foreign_key_list(guests)").fetchall()
        # (id, seq, table, from, to, on_update, on_delete, match)
        assert [(k[2], k[3], k[6]) for k in keys] == [("events", "event_id", "CASCADE")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


ADDED_FIELD = SPEC_RESOURCES.replace(
    "      status: {type: string, enum: [draft, active, archived], default: draft}\n",
    "      status: {type: string, enum: [draft, active, archived], default: draft}\n"
    "      colour: {type: string}\n",
)
DROPPED_FIELD = SPEC_RESOURCES.replace("      tags: {type: array, items: {type: string}}\n", "")


def test_an_added_field_leaves_the_items_as_they_were(tmp_path: Path) -> None:
    with quiver_serving(tmp_path, SPEC_RESOURCES) as api:
        old = create(api, "/items", {"name": "before", "price": 1, "tags": ["t"]})
    with quiver_serving(tmp_path, ADDED_FIELD) as api:
        # an item stored before has no colour: it reads back as it was
        assert send(api, "GET", f"/items/{old['id']}").json() == old
        assert send(api, "GET", "/items?colour[null]=true").json() == [old]


def test_an_added_field_is_migrated(tmp_path: Path) -> None:
    with quiver_serving(tmp_path, SPEC_RESOURCES) as api:
        create(api, "/items", {"name": "before", "price": 1})
    with quiver_serving(tmp_path, ADDED_FIELD) as api:
        new = create(api, "/items", {"name": "after", "price": 2, "colour": "red"})
        assert send(api, "GET", f"/items/{new['id']}").json()["colour"] == "red"
        assert send(api, "GET", "/items?colour=red").json() == [new]


def test_a_change_that_would_drop_data_is_refused(tmp_path: Path) -> None:
    # "a change that would drop or truncate data is refused unless forced": the gateway
    # does not start serving a table that lost a column holding values
    with quiver_serving(tmp_path, SPEC_RESOURCES) as api:
        create(api, "/items", {"name": "tagged", "price": 1, "tags": ["keep", "me"]})
    config = write_config(tmp_path, config_text(tmp_path, DROPPED_FIELD), "dropped.yaml")
    with QuiverProcess(["serve", "-c", str(config)], cwd=tmp_path) as proc:
        try:
            proc.wait_for(LISTENING, timeout=START_TIMEOUT)
        except AssertionError:
            assert proc.wait(10) != 0  # refused, as it should
        else:
            pytest.fail("served a config whose change drops the items' tags")
    db = sqlite3.connect(tmp_path / "resources.db")
    try:
        assert db.execute("SELECT tags FROM items WHERE name = 'tagged'").fetchone()[0]
    finally:
        db.close()


def test_export_then_load_into_a_fresh_database_gives_the_same_answers(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with quiver_serving(first, SPEC_RESOURCES) as api:
        item = create(api, "/items", {"name": "exported", "price": 2.5, "tags": ["x"]})
        event = create(api, "/events", {"title": "party"})
        guest = create(api, f"/events/{event['id']}/guests", {"email": "p@example.com"})
    exported = run_quiver("resources", "export", "-c", str(first / "quiver.yaml"), cwd=first)
    assert exported.returncode == 0, exported.stderr
    dump = second / "dump.json"
    dump.write_text(exported.stdout)
    config = write_config(second, config_text(second, SPEC_RESOURCES))
    loaded = run_quiver("resources", "load", str(dump), "-c", str(config), cwd=second)
    assert loaded.returncode == 0, loaded.stderr
    with quiver_serving(second, SPEC_RESOURCES) as api:
        assert send(api, "GET", f"/items/{item['id']}").json() == item
        guests = send(api, "GET", f"/events/{event['id']}/guests").json()
        assert guests == [guest]


def test_items_are_seeded_from_a_csv_file(tmp_path: Path) -> None:
    # "seed from a JSON or CSV file (quiver resources load)": a CSV file named after its
    # resource, a header row of field names; values take their fields' types
    config = write_config(tmp_path, config_text(tmp_path, SPEC_RESOURCES))
    csv_file = tmp_path / "items.csv"
    csv_file.write_text('name,price,status\npen,2.5,active\n"ink, blue",3,draft\n')
    loaded = run_quiver("resources", "load", str(csv_file), "-c", str(config), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    with quiver_serving(tmp_path, SPEC_RESOURCES) as api:
        items = send(api, "GET", "/items?sort=name&fields=name,price,status").json()
    assert items == [
        {"name": "ink, blue", "price": 3, "status": "draft"},
        {"name": "pen", "price": 2.5, "status": "active"},
    ]


INDEXED = SPEC_RESOURCES.replace(
    "    unique: [name]\n", "    unique: [name]\n    indexes: [price, [status, price]]\n"
)


def test_declared_indexes_are_real_indexes(tmp_path: Path) -> None:
    with quiver_serving(tmp_path, INDEXED) as api:
        create(api, "/items", {"name": "indexed", "price": 1})
        assert send(api, "GET", "/items?status=draft&sort=-price").status_code == 200
    db = sqlite3.connect(tmp_path / "resources.db")
    try:
        indexed = set()
        for index in db.execute("PRAGMA index_list(items)").fetchall():
            indexed.add(tuple(row[2] for row in db.execute(f"PRAGMA index_info('{index[1]}')")))
    finally:
        db.close()
    assert {("price",), ("status", "price")} <= indexed, indexed
