"""Error causes, on SQLite and PostgreSQL: a call that ended in an error is summed
under its status and who answered it, by the ingester for new calls and by
migration 0013 for the calls already in the log, both to the same sums."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Table, select

from quiver.calls import CallLog, Ingester
from quiver.calls.causes import answered_by
from quiver.calls.queries import top_causes
from quiver.calls.records import parse
from quiver.store import open_store
from quiver.store.calltables import call_cause_rollups, call_cause_rollups_hourly
from quiver.store.engine import WRITE
from quiver.store.migrate import _alembic_config
from tests.calls.synthetic import records

HOUR = 3_600_000

#: status, route (None: no route matched), answered_by as recorded, and who answered
CASES: list[tuple[int, str | None, str | None, str]] = [
    (401, "orders", "key-auth", "key-auth"),
    (429, "orders", "rate-limit", "rate-limit"),
    (503, "orders", "rate-limit", "rate-limit"),  # a plugin's 5xx is the plugin's
    (502, "orders", None, "gateway"),
    (503, "orders", None, "gateway"),
    (504, "orders", None, "gateway"),
    (404, None, None, "gateway"),  # no route matched
    (400, None, None, "gateway"),  # refused before routing
    (499, "orders", None, "client"),
    (500, "orders", None, "target"),
    (404, "orders", None, "target"),
    (422, "orders", None, "target"),
]


@pytest.mark.parametrize(("status", "route", "plugin", "who"), CASES)
def test_who_answered_a_call_that_ended_in_an_error(
    status: int, route: str | None, plugin: str | None, who: str
) -> None:
    assert answered_by(status, route, plugin) == who


def _mix(start_ms: int) -> list[dict[str, Any]]:
    """Calls over two hours: every case of CASES several times (a different number
    of times each), and successes, which are no cause."""
    items = records(400, start_ms, 2 * HOUR, seed=11)
    again = []
    for index, item in enumerate(items):
        case = CASES[index % 20] if index % 20 < len(CASES) else None
        if case is None:
            item["status"] = 200
            continue
        item["status"], item["route"], item["answered_by"], _ = case
        if case[0] == 401:  # key-auth refuses more than the rest
            again.append({**item, "request_id": item["request_id"] + "-again"})
    return items + again


def _expected(items: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    return Counter(
        (item["status"], answered_by(item["status"], item["route"], item["answered_by"]))
        for item in items
        if item["status"] >= 400
    )


def _rows(connection: Connection, table: Table) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in connection.execute(select(table))}


def test_the_ingester_and_migration_0013_sum_the_same_causes(store_url: str) -> None:
    start = int(time.time() * 1000) // HOUR * HOUR - 3 * HOUR
    items = _mix(start)
    store = open_store(store_url)
    try:
        Ingester(store.engine, Path("/nonexistent"), CallLog()).insert(
            [parse(json.dumps(item).encode()) for item in items]
        )
        with store.engine.connect() as connection:
            found = top_causes(connection, start, start + 3 * HOUR, 100, None)
            hourly = top_causes(connection, start - 12 * HOUR, start + 3 * HOUR, 100, None)
            ingested = {
                table.name: _rows(connection, table)
                for table in (call_cause_rollups, call_cause_rollups_hourly)
            }
        expected = _expected(items)
        for causes in (found, hourly):  # minute rollups, then hourly ones (over 6 hours)
            assert {(c.status, c.answered_by): c.totals.requests for c in causes} == expected
            counts = [c.totals.requests for c in causes]
            assert counts == sorted(counts, reverse=True)
        first = found[0]
        assert (first.status, first.answered_by) == (401, "key-auth")
        failed = [i for i in items if (i["status"], i["answered_by"]) == (503, None)]
        gateway_503 = next(c for c in found if (c.status, c.answered_by) == (503, "gateway"))
        assert gateway_503.totals.errors == len(failed)
        assert gateway_503.totals.bytes_out == sum(i["bytes_out"] for i in failed)
        config = _alembic_config()
        with store.engine.execution_options(**{WRITE: True}).begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0012")
            command.upgrade(config, "0013")  # (fills the sums from the calls)
        with store.engine.connect() as connection:
            migrated = {
                table.name: _rows(connection, table)
                for table in (call_cause_rollups, call_cause_rollups_hourly)
            }
        assert migrated == ingested
    finally:
        store.close()


def test_a_team_sees_the_causes_of_its_own_calls(store_url: str) -> None:
    start = int(time.time() * 1000) // HOUR * HOUR - 3 * HOUR
    items = _mix(start)
    for index, item in enumerate(items):
        if item["route"] is not None and index % 2:
            item["route"] = "shop.cart"
        if item["consumer"] == "shop.carol":
            item["consumer"] = None
    store = open_store(store_url)
    try:
        Ingester(store.engine, Path("/nonexistent"), CallLog()).insert(
            [parse(json.dumps(item).encode()) for item in items]
        )
        with store.engine.connect() as connection:
            shop = top_causes(connection, start, start + 3 * HOUR, 100, "shop")
            first_hour = top_causes(connection, start, start + HOUR, 100, None)
        mine = [item for item in items if item["route"] == "shop.cart"]
        assert {(c.status, c.answered_by): c.totals.requests for c in shop} == _expected(mine)
        early = [item for item in items if item["time"] < _iso(start + HOUR)]
        assert {(c.status, c.answered_by): c.totals.requests for c in first_hour} == _expected(
            early
        )
    finally:
        store.close()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
