"""Resources declared in the config store (store mode): kept as written, served by a
node, and still there after a new revision changes other routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.config import validate
from quiver.store import open_store
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
