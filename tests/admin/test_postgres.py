"""The admin API over a PostgreSQL store (a schema of its own per test)."""

from __future__ import annotations

import httpx
import pytest

from quiver.store import Store
from tests.admin.problems import assert_problem
from tests.admin.races import concurrent_replaces

TARGET = {"name": "orders", "url": "http://127.0.0.1:9001"}


@pytest.fixture
def pg_admin(pg_store_admin: tuple[Store, httpx.Client]) -> httpx.Client:
    return pg_store_admin[1]


def test_entities_revisions_and_tokens_on_postgres(pg_admin: httpx.Client) -> None:
    created = pg_admin.post("/targets", json=TARGET)
    assert created.status_code == 201, created.text
    assert pg_admin.get("/targets/orders").json() == TARGET
    assert_problem(pg_admin.post("/targets", json=TARGET), 409, "already-exists")
    body = assert_problem(
        pg_admin.post("/routes", json={"name": "r", "paths": ["/"], "target": "x"}),
        422,
        "invalid-config",
    )
    assert body["errors"][0]["pointer"] == "/target"
    assert [item["number"] for item in pg_admin.get("/revisions").json()["data"]] == [1]

    assert pg_admin.post("/teams", json={"name": "blue"}).status_code == 201
    token = pg_admin.post(
        "/tokens", json={"name": "blue-bot", "role": "editor", "team": "blue"}
    ).json()["token"]
    blue = {"Authorization": f"Bearer {token}"}
    assert pg_admin.post("/targets", json=TARGET, headers=blue).status_code == 201
    assert_problem(
        pg_admin.get("/targets", params={"team": "default"}, headers=blue), 404, "team-not-found"
    )
    pg_admin.delete("/targets/orders", params={"team": "blue"})
    assert pg_admin.delete("/teams/blue").status_code == 204
    assert_problem(
        pg_admin.get("/targets", headers=blue), 401, "unauthorized"
    )  # went with its team


def test_concurrent_puts_with_the_same_etag_on_postgres(pg_admin: httpx.Client) -> None:
    assert concurrent_replaces(pg_admin) == [200, 412]
