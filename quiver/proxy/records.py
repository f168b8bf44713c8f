"""Turning ended exchanges into :class:`ExchangeRecord` s, in the log step.

This runs once per batch of ended exchanges (``ProxyState.log_ended``), after
their responses are out (within the same turn of the event loop, so "now" is
the exchange's end).  What the exchange had to remember while in flight is a few
numbers: when its head was read (``began``), when it went to its node
(``upstream_at``), the bytes both ways, its tries, and what plugins reported
(``cache_status``) or which plugin answered (``answered_by``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from quiver.observe.record import ExchangeRecord
from quiver.proxy.tracecontext import trace_ended

if TYPE_CHECKING:
    from quiver.proxy.exchange import Exchange
    from quiver.proxy.phases import PhaseRunner


def records(
    ended: list[PhaseRunner], query: bool, keep: Callable[[int], bool] | None
) -> list[ExchangeRecord]:
    """The records of ``ended`` (which ended just now): of those ``keep`` keeps by
    their status or tracing sampled, or of all; ``query``: their paths keep the
    query string."""
    now = time.monotonic()
    wall = time.time() - now  # monotonic time to epoch
    exchanges = cast("list[Exchange]", ended)  # (the proxy's phase runners are exchanges)
    if keep is None:  # the usual case: every exchange
        return [exchange_record(x, now, wall, query) for x in exchanges]
    return [
        exchange_record(x, now, wall, query)
        for x in exchanges
        if x.trace is not None or keep(x.status)  # (a sampled trace needs its spans)
    ]


def exchange_record(
    exchange: Exchange, now: float, wall: float, query: bool = False
) -> ExchangeRecord:
    """The record of one exchange that ended at ``now`` (time.monotonic); ``wall``
    turns monotonic times into epoch times."""
    x = exchange
    began = x.began or now
    route = x.route
    node = x.node
    consumer = x.consumer
    answered = x.answered_by
    path = x.raw_path
    if query and x.query:
        path = path + b"?" + x.query
    sent = x.upstream_at
    ctx = x._ctx
    ai = ctx.get("ai") if ctx else None
    if ai is not None and consumer is not None and consumer.team and "team" not in ai:
        ai["team"] = consumer.team  # (the request is over: its context is the record's now)
    mcp = ctx.get("mcp") if ctx else None
    plan = ctx.get("plan") if ctx else None
    upstream = (now - sent) * 1000.0 if node is not None and sent else None
    trace = x.trace
    if trace is not None:  # sampled: what its spans need of the exchange's end
        trace_ended(x)
    return ExchangeRecord(
        wall + began,  # time
        x.rid,  # request_id
        x.client.peer,  # client_ip
        x.method,
        path,
        x.status,
        route.name if route is not None else None,
        route.target.name if route is not None else None,  # target
        node.label if node is not None else None,
        consumer.name if consumer is not None else None,
        x.body_received,  # bytes_in
        x.bytes_out,
        (now - began) * 1000.0,  # latency_ms
        upstream,  # upstream_ms
        x.attempt - 1,  # retries
        x.cache_status,  # cache
        getattr(getattr(answered, "__self__", None), "name", None)  # answered_by
        if answered is not None
        else None,
        x.get(b"user-agent"),
        x.capture,
        trace,
        ai,
        mcp,
        x.tunnel_note,  # websocket
        plan,
    )
