"""The call log's tables: lean rows of calls, the names they refer to, per-minute
rollups and the spool offsets that make ingest exactly-once.

A call row holds numbers, not names: route, target, consumer, node and user agent
are ids into ``call_names`` (one small table for the five kinds, so a name is
stored once however many calls carry it).  Id 0 means "none" (a call no route
matched, an anonymous consumer): rollups need a value that takes part in their
unique key, and NULLs never conflict.  Times are epoch milliseconds, latencies
microseconds, all integers.  A call that was an MCP message also holds its
method, the tool (prompt, resource) it named and its outcome, as text: few calls
carry them, and they are read back as they were written.

A rollup row sums the calls of one minute (or hour) with one route, consumer, target, node
and status class (1 for 1xx ... 5 for 5xx): counts, errors, bytes, the latency sum
and a fixed-bucket latency histogram (``LATENCY_BOUNDS_MS``), from which p50, p95
and p99 are read to a bucket's precision.  The histogram is one column per bucket
so that SQL sums it over any range.

The cause rollups sum, with the same columns, the calls that ended in an error
(status 400 and above) per minute (or hour), route, consumer, status and who
answered (``answered_by``: the plugin that refused or answered, else ``gateway``,
``target`` or ``client``, see quiver.calls.causes): what top error causes are read
from, since the other rollups keep neither the status nor who answered.

``call_captures`` holds what routes that keep bodies (``routes[].call_log``) keep
beyond the call: one JSON document per call, keyed by the call's id, and deleted
with it.

``call_spools`` records how far each spool file has been read, in the transaction
that inserts its rows: a crash anywhere loses nothing and counts nothing twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

from quiver.store.models import Base

#: upper bounds (ms, inclusive) of the latency histogram's buckets; the last is open
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
)  # fmt: skip
#: histogram columns: one per bound, then one for everything above the last
BUCKETS: tuple[str, ...] = tuple(f"h{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))

#: the kinds of name a call refers to (``call_names.kind``)
ROUTE, TARGET, CONSUMER, NODE, USER_AGENT = 1, 2, 3, 4, 5

# SQLite's rowid is a 64-bit integer only when declared exactly INTEGER PRIMARY KEY
_Id = BigInteger().with_variant(Integer(), "sqlite")

call_names = Table(
    "call_names",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", SmallInteger, nullable=False),
    Column("name", String, nullable=False),
    # the team a route, target or consumer belongs to ("default" when unqualified)
    Column("team", String, nullable=True),
    Index("ix_call_names_kind_name", "kind", "name", unique=True),
)

#: the calls an MCP tool index holds (the others have no tool)
_HAS_TOOL = text("mcp_tool IS NOT NULL")

calls = Table(
    "calls",
    Base.metadata,
    Column("id", _Id, primary_key=True),
    Column("request_id", String, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("route_id", Integer, nullable=False),
    Column("target_id", Integer, nullable=False),
    Column("consumer_id", Integer, nullable=False),
    Column("node_id", Integer, nullable=False),
    Column("user_agent_id", Integer, nullable=False),
    Column("method", String, nullable=False),
    Column("path", String, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),
    Column("latency_us", BigInteger, nullable=False),
    Column("upstream_us", BigInteger, nullable=True),
    Column("gateway_us", BigInteger, nullable=True),
    Column("client_ip", String, nullable=True),
    Column("retries", SmallInteger, nullable=False),
    Column("cache", String, nullable=True),
    Column("answered_by", String, nullable=True),
    # an MCP message: its JSON-RPC method, the tool, prompt or resource it named, and
    # how it ended (ok, error, refused, failed); null for any other call
    Column("mcp_method", String, nullable=True),
    Column("mcp_tool", String, nullable=True),
    Column("mcp_outcome", String, nullable=True),
    # an upgrade's tunnel (WebSocket): messages and bytes each way, the close code and
    # who closed (client, target, gateway), noted when it closed; null for any other
    # call (messages and code too when the route does not read frames)
    Column("ws_messages_in", BigInteger, nullable=True),
    Column("ws_messages_out", BigInteger, nullable=True),
    Column("ws_bytes_in", BigInteger, nullable=True),
    Column("ws_bytes_out", BigInteger, nullable=True),
    Column("ws_close_code", Integer, nullable=True),
    Column("ws_closed_by", String, nullable=True),
    Index("ix_calls_time", "time_ms"),
    Index("ix_calls_route_time", "route_id", "time_ms"),
    Index("ix_calls_consumer_time", "consumer_id", "time_ms"),
    Index("ix_calls_status_time", "status", "time_ms"),
    Index("ix_calls_request_id", "request_id"),
    # (MCP calls only: the others have no tool, and would cost an entry each)
    Index(
        "ix_calls_mcp_tool_time",
        "mcp_tool",
        "time_ms",
        sqlite_where=_HAS_TOOL,
        postgresql_where=_HAS_TOOL,
    ),
)


def _sums() -> list[Column[int]]:
    """The sums a rollup row keeps of its calls: counts, bytes, latency and its
    histogram buckets."""
    return [
        Column("requests", BigInteger, nullable=False),
        Column("errors", BigInteger, nullable=False),
        Column("bytes_in", BigInteger, nullable=False),
        Column("bytes_out", BigInteger, nullable=False),
        Column("latency_sum_us", BigInteger, nullable=False),
        *(Column(bucket, BigInteger, nullable=False) for bucket in BUCKETS),
    ]


def _rollups(name: str, period: str, *keys: Column[Any], by_route: bool = True) -> Table:
    """A table of sums per ``period`` (epoch minutes or hours) and ``keys``, one row
    per distinct key; ``by_route``: an index for reading one route's rows."""
    indexes = [Index(f"ux_{name}_key", period, *(key.name for key in keys), unique=True)]
    if by_route:
        indexes.append(Index(f"ix_{name}_route_{period}", "route_id", period))
    return Table(
        name,
        Base.metadata,
        Column(period, BigInteger, nullable=False),
        *keys,
        *_sums(),
        *indexes,
    )


def _call_rollups(name: str, period: str) -> Table:
    return _rollups(
        name,
        period,
        Column("route_id", Integer, nullable=False),
        Column("consumer_id", Integer, nullable=False),
        Column("target_id", Integer, nullable=False),
        Column("node_id", Integer, nullable=False),
        Column("status_class", SmallInteger, nullable=False),
    )


#: per minute; read for ranges in minute buckets
call_rollups = _call_rollups("call_rollups", "minute")
#: the same sums per hour: ranges in hour or day buckets read 60 times fewer rows
call_rollups_hourly = _call_rollups("call_rollups_hourly", "hour")


def _cause_rollups(name: str, period: str) -> Table:
    return _rollups(
        name,
        period,
        Column("route_id", Integer, nullable=False),
        Column("consumer_id", Integer, nullable=False),
        Column("status", SmallInteger, nullable=False),
        # who answered: a plugin's name, or gateway, target, client (quiver.calls.causes)
        Column("answered_by", String, nullable=False),
        by_route=False,
    )


#: the calls that ended in an error (4xx, 5xx) per minute, by route, consumer, status
#: and who answered: the causes of errors
call_cause_rollups = _cause_rollups("call_cause_rollups", "minute")
#: the same per hour
call_cause_rollups_hourly = _cause_rollups("call_cause_rollups_hourly", "hour")

call_captures = Table(
    "call_captures",
    Base.metadata,
    Column("call_id", _Id, primary_key=True, autoincrement=False),  # calls.id
    Column("capture", Text, nullable=False),  # header fields and bodies, as JSON
)

#: one row: the latest ``time_ms`` of any call retention deleted.  Raw rows of a range
#: that begins after it are all there; earlier ranges are read from the rollups.
call_trims = Table(
    "call_trims",
    Base.metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),  # always 1
    Column("through_ms", BigInteger, nullable=False),
)

call_spools = Table(
    "call_spools",
    Base.metadata,
    Column("name", String, primary_key=True),  # the spool file's name in the calls dir
    Column("offset", BigInteger, nullable=False),  # bytes consumed
    Column("head", String, nullable=False),  # digest of the first line: which file of that name
)
