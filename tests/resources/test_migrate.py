"""Schema changes of the declared resources, applied when the store opens: the safe
ones at once, the ones that would lose data refused until forced."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.resources.conftest import BEFORE_MIGRATION as BEFORE
from tests.resources.conftest import Api, create_items
from tests.support.process import QUIVER, _environment, run_quiver, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)


def _seed(db: Path) -> None:
    create_items(
        BEFORE.format(db=db),
        [{"name": "pen", "price": 2, "note": "blue"}, {"name": "cup", "price": 3}],
    )


def _columns(db: Path, table: str = "items") -> list[str]:
    with closing(sqlite3.connect(db)) as connection:
        return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def _indexes(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as connection:
        return {row[1] for row in connection.execute("PRAGMA index_list(items)")}


def _export(config: Path) -> subprocess.CompletedProcess[str]:
    return run_quiver("resources", "export", "-c", str(config))


def test_a_new_field_fills_existing_items_with_its_default(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace(
        "      note: {{type: string}}\n",
        "      note: {{type: string}}\n"
        "      status: {{type: string, default: draft}}\n"
        "      qty: {{type: integer, default: 1}}\n"
        "      colour: {{type: string}}\n",
    ).replace("required: [name]", "required: [name, qty]\n    timestamps: true")
    with RunningProxy(after.format(db=db)) as proxy:
        api = Api(proxy.port)
        items = api("GET", "/items").json()
        assert [(i["name"], i["status"], i["qty"]) for i in items] == [
            ("pen", "draft", 1),
            ("cup", "draft", 1),
        ]
        assert "colour" not in items[0]
        assert items[0]["created_at"] == items[1]["updated_at"]  # the migration's time
        created = api("POST", "/items", {"name": "hat"})
        assert created.status == 201 and created.json()["qty"] == 1
        api.client.close()
    assert _columns(db)[-5:] == ["status", "qty", "colour", "created_at", "updated_at"]


def test_a_new_required_field_without_default_is_refused_on_a_table_with_items(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace(
        "      note: {{type: string}}\n",
        "      note: {{type: string}}\n      sku: {{type: string}}\n",
    ).replace("required: [name]", "required: [name, sku]")
    config = write_config(tmp_path, after.format(db=db))
    for command in (("check", "-c", str(config)), ("resources", "export", "-c", str(config))):
        result = run_quiver(*command)
        assert result.returncode == 1
        assert "resources[0].fields.sku: is new and required: give it a default" in result.stderr
    assert "sku" not in _columns(db)


def test_indexes_are_created_and_dropped_as_declared(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    indexed = BEFORE + "    indexes: [name, [price, name]]\n"
    config = write_config(tmp_path, indexed.format(db=db))
    assert _export(config).returncode == 0
    assert {"items_name", "items_price_name"} <= _indexes(db)
    config = write_config(tmp_path, (BEFORE + "    indexes: [name]\n").format(db=db))
    assert _export(config).returncode == 0
    assert "items_price_name" not in _indexes(db) and "items_name" in _indexes(db)


def test_removing_a_field_with_data_is_refused_until_forced(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace("      note: {{type: string}}\n", "")
    config = write_config(tmp_path, after.format(db=db))
    checked = run_quiver("check", "-c", str(config))
    assert checked.returncode == 1
    assert (
        "resources[0].fields.note: is no longer declared: 1 items of 'items' have a value "
        "that would be lost; set resources_migrate: force" in checked.stderr
    )
    served = run_quiver("serve", "-c", str(config))
    assert served.returncode == 1
    assert "resources[0].fields.note" in served.stderr
    assert "note" in _columns(db)  # nothing changed
    forced = write_config(tmp_path, "resources_migrate: force\n" + after.format(db=db))
    assert run_quiver("check", "-c", str(forced)).returncode == 0
    exported = _export(forced)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["items"] == [
        {"id": 1, "name": "pen", "price": 2},
        {"id": 2, "name": "cup", "price": 3},
    ]
    assert _columns(db) == ["id", "name", "price"]
    with RunningProxy(after.format(db=db)) as proxy:  # and keys go on where they were
        api = Api(proxy.port)
        assert api("POST", "/items", {"name": "hat"}).json()["id"] == 3
        api.client.close()


def test_changing_a_type_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace("price: {{type: number}}", "price: {{type: string}}")
    config = write_config(tmp_path, after.format(db=db))
    result = _export(config)
    assert result.returncode == 1
    assert "resources[0].fields.price: changes type from number to string" in result.stderr
    # string to array: both TEXT in SQLite, told apart by the recorded declaration
    note = BEFORE.replace("note: {{type: string}}", "note: {{type: array}}")
    result = _export(write_config(tmp_path, note.format(db=db)))
    assert "resources[0].fields.note: changes type from string to array" in result.stderr


def test_forcing_a_type_change_converts_what_it_can(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace("price: {{type: number}}", "price: {{type: string}}")
    forced = write_config(tmp_path, "resources_migrate: force\n" + after.format(db=db))
    exported = _export(forced)
    assert exported.returncode == 0, exported.stderr
    assert [item["price"] for item in json.loads(exported.stdout)["items"]] == ["2", "3"]


def test_a_removed_resource_keeps_its_table(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    other = BEFORE.replace("name: items", "name: things")
    assert _export(write_config(tmp_path, other.format(db=db))).returncode == 0
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 2


def test_two_processes_opening_at_once_migrate_once(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    after = BEFORE.replace(
        "      note: {{type: string}}\n",
        "      note: {{type: string}}\n      status: {{type: string, default: new}}\n",
    )
    config = write_config(tmp_path, after.format(db=db))
    command = [*QUIVER, "resources", "export", "-c", str(config)]
    processes = [
        subprocess.Popen(
            command,
            env=_environment(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=30) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr  # the second found the work done
        assert [item["status"] for item in json.loads(stdout)["items"]] == ["new", "new"]
    assert _columns(db).count("status") == 1
    with closing(sqlite3.connect(db)) as connection:
        recorded = connection.execute("SELECT name FROM _quiver_resources").fetchall()
    assert recorded == [("items",)]


CHILDREN = """
resources_db: {db}
resources:
  - name: events
    fields: {{title: {{type: string}}}}
  - name: guests
    parent: {{resource: events, field: event_id, on_delete: cascade}}
    fields: {{email: {{type: string}}}}
"""


def test_forcing_uuid_keys_on_a_parent_carries_its_children_along(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    dump = tmp_path / "dump.json"
    dump.write_text(
        json.dumps(
            {
                "events": [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}],
                "guests": [{"event_id": 2, "email": "x"}, {"event_id": 1, "email": "y"}],
            }
        )
    )
    before = write_config(tmp_path, CHILDREN.format(db=db))
    assert run_quiver("resources", "load", str(dump), "-c", str(before)).returncode == 0
    uuid_keys = CHILDREN.replace(
        "  - name: events\n", "  - name: events\n    primary_key: {{name: id, type: uuid}}\n"
    )
    refused = _export(write_config(tmp_path, uuid_keys.format(db=db)))
    assert refused.returncode == 1
    assert "resources[0].primary_key: the key changes from auto 'id' to uuid 'id'" in (
        refused.stderr
    )
    forced = "resources_migrate: force\n" + uuid_keys
    exported = _export(write_config(tmp_path, forced.format(db=db)))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    titles = {event["id"]: event["title"] for event in document["events"]}
    assert sorted(titles.values()) == ["a", "b"]
    assert {guest["email"]: titles[guest["event_id"]] for guest in document["guests"]} == {
        "x": "b",
        "y": "a",
    }


def test_safe_rebuilds_keep_every_value(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _seed(db)
    # price made unique (no clash), name no longer required, a new resource
    after = BEFORE.replace("required: [name]", "unique: [price]") + (
        "  - name: tags\n    fields: {{label: {{type: string}}}}\n"
    )
    config = write_config(tmp_path, after.format(db=db))
    exported = _export(config)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert [item["note"] for item in document["items"] if "note" in item] == ["blue"]
    assert document["tags"] == []
    with RunningProxy(after.format(db=db)) as proxy:
        api = Api(proxy.port)
        assert api("POST", "/items", {"price": 5}).status == 201  # name is optional now
        assert api("POST", "/items", {"name": "x", "price": 2}).status == 409  # unique
        api.client.close()


def test_a_unique_field_with_shared_values_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with RunningProxy(BEFORE.format(db=db)) as proxy:
        api = Api(proxy.port)
        for name in ("a", "b", "c"):
            assert api("POST", "/items", {"name": name, "price": 1}).status == 201
        api.client.close()
    config = write_config(tmp_path, (BEFORE + "    unique: [price]\n").format(db=db))
    result = _export(config)
    assert result.returncode == 1
    assert "resources[0].fields.price: becomes unique: 1 values are shared" in result.stderr


def test_a_file_made_before_declarations_were_recorded_is_taken_as_it_is(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    made = (
        'CREATE TABLE "items" (\n  "id" INTEGER PRIMARY KEY AUTOINCREMENT,\n'
        '  "name" TEXT NOT NULL,\n  "price" NUMERIC,\n  "note" TEXT\n)'
    )
    with closing(sqlite3.connect(db)) as connection:
        connection.execute(made)
        connection.execute("INSERT INTO items (name, price) VALUES ('pen', 2)")
        connection.commit()
    with RunningProxy(BEFORE.format(db=db)) as proxy:
        api = Api(proxy.port)
        assert api("GET", "/items/1").json() == {"id": 1, "name": "pen", "price": 2}
        api.client.close()
    with closing(sqlite3.connect(db)) as connection:
        sql = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()
        recorded = connection.execute("SELECT name FROM _quiver_resources").fetchall()
    assert sql[0] == made  # not rebuilt
    assert recorded == [("items",)]
