"""The call log read through the admin API: the mix ingested is the mix reported."""

from __future__ import annotations

import csv
import io
import math
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.calls import Ingester, queries
from quiver.calls.causes import answered_by
from quiver.calls.records import bucket
from quiver.store import Store
from quiver.store.calltables import LATENCY_BOUNDS_MS
from quiver.store.teams import create_team
from tests.admin.conftest import MakeClient
from tests.calls.synthetic import records, seen_by, write_spools

HOUR = 3_600_000
DAY = 24 * HOUR


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _two_hours_before_today() -> int:
    """The start of the two hours before today's UTC midnight: past, well inside the
    retention, and all in one UTC day, so that a day bucket holds each key once
    whatever the hour the tests run at."""
    now = int(time.time() * 1000)
    return now - now % DAY - 2 * HOUR


@pytest.fixture
def mix(store: Store, tmp_path: Path) -> tuple[list[dict[str, Any]], int, int]:
    start = _two_hours_before_today()
    items = records(10_000, start, 2 * HOUR)
    write_spools(tmp_path / "calls", items, per_file=2500)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == 10_000
    return items, start, start + 2 * HOUR


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@pytest.mark.parametrize("source", ["calls", "rollups"])
def test_the_series_reports_the_ingested_mix(
    admin: httpx.Client,
    mix: tuple[list[dict[str, Any]], int, int],
    source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items, start, end = mix
    if source == "rollups":
        monkeypatch.setattr(queries, "RAW_LIMIT", 0)
    answer = admin.get(
        "/analytics/requests",
        params={"from": _iso(start), "to": _iso(end), "bucket": "day", "by": "route"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == source
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        expected[item["route"]].append(item)
    got = {point["key"]: point for point in body["data"]}
    assert set(got) == set(expected)
    for route, group in expected.items():
        point = got[route]
        assert point["requests"] == len(group)
        assert point["errors"] == sum(item["status"] >= 500 for item in group)
        assert point["bytes_in"] == sum(item["bytes_in"] for item in group)
        assert point["bytes_out"] == sum(item["bytes_out"] for item in group)
        for name, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            exact = _nearest_rank(
                [round(item["latency_ms"] * 1000) / 1000 for item in group], fraction
            )
            if source == "calls":
                assert point[name] == exact
            else:
                index = min(bucket(round(exact * 1000)), len(LATENCY_BOUNDS_MS) - 1)
                assert point[name] == LATENCY_BOUNDS_MS[index]


@pytest.mark.parametrize("source", ["calls", "rollups"])
@pytest.mark.parametrize("consumer", ["bob", "shop.carol", "nobody"])
def test_the_series_of_one_consumer_counts_its_calls_alone(
    admin: httpx.Client,
    mix: tuple[list[dict[str, Any]], int, int],
    source: str,
    consumer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items, start, end = mix
    if source == "rollups":
        monkeypatch.setattr(queries, "RAW_LIMIT", 0)
    answer = admin.get(
        "/analytics/requests",
        params={"from": _iso(start), "to": _iso(end), "bucket": "hour", "consumer": consumer},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == source
    own = [item for item in items if item["consumer"] == consumer]
    assert sum(point["requests"] for point in body["data"]) == len(own)
    assert sum(point["errors"] for point in body["data"]) == sum(
        item["status"] >= 500 for item in own
    )


def test_status_classes_and_minutes_add_up(
    admin: httpx.Client, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = mix
    answer = admin.get(
        "/analytics/requests",
        params={"from": _iso(start), "to": _iso(end), "by": "status_class"},
    ).json()
    totals: dict[str, int] = defaultdict(int)
    for point in answer["data"]:
        totals[point["key"]] += point["requests"]
    expected: dict[str, int] = defaultdict(int)
    for item in items:
        expected[f"{item['status'] // 100}xx"] += 1
    assert totals == expected


def test_top_consumers_and_errors(
    admin: httpx.Client, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = mix
    top = admin.get(
        "/analytics/top", params={"dimension": "consumers", "from": _iso(start), "to": _iso(end)}
    ).json()
    counts: dict[str | None, int] = defaultdict(int)
    for item in items:
        counts[item["consumer"]] += 1
    assert {row["name"]: row["requests"] for row in top["data"]} == counts
    errors = admin.get(
        "/analytics/top",
        params={"dimension": "errors", "n": 1, "from": _iso(start), "to": _iso(end)},
    ).json()["data"]
    by_route: dict[str, int] = defaultdict(int)
    for item in items:
        by_route[item["route"]] += item["status"] >= 500
    assert errors[0]["errors"] == max(by_route.values())


def test_calls_page_newest_first_with_a_cursor(
    admin: httpx.Client, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, _, _ = mix
    wanted = sorted(
        (i for i in items if i["route"] == "orders" and 500 <= i["status"] < 600),
        key=lambda i: (i["time"], i["request_id"]),
        reverse=True,
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"route": "orders", "status": "5xx", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = admin.get("/calls", params=params).json()
        seen += [call["request_id"] for call in page["data"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(i["request_id"] for i in wanted)
    times = [c for c in seen]
    assert len(times) == len(set(times))
    one = admin.get(f"/calls/{wanted[0]['request_id']}").json()
    assert one["route"] == "orders" and one["status"] >= 500
    missing = admin.get("/calls/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_team_token_sees_only_its_team(
    store: Store, make_client: MakeClient, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = mix
    create_team(store, "shop")
    shop = make_client("viewer", team="shop")
    mine = [i for i in items if seen_by(i, "shop")]  # to its route, or by its consumer
    series = shop.get(
        "/analytics/requests",
        params={"from": _iso(start), "to": _iso(end), "bucket": "day", "by": "route"},
    ).json()
    per_route = {p["key"]: p["requests"] for p in series["data"]}
    assert per_route == Counter(i["route"] for i in mine)
    page = shop.get("/calls", params={"limit": 1000}).json()
    seen = {call["request_id"] for call in page["data"]}
    assert len(seen) == min(len(mine), 1000) and seen <= {i["request_id"] for i in mine}
    other = next(i for i in items if not seen_by(i, "shop"))
    assert shop.get(f"/calls/{other['request_id']}").status_code == 404
    assert shop.get("/calls", params={"team": "default"}).status_code == 404
    top = shop.get("/analytics/top", params={"from": _iso(start), "to": _iso(end)}).json()
    assert {row["name"]: row["requests"] for row in top["data"]} == Counter(
        i["route"] for i in mine
    )


def test_csv_of_the_series_and_the_calls(
    admin: httpx.Client, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, start, end = mix
    answer = admin.get(
        "/analytics/requests",
        params={"from": _iso(start), "to": _iso(end), "bucket": "hour", "format": "csv"},
    )
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sum(int(row["requests"]) for row in rows) == len(items)
    listed = admin.get("/calls", params={"limit": 10}, headers={"Accept": "text/csv"})
    assert listed.headers["content-type"].startswith("text/csv")
    calls = list(csv.DictReader(io.StringIO(listed.text)))
    assert len(calls) == 10 and set(calls[0]) >= {"request_id", "status", "latency_ms"}


def test_a_status_range_lists_the_calls_between_its_codes(
    admin: httpx.Client, mix: tuple[list[dict[str, Any]], int, int]
) -> None:
    items, _, _ = mix
    wanted = {i["request_id"] for i in items if i["route"] == "users" and i["status"] >= 400}
    seen: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"route": "users", "status": "400-599", "limit": 1000}
    while True:
        page = admin.get("/calls", params=params).json()
        seen += page["data"]
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert sorted(call["request_id"] for call in seen) == sorted(wanted)
    assert {call["status"] for call in seen} == {404, 500, 503}


def test_bad_queries_are_problems(admin: httpx.Client, anonymous: httpx.Client) -> None:
    bad = ("6xx", "599-400", "400-", "400-600", "-404")
    malformed = ("abc", *bad)
    for params in (*({"status": status} for status in malformed), {"cursor": "garbage"}):
        answer = admin.get("/calls", params=params)
        assert answer.status_code == 422  # as every parameter that cannot be read
        assert answer.json()["type"] == "urn:quiver:problem:invalid-request"
    backwards = admin.get(
        "/analytics/requests", params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    assert backwards.status_code == 400
    day_of_minutes = admin.get(
        "/analytics/requests",
        params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "bucket": "minute"},
    )
    assert day_of_minutes.status_code == 400
    assert "at most 360 minutes" in day_of_minutes.json()["detail"]
    assert anonymous.get("/calls").status_code == 401


def _at(text: str, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` calls at the time ``text`` (ISO 8601, UTC)."""
    moment = int(datetime.fromisoformat(text).timestamp() * 1000)
    return records(count, moment, 1, seed=seed)


@pytest.mark.parametrize("source", ["calls", "rollups"])
@pytest.mark.parametrize(
    ("bucket", "start", "end", "expected"),
    [
        (
            "day",
            "2026-12-06T12:00:00+00:00",
            "2026-12-08T12:00:00+00:00",
            {
                "2026-12-06T00:00:00+00:00": 3,  # 03:10 (before `from`: the whole day) and 13:00
                "2026-12-07T00:00:00+00:00": 4,
                "2026-12-08T00:00:00+00:00": 2,
            },
        ),
        (
            "hour",
            "2026-12-07T08:30:00+00:00",
            "2026-12-07T10:15:00+00:00",
            {"2026-12-07T09:00:00+00:00": 4},
        ),
        (
            "minute",
            "2026-12-07T09:19:30+00:00",
            "2026-12-07T09:20:30+00:00",
            {"2026-12-07T09:20:00+00:00": 4},
        ),
    ],
)
def test_buckets_begin_on_the_utc_calendar_whatever_the_source(
    admin: httpx.Client,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    bucket: str,
    start: str,
    end: str,
    expected: dict[str, int],
) -> None:
    items = [
        *_at("2026-12-06T03:10:00+00:00", 1, 1),
        *_at("2026-12-06T13:00:00+00:00", 2, 2),
        *_at("2026-12-07T09:20:00+00:00", 4, 3),
        *_at("2026-12-08T11:00:00+00:00", 2, 4),
    ]
    for index, item in enumerate(items):
        item["request_id"] = f"cal-{index}"
    write_spools(tmp_path / "calls", items, per_file=100)
    # ingested on the last day of the calls: a later date would have retention take
    # the first ones
    ingested_on = datetime(2026, 12, 8, 12, tzinfo=UTC).timestamp()
    ingester = Ingester(store.engine, tmp_path / "calls", clock=lambda: ingested_on)
    assert ingester.run_once() == len(items)
    if source == "rollups":
        monkeypatch.setattr(queries, "RAW_LIMIT", 0)
    answer = admin.get("/analytics/requests", params={"from": start, "to": end, "bucket": bucket})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == source
    got = {datetime.fromisoformat(p["time"]).isoformat(): p["requests"] for p in body["data"]}
    assert got == expected
    unit = {"minute": 60, "hour": 3600, "day": 86400}[bucket]
    began = datetime.fromisoformat(start).timestamp()
    widened = datetime.fromtimestamp(began - began % unit, UTC)
    assert datetime.fromisoformat(body["from"]) == widened  # the first whole bucket


def _causes(items: list[dict[str, Any]]) -> Counter[str]:
    """``"STATUS WHO"`` of each call of ``items`` that ended in an error."""
    return Counter(
        f"{item['status']} {answered_by(item['status'], item['route'], item['answered_by'])}"
        for item in items
        if item["status"] >= 400
    )


@pytest.fixture
def refusals(store: Store, tmp_path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Two hours of calls, some refused by plugins, some failed upstream."""
    start = _two_hours_before_today()
    items = records(2000, start, 2 * HOUR, seed=5)
    for index, item in enumerate(items):
        if index % 7 == 0:
            item["status"], item["answered_by"] = 401, "key-auth"
        elif index % 11 == 0:
            item["status"], item["answered_by"] = 429, "rate-limit"
        elif index % 13 == 0:
            item["status"], item["route"], item["consumer"] = 404, None, None
    write_spools(tmp_path / "calls", items, per_file=500)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == len(items)
    return items, start, start + 2 * HOUR


@pytest.mark.parametrize("hours", [2, 12])  # per-minute rollups, then hourly ones
def test_top_error_causes_are_statuses_with_who_answered(
    admin: httpx.Client, refusals: tuple[list[dict[str, Any]], int, int], hours: int
) -> None:
    items, start, end = refusals
    answer = admin.get(
        "/analytics/top",
        params={"dimension": "causes", "n": 100, "from": _iso(end - hours * HOUR), "to": _iso(end)},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dimension"] == "causes"
    expected = _causes(items)
    assert {row["name"]: row["requests"] for row in body["data"]} == expected
    assert {"401 key-auth", "429 rate-limit", "404 gateway", "503 gateway", "500 target"} <= set(
        expected
    )
    counts = [row["requests"] for row in body["data"]]
    assert counts == sorted(counts, reverse=True)
    first = body["data"][0]
    assert (first["status"], first["answered_by"]) == (401, "key-auth")
    assert first["errors"] == 0 and first["error_rate"] == 0.0
    refused = [item for item in items if item["answered_by"] == "key-auth"]
    assert first["bytes_in"] == sum(item["bytes_in"] for item in refused)
    assert first["p50_ms"] is not None and first["p99_ms"] >= first["p50_ms"]
    failed = next(row for row in body["data"] if row["name"] == "503 gateway")
    assert failed["errors"] == failed["requests"]
    two = admin.get(
        "/analytics/top",
        params={"dimension": "causes", "n": 2, "from": _iso(start), "to": _iso(end)},
    ).json()["data"]
    assert [row["name"] for row in two] == [row["name"] for row in body["data"][:2]]


def test_top_error_causes_keep_to_the_range_and_the_team(
    store: Store,
    admin: httpx.Client,
    make_client: MakeClient,
    refusals: tuple[list[dict[str, Any]], int, int],
) -> None:
    items, start, _ = refusals
    first_hour = admin.get(
        "/analytics/top",
        params={"dimension": "causes", "n": 100, "from": _iso(start), "to": _iso(start + HOUR)},
    ).json()["data"]
    early = [
        i for i in items if datetime.fromisoformat(i["time"]).timestamp() < (start + HOUR) / 1000
    ]
    assert {row["name"]: row["requests"] for row in first_hour} == _causes(early)
    create_team(store, "shop")
    shop = make_client("viewer", team="shop")
    answer = shop.get(
        "/analytics/top", params={"dimension": "causes", "n": 100, "from": _iso(start)}
    ).json()["data"]
    mine = [item for item in items if seen_by(item, "shop")]
    assert {row["name"]: row["requests"] for row in answer} == _causes(mine)
    assert "404 gateway" not in {row["name"] for row in answer}  # no route, no consumer: no team's
    assert (
        shop.get("/analytics/top", params={"dimension": "causes", "team": "default"}).status_code
        == 404
    )


@pytest.mark.parametrize("dimension", ["routes", "consumers", "errors", "causes"])
def test_top_lists_answer_csv_when_asked(
    admin: httpx.Client, refusals: tuple[list[dict[str, Any]], int, int], dimension: str
) -> None:
    _, start, end = refusals
    params: dict[str, str | int] = {
        "dimension": dimension,
        "n": 100,
        "from": _iso(start),
        "to": _iso(end),
    }
    listed = admin.get("/analytics/top", params=params).json()["data"]
    for query, headers in (({**params, "format": "csv"}, {}), (params, {"Accept": "text/csv"})):
        answer = admin.get("/analytics/top", params=query, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [row["name"] for row in rows] == [row["name"] or "" for row in listed]
        assert [int(row["requests"]) for row in rows] == [row["requests"] for row in listed]
        if dimension == "causes":
            assert [int(row["status"]) for row in rows] == [row["status"] for row in listed]
            assert [row["answered_by"] for row in rows] == [row["answered_by"] for row in listed]
        else:
            assert "status" not in rows[0]
    json_anyway = admin.get(
        "/analytics/top", params={**params, "format": "json"}, headers={"Accept": "text/csv"}
    )
    assert json_anyway.json()["data"] == listed
