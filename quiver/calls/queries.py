"""Reading the call log: time series, top lists and calls, for the admin API.

Series and top lists read raw call rows only when the range holds few of them,
and only when retention deleted none of its calls (``call_trims``)
(``RAW_LIMIT``, counted through the time index with a LIMIT, so the check costs
at most that many index entries): their percentiles are then exact.  Otherwise
they read the per-minute rollups, whose cost depends on the range's minutes and
dimensions, never on the number of calls; percentiles are then the upper bound of
the histogram bucket holding them.  Buckets of hours and days read the hourly
rollups, minute buckets the per-minute ones.  A series' buckets begin on the UTC
calendar's minutes, hours or days whichever source it reads, its range widened
to whole buckets; top lists read whole periods of the table they read (whole
hours over more than 6 hours).  Top error causes read the cause rollups (the calls
that ended in an error, by status and who answered them) in the same way.

A team (``team`` not None) sees only its own calls: those of its routes, and those
its consumers (apps) made to any team's routes.  A series may be narrowed to one
consumer's calls (``consumer``, named as the call log names it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    UnaryExpression,
    and_,
    func,
    literal,
    or_,
    select,
)

from quiver.calls.ingest import is_error
from quiver.calls.retention import trimmed_through
from quiver.store.calltables import (
    BUCKETS,
    CONSUMER,
    LATENCY_BOUNDS_MS,
    NODE,
    ROUTE,
    TARGET,
    call_captures,
    call_cause_rollups,
    call_cause_rollups_hourly,
    call_names,
    call_rollups,
    call_rollups_hourly,
    calls,
)

By = Literal["route", "consumer", "target", "node", "status_class"]
Dimension = Literal["consumers", "routes", "targets", "errors", "causes"]
Source = Literal["calls", "rollups"]
#: most raw rows a series or top list reads before it switches to the rollups
RAW_LIMIT = 10_000
#: top lists over ranges longer than this read hourly rollups (whole hours)
_HOURLY_FROM_MS = 6 * 3_600_000
_KIND: dict[str, int] = {"route": ROUTE, "consumer": CONSUMER, "target": TARGET, "node": NODE}
_TOP: dict[str, str] = {
    "consumers": "consumer",
    "routes": "route",
    "targets": "target",
    "errors": "route",
}


@dataclass
class Totals:
    """The sums of one group of calls, and how to read percentiles from them."""

    requests: int = 0
    errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    latencies_us: list[int] | None = None  # exact, when read from raw rows

    def add_call(self, status: int, bytes_in: int, bytes_out: int, latency_us: int) -> None:
        self.requests += 1
        self.errors += is_error(status)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if self.latencies_us is None:
            self.latencies_us = []
        self.latencies_us.append(latency_us)

    def percentile_ms(self, fraction: float) -> float | None:
        """Nearest-rank percentile: exact from raw latencies, else a bucket bound."""
        if self.requests == 0:
            return None
        rank = max(1, math.ceil(fraction * self.requests))
        if self.latencies_us is not None:
            return sorted(self.latencies_us)[rank - 1] / 1000
        seen = 0
        for index, count in enumerate(self.histogram):
            seen += count
            if seen >= rank:
                return float(LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)])
        return None


@dataclass(frozen=True)
class Point:
    time_ms: int
    key: str | None
    totals: Totals


@dataclass(frozen=True)
class Series:
    source: Source
    start_ms: int
    end_ms: int
    points: list[Point]


def team_scope(table: Table, team: str | None) -> list[ColumnElement[bool]]:
    """The conditions on the rows of ``table`` (calls, spend, or their rollups) that
    ``team`` may see: those of its routes or of its consumers (none for None)."""
    if team is None:
        return []

    def named(kind: int) -> Select[Any]:
        return select(call_names.c.id).where(call_names.c.kind == kind, call_names.c.team == team)

    return [or_(table.c.route_id.in_(named(ROUTE)), table.c.consumer_id.in_(named(CONSUMER)))]


def named(column: ColumnElement[int], kind: int, name: str | None) -> list[ColumnElement[bool]]:
    """The condition keeping the rows whose ``column`` is the id of the ``kind`` (a
    route, a consumer...) called ``name`` (none when it is None)."""
    if name is None:
        return []
    found = select(call_names.c.id).where(call_names.c.kind == kind, call_names.c.name == name)
    return [column == found.scalar_subquery()]


def _few_raw(connection: Connection, start_ms: int, end_ms: int) -> bool:
    """Whether the range's raw rows are all there (retention deleted none of its
    calls: the rollups keep their counts) and few enough to read."""
    if start_ms <= trimmed_through(connection):
        return False
    inner = (
        select(calls.c.id)
        .where(calls.c.time_ms >= start_ms, calls.c.time_ms < end_ms)
        .limit(RAW_LIMIT + 1)
        .subquery()
    )
    return connection.execute(select(func.count()).select_from(inner)).scalar_one() <= RAW_LIMIT


def whole_buckets(start_ms: int, end_ms: int, bucket_ms: int) -> tuple[int, int]:
    """[start, end) widened to whole buckets of ``bucket_ms`` (a minute, an hour, a
    day): buckets begin on the UTC calendar's boundaries (epoch time is UTC's), so a
    series' first and last buckets may begin before ``start`` and end after ``end``."""
    return start_ms - start_ms % bucket_ms, end_ms + -end_ms % bucket_ms


def series(
    connection: Connection,
    start_ms: int,
    end_ms: int,
    bucket_ms: int,
    by: By | None,
    team: str | None,
    consumer: str | None = None,
) -> Series:
    """Totals per bucket (and per ``by`` value) of the calls in [start, end) widened to
    whole buckets (:func:`whole_buckets`), of ``consumer`` alone when it is given.  Raw
    rows and rollups see the same calls in the same buckets."""
    start_ms, end_ms = whole_buckets(start_ms, end_ms, bucket_ms)
    groups: dict[tuple[int, int | None], Totals] = {}
    if _few_raw(connection, start_ms, end_ms):
        source: Source = "calls"
        key_column = _raw_key(by)
        columns = ("time_ms", "status", "bytes_in", "bytes_out", "latency_us")
        query = select(key_column, *(calls.c[name] for name in columns)).where(
            calls.c.time_ms >= start_ms,
            calls.c.time_ms < end_ms,
            *team_scope(calls, team),
            *named(calls.c.consumer_id, CONSUMER, consumer),
        )
        for row in connection.execute(query):
            slot = row[1] - (row[1] - start_ms) % bucket_ms
            totals = groups.setdefault((slot, row[0]), Totals())
            totals.add_call(row[2], row[3], row[4], row[5])
    else:
        source = "rollups"
        table, period, unit = _rollups(bucket_ms)
        first = start_ms // unit  # (a bucket's periods: start_ms is a bucket's start)
        slot_column = (table.c[period] - first) // (bucket_ms // unit)
        key = _rollup_key(table, by)
        query = (
            select(slot_column, key, *_rollup_sums(table))
            .where(
                table.c[period] >= first,
                table.c[period] < end_ms // unit,
                *team_scope(table, team),
                *named(table.c.consumer_id, CONSUMER, consumer),
            )
            .group_by(slot_column, key)
        )
        for row in connection.execute(query):
            groups[(start_ms + row[0] * bucket_ms, row[1])] = _totals(row[2:])
    names = _names_of(connection, by, {key for _, key in groups})
    points = [
        Point(slot, _label(by, key, names), totals)
        for (slot, key), totals in sorted(groups.items(), key=_order)
    ]
    return Series(source, start_ms, end_ms, points)


def top(
    connection: Connection,
    start_ms: int,
    end_ms: int,
    dimension: Dimension,
    n: int,
    team: str | None,
) -> list[tuple[str | None, Totals]]:
    """The ``n`` names of ``dimension`` with the most calls (or errors) in the range
    (``causes``: :func:`top_causes`)."""
    table, period, unit = _rollups(3_600_000 if end_ms - start_ms > _HOURLY_FROM_MS else 60_000)
    column = table.c[f"{_TOP[dimension]}_id"]
    order = func.sum(table.c.errors if dimension == "errors" else table.c.requests)
    query: Select[Any] = (
        select(column, *_rollup_sums(table))
        .where(
            table.c[period] >= start_ms // unit,
            table.c[period] < -(-end_ms // unit),
            *team_scope(table, team),
        )
        .group_by(column)
        .order_by(order.desc(), column)
        .limit(n)
    )
    if dimension == "errors":
        query = query.having(order > 0)
    rows = connection.execute(query).all()
    names = _names_of(connection, _TOP[dimension], {row[0] for row in rows})  # type: ignore[arg-type]
    return [(names.get(row[0]), _totals(row[1:])) for row in rows]


@dataclass(frozen=True)
class Cause:
    """Calls that ended with one status, answered by one plugin (or the gateway, the
    target, the client: quiver.calls.causes)."""

    status: int
    answered_by: str
    totals: Totals


def top_causes(
    connection: Connection, start_ms: int, end_ms: int, n: int, team: str | None
) -> list[Cause]:
    """The ``n`` causes of errors with the most calls in the range, read from the cause
    rollups over whole periods as :func:`top` reads its rollups."""
    hourly = end_ms - start_ms > _HOURLY_FROM_MS
    table, period, unit = (
        (call_cause_rollups_hourly, "hour", 3_600_000)
        if hourly
        else (call_cause_rollups, "minute", 60_000)
    )
    status, answered_by = table.c.status, table.c.answered_by
    query = (
        select(status, answered_by, *_rollup_sums(table))
        .where(
            table.c[period] >= start_ms // unit,
            table.c[period] < -(-end_ms // unit),
            *team_scope(table, team),
        )
        .group_by(status, answered_by)
        .order_by(func.sum(table.c.requests).desc(), status, answered_by)
        .limit(n)
    )
    return [Cause(row[0], row[1], _totals(row[2:])) for row in connection.execute(query)]


@dataclass(frozen=True)
class CallFilter:
    route: str | None = None
    consumer: str | None = None
    status: tuple[int, int] | None = None  # inclusive range
    request_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    team: str | None = None
    mcp_method: str | None = None
    mcp_tool: str | None = None  # a tool, prompt or resource, as named
    mcp_outcome: str | None = None


def newest_id(connection: Connection) -> int:
    """The row id of the call stored last (0 when there is none).  Rows are stored by
    one ingester per store, a batch per transaction, so ids grow in the order calls
    are stored, whatever their times."""
    return int(connection.execute(select(func.max(calls.c.id))).scalar() or 0)


def list_calls(
    connection: Connection,
    where: CallFilter,
    limit: int,
    after: tuple[int, int] | None,
    *,
    stored_after: int | None = None,
    stored_through: int | None = None,
) -> list[dict[str, Any]]:
    """Calls matching ``where``, newest first, after the (time_ms, id) ``after``; or,
    with ``stored_after`` (a row id), those stored after it, in the order they were
    stored.  ``stored_through``: none stored after this row id."""
    conditions: list[ColumnElement[bool]] = [
        *team_scope(calls, where.team),
        *named(calls.c.route_id, ROUTE, where.route),
        *named(calls.c.consumer_id, CONSUMER, where.consumer),
    ]
    if where.status is not None:
        conditions.append(calls.c.status.between(*where.status))
    if where.request_id is not None:
        conditions.append(calls.c.request_id == where.request_id)
    for column, value in (
        (calls.c.mcp_method, where.mcp_method),
        (calls.c.mcp_tool, where.mcp_tool),
        (calls.c.mcp_outcome, where.mcp_outcome),
    ):
        if value is not None:
            conditions.append(column == value)
    if where.start_ms is not None:
        conditions.append(calls.c.time_ms >= where.start_ms)
    if where.end_ms is not None:
        conditions.append(calls.c.time_ms < where.end_ms)
    if after is not None:
        conditions.append(
            or_(
                calls.c.time_ms < after[0],
                and_(calls.c.time_ms == after[0], calls.c.id < after[1]),
            )
        )
    order: tuple[UnaryExpression[Any], ...] = (calls.c.time_ms.desc(), calls.c.id.desc())
    if stored_through is not None:
        conditions.append(calls.c.id <= stored_through)
    if stored_after is not None:
        conditions.append(calls.c.id > stored_after)
        order = (calls.c.id.asc(),)
    query = select(calls).where(*conditions).order_by(*order).limit(limit)
    rows = [dict(row._mapping) for row in connection.execute(query)]
    return _with_names(connection, rows)


def capture_of(connection: Connection, call_id: int) -> str | None:
    """What the call's route kept beyond it (JSON), if it keeps bodies."""
    query = select(call_captures.c.capture).where(call_captures.c.call_id == call_id)
    capture: str | None = connection.execute(query).scalar()
    return capture


def _with_names(connection: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = {
        row[column]
        for row in rows
        for column in ("route_id", "target_id", "consumer_id", "node_id", "user_agent_id")
        if row[column]
    }
    names = _lookup(connection, wanted)
    for row in rows:
        for column in ("route", "target", "consumer", "node", "user_agent"):
            row[column] = names.get(row.pop(f"{column}_id"))
    return rows


def _lookup(connection: Connection, ids: Iterable[int]) -> dict[int, str]:
    chosen = sorted(i for i in ids if i)
    found: dict[int, str] = {}
    for start in range(0, len(chosen), 500):
        query = select(call_names.c.id, call_names.c.name).where(
            call_names.c.id.in_(chosen[start : start + 500])
        )
        found.update({row.id: row.name for row in connection.execute(query)})
    return found


def _raw_key(by: By | None) -> ColumnElement[Any]:
    if by is None:
        return literal(0)
    if by == "status_class":
        return calls.c.status // 100
    return calls.c[f"{by}_id"]


def _rollups(bucket_ms: int) -> tuple[Table, str, int]:
    """The rollup table for buckets of ``bucket_ms``: its period column and length."""
    if bucket_ms % 3_600_000 == 0:
        return call_rollups_hourly, "hour", 3_600_000
    return call_rollups, "minute", 60_000


def _rollup_key(table: Table, by: By | None) -> ColumnElement[Any]:
    if by is None:
        return literal(0)
    if by == "status_class":
        return table.c.status_class
    return table.c[f"{by}_id"]


def _rollup_sums(table: Table) -> list[ColumnElement[Any]]:
    names = ("requests", "errors", "bytes_in", "bytes_out", *BUCKETS)
    return [func.sum(table.c[name]) for name in names]


def _totals(values: Sequence[Any]) -> Totals:
    numbers = [int(value or 0) for value in values]
    return Totals(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4:])


def _names_of(connection: Connection, by: By | None, keys: set[Any]) -> dict[int, str]:
    if by is None or by == "status_class":
        return {}
    return _lookup(connection, keys)


def _label(by: By | None, key: Any, names: dict[int, str]) -> str | None:
    if by is None:
        return None
    if by == "status_class":
        return f"{int(key)}xx"
    return names.get(key)


def _order(item: tuple[tuple[int, Any], Totals]) -> tuple[int, str]:
    (slot, key), _ = item
    return slot, str(key)
