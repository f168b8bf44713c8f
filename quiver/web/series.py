"""The analytics API's time series (``GET /analytics/requests``, and the AI spend's
``GET /analytics/ai/spend``) as chart series.

The API answers only the buckets that saw calls.  A chart needs every bucket of
the range: one without calls had no requests, errors or bytes (0), but has no
latency either, so its percentiles are missing (a gap in the line, not a drop to
0 ms).  See docs/observability.md, "The analytics API".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from quiver.web.charts import Series, Unit

#: each field of a series point: its name in a legend and its unit
FIELDS: dict[str, tuple[str, Unit]] = {
    "requests": ("requests", "count"),
    "errors": ("errors", "count"),
    "error_rate": ("error rate", "percent"),
    "bytes_in": ("bytes in", "bytes"),
    "bytes_out": ("bytes out", "bytes"),
    "p50_ms": ("p50", "ms"),
    "p95_ms": ("p95", "ms"),
    "p99_ms": ("p99", "ms"),
    "calls": ("AI calls", "count"),
    "total_tokens": ("tokens", "count"),
    "cost": ("cost", "usd"),
}
#: fields whose value in a bucket without calls is 0 (the others are missing)
COUNTED = frozenset(
    {"requests", "errors", "bytes_in", "bytes_out", "calls", "total_tokens", "cost"}
)
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def analytics_series(
    answer: Mapping[str, Any], fields: Sequence[str] = ("p50_ms", "p95_ms", "p99_ms")
) -> list[Series]:
    """One series per field (named ``p50``, ``p95``...), or with ``by``, one per
    ``by`` value and field (named by the value, followed by the field's name when
    there are several), each with a point for every bucket of the range."""
    unknown = [field for field in fields if field not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    step = BUCKET_SECONDS[answer["bucket"]]
    start, end = _seconds(answer["from"]), _seconds(answer["to"])
    by_key: dict[str | None, dict[float, Mapping[str, Any]]] = {}
    for point in answer.get("data") or []:
        by_key.setdefault(point.get("key"), {})[_seconds(point["time"])] = point
    first = start - start % step
    times = sorted({*(float(t) for t in range(int(first), int(end), step)), *_all(by_key)})
    if answer.get("by") is None:
        by_key.setdefault(None, {})
    made = []
    for key, points in by_key.items():
        for field in fields:
            label = FIELDS[field][0]
            name = label if key is None else _named(key, label, len(fields))
            empty = 0.0 if field in COUNTED else None
            made.append(
                Series(name, tuple((t, _value(points.get(t), field, empty)) for t in times))
            )
    return made


def _named(key: str, label: str, fields: int) -> str:
    # (one field per value: the value alone names the line)
    return key if fields == 1 else f"{key} {label}"


def unit_of(field: str) -> Unit:
    return FIELDS[field][1]


def _value(point: Mapping[str, Any] | None, field: str, empty: float | None) -> float | None:
    if point is None:
        return empty
    value = point.get(field)
    return None if value is None else float(value)


def _all(by_key: Mapping[str | None, Mapping[float, Any]]) -> set[float]:
    return {moment for points in by_key.values() for moment in points}


def _seconds(moment: str | datetime) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
