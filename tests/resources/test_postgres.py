"""PostgreSQL as the resources database: schema changes, loads and exports, and
workers writing at once (the API itself runs on both databases in test_api.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from quiver.config.resources import Resource
from quiver.errors import ConfigError
from quiver.resources.storage import open_database
from quiver.resources.transfer import export, load_csv, load_items
from tests.resources.conftest import BEFORE_MIGRATION as BEFORE
from tests.resources.conftest import RESOURCES, Api, create_items
from tests.store.conftest import postgres_schema_url
from tests.support.process import run_quiver, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def url() -> Iterator[str]:
    yield from postgres_schema_url()


def _resources(text: str) -> list[Resource]:
    document = yaml.safe_load(text.format(db="unused"))
    return [Resource.model_validate(each) for each in document["resources"]]


def _seed(url: str) -> None:
    create_items(
        BEFORE.format(db=url),
        [{"name": "pen", "price": 2, "note": "12"}, {"name": "cup", "price": 3.5}],
    )


def _exported(url: str, text: str, mode: Any = "safe") -> dict[str, Any]:
    connection = open_database(url, _resources(text), mode)
    try:
        return export(connection, _resources(text))
    finally:
        connection.close()


def _columns(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'items'"
        ).fetchall()
    return dict(rows)


def test_tables_have_postgresql_types(url: str) -> None:
    connection = open_database(url, _resources(RESOURCES))
    connection.close()
    assert _columns(url) == {
        "id": "bigint",
        "name": "text",
        "price": "numeric",
        "tags": "jsonb",
        "status": "text",
        "created_at": "text",
        "updated_at": "text",
    }


def test_a_new_field_fills_existing_items_with_its_default(url: str) -> None:
    _seed(url)
    after = BEFORE.replace(
        "      note: {{type: string}}\n",
        "      note: {{type: string}}\n      size: {{type: integer, default: 4}}\n",
    )
    items = _exported(url, after)["items"]
    assert [item["size"] for item in items] == [4, 4]
    assert _columns(url)["size"] == "bigint"


def test_removing_a_field_with_data_is_refused_until_forced(url: str) -> None:
    _seed(url)
    after = BEFORE.replace("      note: {{type: string}}\n", "")
    with pytest.raises(ConfigError) as refused:
        open_database(url, _resources(after))
    assert "resources[0].fields.note: is no longer declared: 1 items" in str(refused.value)
    assert "note" in _columns(url)  # nothing changed
    assert _exported(url, after, "force")["items"] == [
        {"id": 1, "name": "pen", "price": 2},
        {"id": 2, "name": "cup", "price": 3.5},
    ]
    assert "note" not in _columns(url)
    with RunningProxy(after.format(db=url)) as proxy:  # and keys go on where they were
        api = Api(proxy.port)
        assert api("POST", "/items", {"name": "hat"}).json()["id"] == 3
        api.client.close()


def test_forcing_a_type_change_converts_what_it_can(url: str) -> None:
    _seed(url)
    after = BEFORE.replace("note: {{type: string}}", "note: {{type: integer}}")
    with pytest.raises(ConfigError, match="changes type from string to integer"):
        open_database(url, _resources(after))
    items = _exported(url, after, "force")["items"]
    assert [item.get("note") for item in items] == [12, None]
    assert _columns(url)["note"] == "bigint"


def test_constraints_made_stricter_apply_when_every_item_fits(url: str) -> None:
    _seed(url)
    after = BEFORE.replace("required: [name]", "required: [name, price]\n    unique: [name]")
    with RunningProxy(after.format(db=url)) as proxy:
        api = Api(proxy.port)
        assert api("GET", "/items?count=true").header("X-Total-Count") == "2"
        assert api("POST", "/items", {"name": "pen", "price": 1}).status == 409
        assert api("POST", "/items", {"name": "box"}).status == 422
        api.client.close()


def test_workers_starting_at_once_migrate_once(url: str) -> None:
    resources = _resources(RESOURCES)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        start.wait()
        try:
            open_database(url, resources).close()
        except BaseException as exc:  # (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with psycopg.connect(url) as connection:
        recorded = connection.execute('SELECT COUNT(*) FROM "_quiver_resources"').fetchone()
    assert recorded == (3,)


def test_loaded_keys_are_kept_and_new_ones_follow_them(url: str, tmp_path: Path) -> None:
    resources = _resources(RESOURCES)
    document = {
        "items": [{"id": 7, "name": "pen", "price": 2, "tags": ["a", "b"]}],
        "events": [{"id": 3, "title": "launch"}],
        "guests": [{"id": 5, "event_id": 3, "email": "a@example.com"}],
    }
    csv = tmp_path / "items.csv"
    csv.write_text('id,name,price,tags\n9,cup,3.5,"{""x"": 1}"\n')
    connection = open_database(url, resources)
    try:
        assert load_items(connection, resources, document) == {"items": 1, "events": 1, "guests": 1}
        with pytest.raises(ValueError, match=r"items.csv:2: tags: .* is not of type 'array'"):
            load_csv(connection, resources, csv, None)
        csv.write_text("id,name,price\n9,cup,3.5\n")
        assert load_csv(connection, resources, csv, None) == {"items": 1}
        dumped = export(connection, resources)
    finally:
        connection.close()
    assert [item["id"] for item in dumped["items"]] == [7, 9]
    assert dumped["items"][0]["tags"] == ["a", "b"]
    with RunningProxy(RESOURCES.format(db=url)) as proxy:
        api = Api(proxy.port)
        assert api("POST", "/items", {"name": "hat", "price": 1}).json()["id"] == 10
        assert api("POST", "/events/3/guests", {"email": "b@example.com"}).json()["id"] == 6
        api.client.close()


def test_the_commands_export_and_check_postgresql(url: str, tmp_path: Path) -> None:
    _seed(url)
    config = write_config(tmp_path, BEFORE.format(db=url))
    exported = run_quiver("resources", "export", "-c", str(config))
    assert exported.returncode == 0, exported.stderr
    assert [item["name"] for item in json.loads(exported.stdout)["items"]] == ["pen", "cup"]
    after = write_config(
        tmp_path, BEFORE.replace("      note: {{type: string}}\n", "").format(db=url)
    )
    checked = run_quiver("check", "-c", str(after))
    assert checked.returncode == 1
    assert "resources[0].fields.note: is no longer declared: 1 items" in checked.stderr


def _race(apis: list[Api], location: str, tag: str) -> list[int]:
    """The statuses of one PATCH through each API, all sent at once with ``tag``."""
    statuses: list[int] = []
    start = threading.Barrier(len(apis))
    merge = "application/merge-patch+json"

    def patch(api: Api, price: int) -> None:
        start.wait()
        response = api("PATCH", location, {"price": price}, {"If-Match": tag}, content_type=merge)
        statuses.append(response.status)

    threads = [
        threading.Thread(target=patch, args=(api, index + 2)) for index, api in enumerate(apis)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(statuses)


def test_two_workers_writing_with_one_etag_one_wins(url: str) -> None:
    text = RESOURCES.format(db=url)
    with RunningProxy(text) as first, RunningProxy(text) as second:
        apis = [Api(first.port), Api(second.port)]
        for round_ in range(10):
            created = apis[0]("POST", "/items", {"name": f"pen{round_}", "price": 1})
            location, tag = created.header("Location") or "", created.header("ETag") or ""
            assert _race(apis, location, tag) == [200, 412]
            assert apis[1]("GET", location).json()["price"] in (2, 3)
        for api in apis:
            api.client.close()


def test_text_postgresql_cannot_hold_is_a_422(url: str) -> None:
    with RunningProxy(RESOURCES.format(db=url)) as proxy:
        api = Api(proxy.port)
        refused = api("POST", "/items", {"name": "a\u0000b", "price": 1})
        assert refused.status == 422
        assert refused.header("Content-Type") == "application/problem+json"
        assert b"NUL" not in refused.body  # (the database's words stay in the log)
        assert api("POST", "/items", {"name": "ab", "price": 1}).status == 201
        api.client.close()


def test_timestamps_turned_on_stamp_the_existing_items(url: str) -> None:
    _seed(url)
    after = BEFORE.replace("required: [name]", "required: [name]\n    timestamps: true")
    items = _exported(url, after)["items"]
    assert all(item["created_at"] == item["updated_at"] for item in items)
    assert len({item["created_at"] for item in items}) == 1


def test_a_changed_on_delete_applies_to_the_existing_children(url: str) -> None:
    with RunningProxy(RESOURCES.format(db=url)) as proxy:
        api = Api(proxy.port)
        assert api("POST", "/events", {"title": "launch"}).status == 201
        assert api("POST", "/events/1/guests", {"email": "a@example.com"}).status == 201
        api.client.close()
    restricted = RESOURCES.replace("on_delete: cascade", "on_delete: restrict")
    with RunningProxy(restricted.format(db=url)) as proxy:
        api = Api(proxy.port)
        assert api("DELETE", "/events/1").status == 409
        assert api("GET", "/events/1/guests").json() == [
            {"id": 1, "event_id": 1, "email": "a@example.com"}
        ]
        api.client.close()


def test_a_url_that_names_no_database_is_refused_without_its_password() -> None:
    with pytest.raises(sqlite3.OperationalError) as refused:
        open_database("postgresql://quiver:secret@db:port/app", _resources(RESOURCES))
    assert "not a PostgreSQL URL" in str(refused.value)
    assert "secret" not in str(refused.value)
