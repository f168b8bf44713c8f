"""One spooled record (a JSON line) as the values of a call row.

Names become ids later (quiver.calls.names); here a record is checked and its
units made the store's: time in epoch milliseconds, latencies in microseconds.
The field names are the access log's (``upstream_ms`` becomes ``upstream_us``):
this is the one place that maps a spooled line to a row.
A line that is not a record is refused with ValueError and skipped by the caller.

The ingester reads every call a node serves, so :func:`parse` is written for speed:
a record is a tuple (a named one) and the usual call's fields are checked inline;
a line with more than a call in it, or one that fails a check, goes through the
slower reading of every field in turn, which names the field it refuses.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from quiver.observe.mcp_note import mcp_document, named
from quiver.store.calltables import LATENCY_BOUNDS_MS
from quiver.store.spendtables import NANO

#: the buckets' upper bounds in microseconds (a latency on a bound is in its bucket)
_BOUNDS_US = tuple(bound * 1000 for bound in LATENCY_BOUNDS_MS)


class Record(NamedTuple):
    request_id: str
    time_ms: int
    route: str | None
    target: str | None
    consumer: str | None
    node: str | None
    user_agent: str | None
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    latency_us: int
    upstream_us: int | None
    gateway_us: int | None
    client_ip: str | None
    retries: int
    cache: str | None
    answered_by: str | None
    #: what a route that keeps bodies kept beyond the call, as JSON (None: nothing)
    capture: str | None = None
    #: what a call to a model used (None: no model was called)
    spend: Spend | None = None
    #: the JSON-RPC method of an MCP message (None: not an MCP exchange)
    mcp_method: str | None = None
    #: the tool, prompt or resource it named
    mcp_tool: str | None = None
    #: ok, error, refused or failed (None: a notification, or not MCP)
    mcp_outcome: str | None = None
    #: an upgrade's tunnel (None: not one): messages each way (None: its frames were
    #: not read), bytes each way, the close code (None: frames not read) and who closed
    ws_messages_in: int | None = None
    ws_messages_out: int | None = None
    ws_bytes_in: int | None = None
    ws_bytes_out: int | None = None
    ws_close_code: int | None = None
    ws_closed_by: str | None = None


class Spend(NamedTuple):
    """The ``ai`` member of a record, in the store's units."""

    model: str | None
    provider: str | None
    deployment: str | None
    team: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_nusd: int  # nano-dollars
    ttft_us: int | None


#: the types of a latency in milliseconds (not bool, though it is an int)
_NUMBER = frozenset((int, float))


def parse(line: bytes) -> Record:
    data = orjson.loads(line)  # (the ingester reads every call: the fast parser)
    if type(data) is not dict:
        raise ValueError("not a JSON object")
    get: Callable[[str], Any] = data.get
    request_id = get("request_id")
    time_text = get("time")
    method = get("method")
    path = get("path")
    status = get("status")
    bytes_in = get("bytes_in")
    bytes_out = get("bytes_out")
    retries = get("retries")
    if retries is None:
        retries = 0
    capture = get("capture")
    ai = get("ai")
    mcp = get("mcp")
    ws = get("websocket")
    if not (
        type(request_id) is str
        and type(time_text) is str
        and type(method) is str
        and type(path) is str
        and type(status) is int
        and type(bytes_in) is int
        and type(bytes_out) is int
        and type(retries) is int
        and mcp is None
        and ws is None
        and capture is None
        and ai is None
    ):
        return _parse_whole(data)
    latency = get("latency_ms")
    upstream = get("upstream_ms")
    gateway = get("gateway_ms")
    route = get("route")
    target = get("target")
    consumer = get("consumer")
    node = get("node")
    user_agent = get("user_agent")
    client_ip = get("client_ip")
    cache = get("cache")
    answered_by = get("answered_by")
    # (inline, as _optional_text and _micros would have them: empty text is None,
    # milliseconds become whole microseconds, never below 0)
    return Record(
        request_id,
        _epoch_ms(time_text),
        route if type(route) is str and route else None,
        target if type(target) is str and target else None,
        consumer if type(consumer) is str and consumer else None,
        node if type(node) is str and node else None,
        user_agent if type(user_agent) is str and user_agent else None,
        method,
        path,
        status,
        bytes_in,
        bytes_out,
        (latency * 1000 if latency > 0 else 0).__round__() if type(latency) in _NUMBER else 0,
        (upstream * 1000 if upstream > 0 else 0).__round__() if type(upstream) in _NUMBER else None,
        (gateway * 1000 if gateway > 0 else 0).__round__() if type(gateway) in _NUMBER else None,
        client_ip if type(client_ip) is str and client_ip else None,
        retries,
        cache if type(cache) is str and cache else None,
        answered_by if type(answered_by) is str and answered_by else None,
    )


def _parse_whole(data: dict[str, Any]) -> Record:
    """A record that carries more than the call (what a route kept of it, what a
    model used, what an MCP message was or what went through a tunnel), or one
    that is refused: every field checked in turn, and the first that fails named."""
    mcp = data.get("mcp")
    if mcp is not None and not isinstance(mcp, dict):
        raise ValueError("mcp is not an object")
    if mcp:
        mcp = mcp_document(mcp)
    ws = data.get("websocket")
    if ws is not None and not isinstance(ws, dict):
        raise ValueError("websocket is not an object")
    ws = ws or {}
    return Record(
        request_id=_text(data, "request_id"),
        time_ms=_epoch_ms(_text(data, "time")),
        route=_optional_text(data, "route"),
        target=_optional_text(data, "target"),
        consumer=_optional_text(data, "consumer"),
        node=_optional_text(data, "node"),
        user_agent=_optional_text(data, "user_agent"),
        method=_text(data, "method"),
        path=_text(data, "path"),
        status=_int(data, "status"),
        bytes_in=_int(data, "bytes_in"),
        bytes_out=_int(data, "bytes_out"),
        latency_us=_micros(data.get("latency_ms")) or 0,
        upstream_us=_micros(data.get("upstream_ms")),
        gateway_us=_micros(data.get("gateway_ms")),
        client_ip=_optional_text(data, "client_ip"),
        retries=_int(data, "retries", default=0),
        cache=_optional_text(data, "cache"),
        answered_by=_optional_text(data, "answered_by"),
        capture=_capture(data.get("capture")),
        spend=_spend(data.get("ai")),
        mcp_method=mcp.get("method") if mcp else None,
        mcp_tool=named(mcp) if mcp else None,
        mcp_outcome=mcp.get("outcome") if mcp else None,
        ws_messages_in=_optional_count(ws, "messages_in"),
        ws_messages_out=_optional_count(ws, "messages_out"),
        ws_bytes_in=_optional_count(ws, "bytes_in"),
        ws_bytes_out=_optional_count(ws, "bytes_out"),
        ws_close_code=_optional_count(ws, "close_code"),
        ws_closed_by=_optional_text(ws, "closed_by"),
    )


def _optional_count(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    return value if type(value) is int and value >= 0 else None


def _spend(value: object) -> Spend | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("ai is not an object")
    cost = value.get("cost")
    if not isinstance(cost, int | float) or isinstance(cost, bool) or cost < 0:
        cost = 0
    return Spend(
        model=_optional_text(value, "model"),
        provider=_optional_text(value, "provider"),
        deployment=_optional_text(value, "deployment"),
        team=_optional_text(value, "team"),
        prompt_tokens=_count(value.get("prompt_tokens")),
        completion_tokens=_count(value.get("completion_tokens")),
        cost_nusd=round(cost * NANO),
        ttft_us=_micros(value.get("ttft_ms")),
    )


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0


def bucket(latency_us: int) -> int:
    """The histogram bucket (index into BUCKETS) of a latency."""
    return bisect_left(_BOUNDS_US, latency_us)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None and default is not None:
        return default
    if type(value) is not int:
        raise ValueError(f"{key} is not an integer")
    return value


def _capture(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("capture is not an object")
    return json.dumps(value, separators=(",", ":"))


def _micros(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, round(value * 1000))


_seconds: dict[str, int] = {}  # epoch seconds by "YYYY-MM-DDTHH:MM:SS" (a call's second)


def _epoch_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time; the spool's own form
    (``2026-12-06T10:00:00.123Z``) by the second it shares with its neighbours."""
    if len(text) == 24 and text[19] == "." and text[23] == "Z" and text[20:23].isdigit():
        second = _seconds.get(text[:19])
        if second is None:
            if len(_seconds) > 4096:
                _seconds.clear()
            second = _seconds[text[:19]] = _epoch_ms(text[:19] + "Z") // 1000
        return second * 1000 + int(text[20:23])
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
