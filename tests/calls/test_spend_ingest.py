"""Spend rows from spools, on SQLite and PostgreSQL: every call to a model once, in
the same transaction as its call row, with its names as ids and exact rollups."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from quiver.calls import CallLog, Ingester
from quiver.calls.spend_queries import spend_of_call, spend_series, spend_top
from quiver.store import open_store
from quiver.store.spendtables import NANO, ai_spend, ai_spend_rollups_hourly
from tests.calls.synthetic import records, with_spend, write_spools

HOUR = 3_600_000


def test_spend_rows_and_rollups_on_each_database(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    now = int(time.time() * 1000)
    start = now - now % HOUR - HOUR
    items = with_spend(records(1000, start, HOUR))
    write_spools(tmp_path / "calls", items, per_file=300)
    assert Ingester(store.engine, tmp_path / "calls", CallLog(batch_rows=250)).run_once() == 1000
    spent = [item for item in items if "ai" in item]
    tokens = sum(i["ai"]["prompt_tokens"] + i["ai"]["completion_tokens"] for i in spent)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ai_spend)).scalar() == len(spent)
        hourly = connection.execute(select(func.sum(ai_spend_rollups_hourly.c.calls))).scalar()
        assert hourly == len(spent)
        _, _, points = spend_series(connection, start, start + HOUR, HOUR, None, None)
        assert [p.spent.calls for p in points] == [len(spent)]
        assert points[0].spent.prompt_tokens + points[0].spent.completion_tokens == tokens
        cost = sum(round(i["ai"]["cost"] * NANO) for i in spent)
        assert points[0].spent.cost_nusd == cost
        top = spend_top(connection, start, start + HOUR, "providers", "calls", 5, None)
        assert {name for name, _ in top} == {"openai", "anthropic"}
        detail = spend_of_call(connection, spent[0]["request_id"])
        assert detail is not None and detail["deployment"] == spent[0]["ai"]["deployment"]
    store.close()
