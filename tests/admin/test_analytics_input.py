"""Parameters the call log's API cannot read are 4xx problems, never 500s, on
SQLite and PostgreSQL alike; an unknown team is 404 whatever the token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quiver.admin import create_app
from quiver.calls import CallLog, Ingester
from quiver.calls.records import parse
from quiver.store import Store, open_store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.admin.conftest import MakeClient
from tests.admin.problems import assert_problem
from tests.admin.server import serving
from tests.calls.synthetic import records
from tests.store.conftest import postgres_schema_url
from tests.support.catalog import built_in

#: a NUL character in each parameter that names something, and in a call's id
NUL = [
    ("/calls", {"route": "\x00x"}),
    ("/calls", {"consumer": "\x00"}),
    ("/calls", {"request_id": "\x00"}),
    ("/calls", {"team": "x\x00"}),
    ("/calls/%00abc", {}),
    ("/analytics/requests", {"consumer": "\x00"}),
    ("/analytics/top", {"team": "\x00"}),
    ("/analytics/ai/spend", {"team": "\x00"}),
    ("/analytics/ai/top", {"team": "\x00"}),
]
#: times whose buckets would leave the calendar
OUT_OF_RANGE = [
    {"from": "9999-12-31T23:58:00Z", "to": "9999-12-31T23:59:59.999999Z", "bucket": "minute"},
    {"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02T00:00:00Z", "bucket": "hour"},
    {"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T10:00:00Z", "bucket": "day"},
]


def _with_calls(store: Store) -> None:
    now = int(time.time() * 1000)
    ingester = Ingester(store.engine, Path("/nonexistent"), CallLog(max_rows=1000))
    ingester.insert([parse(json.dumps(item).encode()) for item in records(20, now - 60_000, 1000)])


def _all_problems(client: httpx.Client) -> None:
    for path, params in NUL:
        assert_problem(client.get(path, params=params), 422, "invalid-request")
    for params in OUT_OF_RANGE:
        for path in ("/analytics/requests", "/analytics/ai/spend", "/calls"):
            body = assert_problem(client.get(path, params=params), 422, "invalid-request")
            assert "out of range" in body["detail"]
    assert_problem(client.get("/calls", params={"status": "abc"}), 422, "invalid-request")


def test_unreadable_parameters_are_422_problems_on_sqlite(
    store: Store, admin: httpx.Client
) -> None:
    _with_calls(store)
    _all_problems(admin)


@pytest.fixture
def pg_admin() -> Iterator[tuple[Store, httpx.Client]]:
    for url in postgres_schema_url():
        store = open_store(url, built_in())
        try:
            _, token = create_token(store, "root", "admin")
            with (
                serving(create_app(None, store, built_in())) as base,
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ) as client,
            ):
                yield store, client
        finally:
            store.close()


def test_unreadable_parameters_are_422_problems_on_postgres(
    pg_admin: tuple[Store, httpx.Client],
) -> None:
    store, client = pg_admin
    _with_calls(store)
    _all_problems(client)


def test_an_unknown_team_is_404_for_every_token(store: Store, make_client: MakeClient) -> None:
    create_team(store, "shop")
    unscoped, scoped = make_client("viewer"), make_client("viewer", team="shop")
    for client in (unscoped, scoped):
        for path in ("/calls", "/analytics/requests", "/analytics/top", "/analytics/ai/spend"):
            assert_problem(client.get(path, params={"team": "nosuch"}), 404, "team-not-found")
    assert unscoped.get("/calls", params={"team": "shop"}).status_code == 200
