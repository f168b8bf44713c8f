"""Parameters the call log's API cannot read are 4xx problems, never 500s, on
SQLite and PostgreSQL alike; an unknown team is 404 whatever the token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from quiver.calls import CallLog, Ingester
from quiver.calls.records import parse
from quiver.store import Store
from quiver.store.teams import create_team
from tests.admin.conftest import MakeClient
from tests.admin.problems import assert_problem
from tests.calls.synthetic import records

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


def test_unreadable_parameters_are_422_problems_on_postgres(
    pg_store_admin: tuple[Store, httpx.Client],
) -> None:
    store, client = pg_store_admin
    _with_calls(store)
    _all_problems(client)


def test_an_unknown_team_is_404_for_every_token(store: Store, make_client: MakeClient) -> None:
    create_team(store, "shop")
    unscoped, scoped = make_client("viewer"), make_client("viewer", team="shop")
    for client in (unscoped, scoped):
        for path in ("/calls", "/analytics/requests", "/analytics/top", "/analytics/ai/spend"):
            assert_problem(client.get(path, params={"team": "nosuch"}), 404, "team-not-found")
    assert unscoped.get("/calls", params={"team": "shop"}).status_code == 200
