"""AI spend read through the admin API: the tokens and cost of the calls ingested
are exactly what the series, the top lists and a call's detail report."""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from quiver.calls import CallLog, Ingester
from quiver.calls.retention import enforce
from quiver.store import Store
from quiver.store.spendtables import ai_spend, ai_spend_rollups
from quiver.store.teams import create_team
from tests.admin.conftest import MakeClient
from tests.calls.synthetic import records, seen_by, with_spend, write_spools

HOUR = 3_600_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@pytest.fixture
def spent(store: Store, tmp_path: Path) -> tuple[list[dict[str, Any]], int, int]:
    now = int(time.time() * 1000)
    start = now - now % HOUR - 2 * HOUR
    items = with_spend(records(4000, start, 2 * HOUR))
    write_spools(tmp_path / "calls", items, per_file=1500)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == 4000
    return items, start, start + 2 * HOUR


def _sums(items: list[dict[str, Any]], key: str) -> dict[str | None, dict[str, float]]:
    sums: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for item in items:
        ai = item.get("ai")
        if ai is None:
            continue
        into = sums[item["consumer"] if key == "consumer" else ai.get(key)]
        into["calls"] += 1
        into["prompt_tokens"] += ai["prompt_tokens"]
        into["completion_tokens"] += ai["completion_tokens"]
        into["cost"] += ai["cost"]
    return sums


@pytest.mark.parametrize("by", ["model", "team", "consumer", "provider"])
def test_the_spend_series_reports_exact_tokens_and_cost(
    admin: httpx.Client, spent: tuple[list[dict[str, Any]], int, int], by: str
) -> None:
    items, start, end = spent
    answer = admin.get(
        "/analytics/ai/spend",
        params={"from": _iso(start), "to": _iso(end), "bucket": "day", "by": by},
    )
    assert answer.status_code == 200, answer.text
    got: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for point in answer.json()["data"]:
        for name in ("calls", "prompt_tokens", "completion_tokens", "cost"):
            got[point["key"]][name] += point[name]
    expected = _sums(items, by)
    assert set(got) == set(expected)
    for key, sums in expected.items():
        assert got[key]["calls"] == sums["calls"]
        assert got[key]["prompt_tokens"] == sums["prompt_tokens"]
        assert got[key]["completion_tokens"] == sums["completion_tokens"]
        assert got[key]["cost"] == pytest.approx(sums["cost"], abs=1e-6)


@pytest.mark.parametrize("consumer", ["alice", "shop.carol"])
def test_the_spend_of_one_consumer_is_its_own(
    admin: httpx.Client, spent: tuple[list[dict[str, Any]], int, int], consumer: str
) -> None:
    items, start, end = spent
    answer = admin.get(
        "/analytics/ai/spend",
        params={"from": _iso(start), "to": _iso(end), "bucket": "hour", "consumer": consumer},
    )
    assert answer.status_code == 200, answer.text
    expected = _sums(items, "consumer")[consumer]
    points = answer.json()["data"]
    assert sum(point["calls"] for point in points) == expected["calls"] > 0
    assert sum(point["cost"] for point in points) == pytest.approx(expected["cost"], abs=1e-6)


def test_minute_buckets_add_up_to_the_total(
    admin: httpx.Client, spent: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, _ = spent
    end = start + HOUR
    answer = admin.get(
        "/analytics/ai/spend", params={"from": _iso(start), "to": _iso(end), "bucket": "minute"}
    ).json()
    assert answer["by"] is None and len(answer["data"]) <= 60
    inside = [i for i in items if "ai" in i and _ms(i["time"]) < end]
    assert sum(p["calls"] for p in answer["data"]) == len(inside)
    assert sum(p["total_tokens"] for p in answer["data"]) == sum(
        i["ai"]["prompt_tokens"] + i["ai"]["completion_tokens"] for i in inside
    )


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_top_models_by_cost_and_a_calls_detail(
    admin: httpx.Client, spent: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = spent
    top = admin.get(
        "/analytics/ai/top",
        params={"from": _iso(start), "to": _iso(end), "dimension": "models", "order": "cost"},
    ).json()
    expected = _sums(items, "model")
    ranked = sorted(expected, key=lambda name: -expected[name]["cost"])
    assert [row["name"] for row in top["data"]] == ranked
    call = next(i for i in items if "ai" in i and "team" in i["ai"])
    detail = admin.get(f"/calls/{call['request_id']}").json()
    assert detail["ai"]["model"] == call["ai"]["model"]
    assert detail["ai"]["team"] == call["ai"]["team"]
    assert detail["ai"]["total_tokens"] == (
        call["ai"]["prompt_tokens"] + call["ai"]["completion_tokens"]
    )
    assert detail["ai"]["ttft_ms"] == 12.5
    plain = next(i for i in items if "ai" not in i)
    assert admin.get(f"/calls/{plain['request_id']}").json()["ai"] is None


def test_csv_and_team_scope(
    store: Store, make_client: MakeClient, spent: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = spent
    create_team(store, "shop")
    shop = make_client("viewer", team="shop")
    answer = shop.get(
        "/analytics/ai/spend",
        params={"from": _iso(start), "to": _iso(end), "bucket": "day", "format": "csv"},
    )
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    mine = [i for i in items if "ai" in i and seen_by(i, "shop")]
    assert sum(int(row["calls"]) for row in rows) == len(mine)


def test_spend_rows_follow_the_call_logs_retention(store: Store, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    old = with_spend(records(200, now - 10 * 86_400_000, HOUR, seed=1))
    new = with_spend(records(200, now - HOUR, HOUR, seed=2))
    write_spools(tmp_path / "calls", old + new, per_file=400)
    Ingester(store.engine, tmp_path / "calls").run_once()
    enforce(store.engine, CallLog(retention=86400, max_rows=50), now)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ai_spend)).scalar() == 50
        # the rollups keep every sum within their own retention
        calls = connection.execute(select(func.sum(ai_spend_rollups.c.calls))).scalar()
        assert calls == 200
