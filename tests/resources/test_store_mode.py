"""Resources declared in the config store (store mode): kept as written, served by a
node, and still there after a new revision changes other routes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from quiver.config import validate
from quiver.config.models import Settings
from quiver.store import open_store
from quiver.storemode.source import compose
from quiver.storemode.urls import RESOURCES_SCHEMA
from tests.store.conftest import postgres_schema_url, postgres_url
from tests.store_mode.helpers import start_node
from tests.support.catalog import built_in

pytestmark = pytest.mark.timeout(120)


def declaration(database: Path, tag: str) -> dict[str, Any]:
    return {
        "resources_db": str(database),
        "resources": [
            {
                "name": "events",
                "path": "/events",
                "fields": {"title": {"type": "string", "minLength": 1}},
                "required": ["title"],
            },
            {
                "name": "guests",
                "parent": {"resource": "events", "field": "event_id", "on_delete": "cascade"},
                "fields": {"email": {"type": "string", "format": "email"}},
                "required": ["email"],
            },
        ],
        "targets": [{"name": "demo", "type": "demo"}],
        "routes": [
            {
                "name": "demo",
                "paths": ["/hello"],
                "target": "demo",
                "plugins": {"response-transformer": {"add": {"headers": {"X-Revision": tag}}}},
            }
        ],
    }


def test_a_stored_declaration_reads_back_as_written_and_compiles(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        written = declaration(tmp_path / "resources.db", "a")
        assert store.apply(written, author="test") is not None
        assert store.current() == written
        assert store.apply(store.current(), author="test") is None  # (nothing changed)
        _, effective = store.effective()
        routes = [route.name for route in validate(effective, built_in()).routes]
        assert routes == ["demo", "resource-events", "resource-guests", "resource-openapi"]
    finally:
        store.close()


def test_a_store_mode_node_serves_the_resources_across_revisions(tmp_path: Path) -> None:
    database = tmp_path / "resources.db"
    store = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        store.apply(declaration(database, "a"), author="test")
    finally:
        store.close()
    with start_node(tmp_path, admin=False) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        base = f"http://127.0.0.1:{node.port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            created = client.post("/events", json={"title": "launch"})
            assert created.status_code == 201, created.text
            guest = client.post(f"{created.headers['Location']}/guests", json={"email": "a@b.io"})
            assert guest.status_code == 201, guest.text

            store = open_store(str(tmp_path / "quiver.db"), built_in())
            try:
                assert store.apply(declaration(database, "b"), author="test") is not None
            finally:
                store.close()
            node.wait_for(r"config reloaded from store revision 2\b")
            assert client.get("/hello").headers["X-Revision"] == "b"
            assert client.get("/events/1/guests").json() == [
                {"id": 1, "event_id": 1, "email": "a@b.io"}
            ]
        assert node.stop() == 0


def _without_database(name: str) -> dict[str, Any]:
    written = declaration(Path("unused"), "a")
    del written["resources_db"]
    written["resources"] = [
        {
            "name": name,
            "path": "/notes",
            "fields": {"text": {"type": "string"}, "tags": {"type": "array"}},
            "required": ["text"],
        }
    ]
    return written


def test_resources_are_kept_beside_the_store_unless_named(tmp_path: Path) -> None:
    sqlite = Settings(store=str(tmp_path / "quiver.db"))
    composed = compose(_without_database("notes"), sqlite, built_in())
    assert composed.resources_db == str(tmp_path / "resources.db")
    postgres = Settings(store="postgresql://u@db.example/q?options=-csearch_path%3Dother")
    composed = compose(_without_database("notes"), postgres, built_in())
    assert composed.resources_db == (
        f"postgresql://u@db.example/q?options=-csearch_path%3D{RESOURCES_SCHEMA}"
    )
    named = {**_without_database("notes"), "resources_db": "elsewhere.db"}
    assert compose(named, postgres, built_in()).resources_db == "elsewhere.db"


@pytest.fixture
def store_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def table() -> Iterator[str]:
    """A resource name of the test's own: the schema of resource tables is shared."""
    name = f"notes_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres_url(), autocommit=True) as connection:
        connection.execute(f'DROP TABLE IF EXISTS {RESOURCES_SCHEMA}."{name}"')
        record = f"{RESOURCES_SCHEMA}._quiver_resources"
        if connection.execute("SELECT to_regclass(%s)", (record,)).fetchone() != (None,):
            connection.execute(
                f"DELETE FROM {RESOURCES_SCHEMA}._quiver_resources WHERE name = %s", (name,)
            )


def test_a_postgresql_store_keeps_the_resources_in_a_schema_of_their_own(
    tmp_path: Path, store_url: str, table: str
) -> None:
    store = open_store(store_url, built_in())
    try:
        store.apply(_without_database(table), author="test")
    finally:
        store.close()
    with start_node(tmp_path, "--store", store_url, admin=False) as node:
        node.wait_listening()
        node.wait_for(r"serving store revision \d+")
        with httpx.Client(base_url=f"http://127.0.0.1:{node.port}", timeout=10) as client:
            created = client.post("/notes", json={"text": "hello", "tags": ["a"]})
            assert created.status_code == 201, created.text
            assert client.get(created.headers["Location"]).json() == {
                "id": 1,
                "text": "hello",
                "tags": ["a"],
            }
        assert node.stop() == 0
    with psycopg.connect(postgres_url()) as connection:
        rows = connection.execute(f'SELECT text FROM {RESOURCES_SCHEMA}."{table}"').fetchall()
    assert rows == [("hello",)]
    with psycopg.connect(store_url) as connection:  # (none among the store's tables)
        assert connection.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)
