"""Reading AI spend: tokens and cost over time and top lists, for the admin API.

Both read the spend rollups, whose sums are exact: per-minute rows for minute
buckets, hourly rows for hour and day buckets and for top lists over more than six
hours (the range is then widened to whole hours, as the call analytics do).  A
team (``team`` not None) sees only its own spend: that of its routes and of its
consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Table, func, literal, select

from quiver.calls.queries import _lookup, named, team_scope, whole_buckets
from quiver.store.calltables import CONSUMER
from quiver.store.spendtables import (
    NANO,
    SPEND_SUMS,
    ai_spend,
    ai_spend_rollups,
    ai_spend_rollups_hourly,
)

SpendBy = Literal["consumer", "team", "model", "provider", "route"]
SpendDimension = Literal["consumers", "teams", "models", "providers", "routes"]
Order = Literal["cost", "tokens", "calls"]
_HOURLY_FROM_MS = 6 * 3_600_000


@dataclass
class Spent:
    """The sums of one group of AI calls."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nusd: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": self.cost_nusd / NANO,
        }


@dataclass(frozen=True)
class SpendPoint:
    time_ms: int
    key: str | None
    spent: Spent


def _table(bucket_ms: int) -> tuple[Table, str, int]:
    if bucket_ms % 3_600_000 == 0:
        return ai_spend_rollups_hourly, "hour", 3_600_000
    return ai_spend_rollups, "minute", 60_000


def _sums(table: Table) -> list[ColumnElement[Any]]:
    return [func.sum(table.c[name]) for name in SPEND_SUMS]


def _spent(values: Any) -> Spent:
    return Spent(*(int(value or 0) for value in values))


def spend_series(
    connection: Connection,
    start_ms: int,
    end_ms: int,
    bucket_ms: int,
    by: SpendBy | None,
    team: str | None,
    consumer: str | None = None,
) -> tuple[int, int, list[SpendPoint]]:
    """Sums per bucket (and per ``by`` value) of the AI calls in [start, end) (of
    ``consumer`` alone when it is given): the range as widened to whole buckets (on
    the UTC calendar's boundaries, see ``whole_buckets``), and the points."""
    table, period, unit = _table(bucket_ms)
    start_ms, end_ms = whole_buckets(start_ms, end_ms, bucket_ms)
    first = start_ms // unit
    slot = (table.c[period] - first) // (bucket_ms // unit)
    key = table.c[f"{by}_id"] if by is not None else literal(0)
    query = (
        select(slot, key, *_sums(table))
        .where(
            table.c[period] >= first,
            table.c[period] < end_ms // unit,
            *team_scope(table, team),
            *named(table.c.consumer_id, CONSUMER, consumer),
        )
        .group_by(slot, key)
    )
    rows = connection.execute(query).all()
    names = _lookup(connection, {row[1] for row in rows}) if by is not None else {}
    points = [
        SpendPoint(
            start_ms + row[0] * bucket_ms, names.get(row[1]) if by else None, _spent(row[2:])
        )
        for row in rows
    ]
    points.sort(key=lambda point: (point.time_ms, point.key or ""))
    return start_ms, end_ms, points


def spend_top(
    connection: Connection,
    start_ms: int,
    end_ms: int,
    dimension: SpendDimension,
    order: Order,
    n: int,
    team: str | None,
) -> list[tuple[str | None, Spent]]:
    """The ``n`` consumers, teams, models, providers or routes that spent the most."""
    table, period, unit = _table(3_600_000 if end_ms - start_ms > _HOURLY_FROM_MS else 60_000)
    column = table.c[f"{dimension[:-1]}_id"]
    if order == "cost":
        ranking = func.sum(table.c.cost_nusd)
    elif order == "tokens":
        ranking = func.sum(table.c.prompt_tokens + table.c.completion_tokens)
    else:
        ranking = func.sum(table.c.calls)
    query = (
        select(column, *_sums(table))
        .where(
            table.c[period] >= start_ms // unit,
            table.c[period] < -(-end_ms // unit),
            *team_scope(table, team),
        )
        .group_by(column)
        .order_by(ranking.desc(), column)
        .limit(n)
    )
    rows = connection.execute(query).all()
    names = _lookup(connection, {row[0] for row in rows})
    return [(names.get(row[0]), _spent(row[1:])) for row in rows]


def spend_of_call(connection: Connection, request_id: str) -> dict[str, Any] | None:
    """What the call ``request_id`` spent (its last spend row), with names."""
    row = connection.execute(
        select(ai_spend)
        .where(ai_spend.c.request_id == request_id)
        .order_by(ai_spend.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    data = dict(row._mapping)
    names = _lookup(
        connection,
        {data[f"{kind}_id"] for kind in ("model", "provider", "deployment", "team")},
    )
    spent = Spent(1, data["prompt_tokens"], data["completion_tokens"], data["cost_nusd"])
    document = {
        kind: names.get(data[f"{kind}_id"]) for kind in ("model", "provider", "deployment", "team")
    }
    document.update(spent.document())
    del document["calls"]
    document["ttft_ms"] = data["ttft_us"] / 1000 if data["ttft_us"] is not None else None
    return document
