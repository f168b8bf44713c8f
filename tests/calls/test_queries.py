"""The call log's queries on each database: the same answers from raw rows and rollups."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from quiver.calls import Ingester, queries
from quiver.calls.queries import CallFilter, list_calls, series, top
from quiver.store import open_store
from tests.calls.synthetic import records, seen_by, write_spools

HOUR = 3_600_000


@pytest.mark.parametrize("raw_limit", [queries.RAW_LIMIT, 0])
def test_series_top_and_calls_agree_with_the_records(
    store_url: str, tmp_path: Path, raw_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "RAW_LIMIT", raw_limit)
    store = open_store(store_url)
    now = int(time.time() * 1000)
    start = now - now % HOUR - 3 * HOUR
    items = records(3000, start, 3 * HOUR)
    write_spools(tmp_path / "calls", items, per_file=1000)
    Ingester(store.engine, tmp_path / "calls").run_once()
    with store.engine.connect() as connection:
        for bucket_ms in (60_000, HOUR):
            found = series(connection, start, start + 3 * HOUR, bucket_ms, "status_class", None)
            assert found.source == ("calls" if raw_limit else "rollups")
            totals: Counter[str | None] = Counter()
            for point in found.points:
                totals[point.key] += point.totals.requests
            assert totals == Counter(f"{i['status'] // 100}xx" for i in items)
        ranked = top(connection, start, start + 3 * HOUR, "consumers", 10, "shop")
        shop = Counter(i["consumer"] for i in items if seen_by(i, "shop"))
        assert {name: t.requests for name, t in ranked} == shop
        page = list_calls(connection, CallFilter(status=(500, 599), team="default"), 1000, None)
        assert sorted(c["request_id"] for c in page) == sorted(
            i["request_id"] for i in items if i["status"] >= 500 and seen_by(i, "default")
        )
    store.close()
