"""The MCP part of a worker's request counters (quiver.observe.metrics): messages
by route, method and outcome; tool calls by route, tool, consumer and outcome; and
the time tool calls took, by route and tool.

A request's labels must stay few whatever clients send.  Route and outcome are
bounded already (the config's names, four outcomes); the rest is held to a bound
here, per worker:

- ``method``: the methods of the protocol (``METHODS``); any other (or none) is
  ``_other``;
- ``tool``: a name becomes a label once a call of it was answered (ok, error or
  failed): a refused call (an unknown tool, bad arguments) counts under its
  name only if that name already is one, else under ``_unknown``, so that
  made-up names never take the place of real ones; at most ``MAX_TOOLS`` names
  per route, later ones count as ``_other``;
- ``outcome``: ``ok``, ``error``, ``refused``, ``failed``, or ``none`` (a
  notification: nothing was answered);
- ``consumer``: at most ``MAX_CONSUMERS`` names (the first seen), later ones
  count as ``_other``; ``""`` is no consumer.

A snapshot holds plain numbers keyed by the labels joined with a tab
(``KEY_SEPARATOR``), added up across workers by quiver.observe.metrics.add.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

#: the methods counted under their own name (the protocol's requests and the
#: notifications a client sends)
METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)
OUTCOMES = frozenset({"ok", "error", "refused", "failed"})
#: tool names with a label of their own, per route and worker
MAX_TOOLS = 100
#: consumer names with a label of their own, per worker
MAX_CONSUMERS = 100
OTHER = "_other"
UNKNOWN = "_unknown"
KEY_SEPARATOR = "\t"


def _label(value: object) -> str | None:
    """A text fit to be a label value (printable, no tab), or None."""
    if isinstance(value, str) and value and value.isprintable() and "\t" not in value:
        return value[:128]
    return None


class _Timing:
    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets  # per bucket, not cumulative
        self.sum = 0.0  # milliseconds


class McpCounts:
    """The MCP counters of one worker (used under the metrics output's lock)."""

    __slots__ = ("_bounds", "consumers", "durations", "messages", "tool_calls", "tools")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        """``bounds``: the upper bounds of the duration buckets, in milliseconds."""
        self.messages: dict[str, int] = {}  # route, method, outcome
        self.tool_calls: dict[str, int] = {}  # route, tool, consumer, outcome
        self.durations: dict[str, _Timing] = {}  # route, tool
        self.tools: dict[str, set[str]] = {}  # the tool labels of each route
        self.consumers: set[str] = set()
        self._bounds = bounds

    def add(
        self, note: dict[str, Any], route: str | None, consumer: str | None, latency_ms: float
    ) -> None:
        route = route or ""
        method = note.get("method")
        method = method if isinstance(method, str) and method in METHODS else OTHER
        outcome = note.get("outcome")
        outcome = outcome if isinstance(outcome, str) and outcome in OUTCOMES else "none"
        key = KEY_SEPARATOR.join((route, method, outcome))
        self.messages[key] = self.messages.get(key, 0) + 1
        if method != "tools/call":
            return
        tool = self._tool(route, note.get("tool"), outcome)
        who = self._consumer(consumer)
        key = KEY_SEPARATOR.join((route, tool, who, outcome))
        self.tool_calls[key] = self.tool_calls.get(key, 0) + 1
        ms = note.get("ms")
        took = latency_ms  # (when the endpoint's own time is missing)
        if isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0:
            took = float(ms)
        key = KEY_SEPARATOR.join((route, tool))
        timing = self.durations.get(key)
        if timing is None:
            timing = self.durations[key] = _Timing(len(self._bounds) + 1)
        timing.counts[bisect_left(self._bounds, took)] += 1
        timing.sum += took

    def _tool(self, route: str, value: object, outcome: str) -> str:
        name = _label(value)
        if name is None:
            return UNKNOWN
        known = self.tools.setdefault(route, set())
        if name in known:
            return name
        if outcome not in ("ok", "error", "failed"):
            return UNKNOWN  # (a name nothing answered to yet: maybe made up)
        if len(known) >= MAX_TOOLS:
            return OTHER
        known.add(name)
        return name

    def _consumer(self, value: str | None) -> str:
        name = _label(value)
        if name is None:
            return ""
        if name in self.consumers:
            return name
        if len(self.consumers) >= MAX_CONSUMERS:
            return OTHER
        self.consumers.add(name)
        return name

    def snapshot(self) -> dict[str, Any]:
        return {
            "messages": dict(self.messages),
            "tool_calls": dict(self.tool_calls),
            "durations": {
                key: {"buckets": list(timing.counts), "sum": timing.sum}
                for key, timing in self.durations.items()
            },
        }
