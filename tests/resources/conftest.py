"""A proxy serving the resources of the issue's example, on a fresh database per test:
a SQLite file, or (``any_resources_db``) each of SQLite and a PostgreSQL schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.conftest import postgres_schema_url
from tests.support.proxy import Client, Response, RunningProxy

RESOURCES = """
listen: 127.0.0.1:0
resources_db: {db}
resources:
  - name: items
    path: /items
    fields:
      name: {{type: string, minLength: 1, maxLength: 60}}
      price: {{type: number, minimum: 0}}
      tags: {{type: array, items: {{type: string}}}}
      status: {{type: string, enum: [draft, active, archived], default: draft}}
    required: [name, price]
    unique: [name]
    timestamps: true
    limit: {{default: 20, max: 100}}
  - name: events
    path: /events
    fields: {{title: {{type: string, minLength: 1}}}}
    required: [title]
  - name: guests          # served at /events/{{event_id}}/guests
    parent: {{resource: events, field: event_id, on_delete: cascade}}
    fields: {{email: {{type: string, format: email}}}}
    required: [email]
"""


class Api:
    """JSON requests to a running proxy on one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.client = Client(port)

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        fields = dict(headers or {})
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            fields.setdefault("Content-Type", content_type)
            fields["Content-Length"] = str(len(data))
        return self.client.request(method, path, fields, data)


def resources_config(db: Path) -> str:
    return RESOURCES.format(db=db)


@pytest.fixture
def resources_db(tmp_path: Path) -> str:
    # a directory that does not exist yet is made
    return str(tmp_path / "data" / "resources.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_resources_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh resources database on each of SQLite and PostgreSQL (a schema of its
    own, dropped after; skipped when PostgreSQL cannot be reached, failed on CI)."""
    if request.param == "sqlite":
        yield str(tmp_path / "data" / "resources.db")
    else:
        yield from postgres_schema_url()


@pytest.fixture
def proxy(resources_db: str) -> Iterator[RunningProxy]:
    with RunningProxy(RESOURCES.format(db=resources_db)) as running:
        yield running


@pytest.fixture
def api(proxy: RunningProxy) -> Iterator[Api]:
    client = Api(proxy.port)
    yield client
    client.client.close()


#: items with a note, before a migration changes their fields
BEFORE_MIGRATION = """
listen: 127.0.0.1:0
resources_db: {db}
resources:
  - name: items
    fields:
      name: {{type: string}}
      price: {{type: number}}
      note: {{type: string}}
    required: [name]
"""


def create_items(config: str, bodies: list[dict[str, Any]]) -> None:
    """Serves ``config`` for as long as it takes to create an item of each body."""
    with RunningProxy(config) as proxy:
        api = Api(proxy.port)
        for body in bodies:
            assert api("POST", "/items", body).status == 201
        api.client.close()
