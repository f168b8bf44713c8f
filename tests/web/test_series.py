"""The analytics API's time series as chart series: every bucket of the range, with
counts at 0 and latencies missing where no call was made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from quiver.web.charts import line_chart
from quiver.web.series import analytics_series, unit_of

T0 = datetime(2026, 12, 6, 21, 0, tzinfo=UTC).timestamp()


def point(minute: int, requests: int, p50: float | None, key: str | None = None) -> dict[str, Any]:
    return {
        "time": f"2026-12-06T21:{minute:02d}:00Z",
        "key": key,
        "requests": requests,
        "errors": 1,
        "error_rate": 1 / requests,
        "bytes_in": 10,
        "bytes_out": 20,
        "p50_ms": p50,
        "p95_ms": None if p50 is None else p50 * 2,
        "p99_ms": None if p50 is None else p50 * 3,
    }


def answer(data: list[dict[str, Any]], by: str | None = None) -> dict[str, Any]:
    # (as GET /analytics/requests answers it, here over four minutes)
    return {
        "source": "calls",
        "bucket": "minute",
        "by": by,
        "from": "2026-12-06T21:00:00Z",
        "to": "2026-12-06T21:04:00Z",
        "data": data,
    }


def test_percentiles_have_gaps_where_no_call_was_made() -> None:
    p50, p95, p99 = analytics_series(answer([point(0, 4, 10.0), point(2, 2, 12.0)]))
    assert (p50.name, p95.name, p99.name) == ("p50", "p95", "p99")
    assert p50.points == ((T0, 10.0), (T0 + 60, None), (T0 + 120, 12.0), (T0 + 180, None))
    assert p99.points[2] == (T0 + 120, 36.0)
    assert unit_of("p95_ms") == "ms"


def test_counts_are_zero_where_no_call_was_made() -> None:
    [requests, errors] = analytics_series(
        answer([point(1, 4, 10.0)]), fields=("requests", "errors")
    )
    assert [value for _, value in requests.points] == [0.0, 4.0, 0.0, 0.0]
    assert [value for _, value in errors.points] == [0.0, 1.0, 0.0, 0.0]
    assert unit_of("requests") == "count" and unit_of("error_rate") == "percent"


def test_a_series_per_by_value() -> None:
    data = [point(0, 4, 10.0, "orders"), point(0, 1, 5.0, "open"), point(3, 2, 8.0, "orders")]
    split = analytics_series(answer(data, by="route"), fields=("requests",))
    assert [(s.name, [v for _, v in s.points]) for s in split] == [
        ("orders", [4.0, 0.0, 0.0, 2.0]),
        ("open", [1.0, 0.0, 0.0, 0.0]),
    ]
    both = analytics_series(answer(data, by="route"), fields=("requests", "p95_ms"))
    assert [s.name for s in both] == ["orders requests", "orders p95", "open requests", "open p95"]


def test_an_empty_range_is_a_chart_without_data() -> None:
    series = analytics_series(answer([]))
    assert [s.name for s in series] == ["p50", "p95", "p99"]
    assert all(value is None for s in series for _, value in s.points)
    assert "No data" in line_chart(series, title="Latency", unit="ms")
    assert analytics_series(answer([], by="route")) == []


def test_the_series_draw_as_a_chart() -> None:
    series = analytics_series(answer([point(0, 4, 10.0), point(1, 2, 1500.0)]))
    chart = line_chart(series, title="Latency", unit=unit_of("p99_ms"))
    assert "p99: from 30 ms to 4.5 s, last 4.5 s, 2 missing." in chart


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown field 'p42_ms'"):
        analytics_series(answer([]), fields=("p42_ms",))
