"""Request counters of one worker, kept off the records of the exchanges it served.

:class:`MetricsOutput` is a record output (``name = "metrics"``): the writer thread
hands it each batch of :class:`~quiver.observe.record.ExchangeRecord` s, and it adds
them to a few counters by route and by target.  Nothing of it runs on the event
loop while requests are served: the loop only queues the records, as it does for
the access log.  Per record it costs a dictionary lookup or two, a ``bisect`` into
fixed latency buckets and a few additions.  A route's latencies are one histogram
per status class, and the histograms' counts are its requests by status class:
the one addition counts both.

Labels are names from the config (route, target, plugin) and small fixed sets
(status class, cache status): never a path, a client or a consumer, so the number of
series is bounded by the config.  MCP messages add tool and consumer names, each
held to a bound (quiver.observe.mcp_metrics).  An exchange that matched no route counts under the
route ``""``.

Once a second the worker's status writer takes :meth:`MetricsOutput.snapshot`, a
JSON-ready mapping of plain numbers that snapshots of other workers are added to
(:func:`add`); :mod:`quiver.observe.node_metrics` keeps them in the run directory.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Any

from quiver.config.models import MetricsSettings
from quiver.observe.mcp_metrics import McpCounts
from quiver.observe.record import ExchangeRecord

#: upper bounds of the latency histograms' buckets, in milliseconds (one more bucket
#: holds anything longer)
BUCKETS_MS: tuple[float, ...] = (
    *(0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0),
    *(1000.0, 2500.0, 5000.0, 10000.0, 30000.0),
)
#: a status class per first digit ("1xx" ... "9xx": a node may answer 600 to 999)
STATUS_CLASSES = tuple(f"{digit}xx" for digit in range(10))

Snapshot = dict[str, Any]

#: gen_ai.client.token.usage's bucket bounds (OpenTelemetry GenAI semantic conventions)
TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**power) for power in range(14))
#: gen_ai.client.operation.duration's, in seconds
DURATION_BUCKETS: tuple[float, ...] = tuple(0.01 * 2**power for power in range(14))
#: gen_ai.server.time_to_first_token's, in seconds
TTFT_BUCKETS: tuple[float, ...] = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0),
)
#: how the labels of an AI series are joined into its key in a snapshot
AI_KEY_SEPARATOR = "\t"


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # per bucket, not cumulative
        self.sum = 0.0  # milliseconds

    def snapshot(self) -> Snapshot:
        return {"buckets": list(self.counts), "sum": self.sum}


class _Distribution:
    """A histogram over ``bounds`` (its own unit), for the GenAI metrics."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def snapshot(self) -> Snapshot:
        return {"buckets": list(self.counts), "sum": self.sum}


class _ModelCounts:
    """The GenAI metrics of one operation x provider x request model x response model."""

    __slots__ = ("cost", "duration", "input", "output", "ttft")

    def __init__(self) -> None:
        self.input = _Distribution(TOKEN_BUCKETS)
        self.output = _Distribution(TOKEN_BUCKETS)
        self.duration = _Distribution(DURATION_BUCKETS)
        self.ttft = _Distribution(TTFT_BUCKETS)
        self.cost = 0.0

    def add(self, ai: dict[str, Any], latency_ms: float) -> None:
        prompt = ai.get("prompt_tokens")
        if isinstance(prompt, int) and prompt >= 0:
            self.input.add(prompt)
        completion = ai.get("completion_tokens")
        if isinstance(completion, int) and completion >= 0:
            self.output.add(completion)
        self.duration.add(latency_ms / 1000)
        ttft = ai.get("ttft_ms")
        if isinstance(ttft, int | float) and ttft >= 0:
            self.ttft.add(ttft / 1000)
        cost = ai.get("cost")
        if isinstance(cost, int | float) and cost > 0:
            self.cost += cost

    def snapshot(self) -> Snapshot:
        return {
            "input": self.input.snapshot(),
            "output": self.output.snapshot(),
            "duration": self.duration.snapshot(),
            "ttft": self.ttft.snapshot(),
            "cost": self.cost,
        }


def _ai_key(ai: dict[str, Any]) -> str:
    """The labels of a call to a model: operation, provider, request model, response
    model (names from the config: bounded)."""
    return AI_KEY_SEPARATOR.join(
        str(ai.get(name) or default)
        for name, default in (
            ("operation", "chat"),
            ("provider", ""),
            ("model", ""),
            ("deployment", ai.get("model") or ""),
        )
    )


class _RouteCounts:
    __slots__ = ("cache", "latencies", "rejections", "retries", "websocket")

    def __init__(self) -> None:
        #: a latency histogram per status class (index: the status' first digit), made
        #: when the class is first seen; its count is the class' number of exchanges
        self.latencies: list[_Histogram | None] = [None] * len(STATUS_CLASSES)
        self.retries = 0
        self.rejections: dict[str, int] = {}  # by the plugin that refused
        self.cache: dict[str, int] = {}  # by cache status (HIT, MISS, ...)
        #: WebSocket messages by direction ("in": from the client) and closes by code
        self.websocket: dict[str, dict[str, int]] | None = None

    def add_websocket(self, note: dict[str, Any]) -> None:
        counts = self.websocket
        if counts is None:
            counts = self.websocket = {"messages": {}, "closes": {}}
        messages = counts["messages"]
        for direction in ("in", "out"):
            number = note.get(f"messages_{direction}")
            if number:
                messages[direction] = messages.get(direction, 0) + number
        code = note.get("close_code")
        if code is not None:
            closes = counts["closes"]
            closes[str(code)] = closes.get(str(code), 0) + 1

    def snapshot(self) -> Snapshot:
        latencies = {
            STATUS_CLASSES[digit]: histogram
            for digit, histogram in enumerate(self.latencies)
            if histogram is not None
        }
        return {
            "status": {name: sum(h.counts) for name, h in latencies.items()},
            "latencies": {name: h.snapshot() for name, h in latencies.items()},
            "retries": self.retries,
            "rejections": dict(self.rejections),
            "cache": dict(self.cache),
            **(
                {"websocket": {kind: dict(c) for kind, c in self.websocket.items()}}
                if self.websocket is not None
                else {}
            ),
        }


class MetricsOutput:
    """The request counters of one worker; :meth:`write` runs on the writer thread,
    :meth:`snapshot` on the event loop (a lock keeps a snapshot from seeing half a
    batch)."""

    name = "metrics"

    def __init__(self) -> None:
        self._routes: dict[str | None, _RouteCounts] = {}
        self._upstream: dict[str | None, _Histogram] = {}  # by target
        self._models: dict[str, _ModelCounts] = {}  # calls to models, by _ai_key
        self._mcp = McpCounts(BUCKETS_MS)  # MCP messages
        self._lock = threading.Lock()
        self.counted = 0

    def open(self) -> None:
        """Nothing to open: the counters live in memory."""

    def reopen(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        """Nothing to close: the last snapshot is taken after the writer stopped."""

    def write(self, batch: list[ExchangeRecord]) -> None:
        routes = self._routes
        upstream = self._upstream
        bounds = BUCKETS_MS
        with self._lock:
            for record in batch:
                counts = routes.get(record.route)
                if counts is None:
                    counts = routes[record.route] = _RouteCounts()
                status = record.status
                latency = record.latency_ms
                digit = status // 100 % 10
                histogram = counts.latencies[digit]
                if histogram is None:
                    histogram = counts.latencies[digit] = _Histogram()
                histogram.counts[bisect_left(bounds, latency)] += 1
                histogram.sum += latency
                if record.retries:
                    counts.retries += record.retries
                answered_by = record.answered_by
                if answered_by is not None and status >= 400:
                    rejections = counts.rejections
                    rejections[answered_by] = rejections.get(answered_by, 0) + 1
                cache = record.cache
                if cache is not None:
                    counts.cache[cache] = counts.cache.get(cache, 0) + 1
                took = record.upstream_ms
                if took is not None:
                    timing = upstream.get(record.target)
                    if timing is None:
                        timing = upstream[record.target] = _Histogram()
                    timing.counts[bisect_left(bounds, took)] += 1
                    timing.sum += took
                ai = record.ai
                if ai is not None:
                    key = _ai_key(ai)
                    model = self._models.get(key)
                    if model is None:
                        model = self._models[key] = _ModelCounts()
                    model.add(ai, latency)
                websocket = record.websocket
                if websocket is not None:
                    counts.add_websocket(websocket)
                mcp = record.mcp
                if mcp is not None:
                    self._mcp.add(mcp, record.route, record.consumer, latency)
            self.counted += len(batch)

    def status(self) -> dict[str, Any]:
        """For the worker's status document."""
        return {"counted": self.counted}

    def snapshot(self) -> Snapshot:
        """The counters so far, as plain numbers in plain containers (JSON-ready)."""
        with self._lock:
            return {
                "routes": {name or "": counts.snapshot() for name, counts in self._routes.items()},
                "targets": {
                    name or "": {"upstream": histogram.snapshot()}
                    for name, histogram in self._upstream.items()
                },
                "ai": {key: counts.snapshot() for key, counts in self._models.items()},
                "mcp": self._mcp.snapshot(),
            }


def metrics_output(settings: MetricsSettings) -> MetricsOutput | None:
    """The worker's request counters when ``metrics.requests`` asks for them."""
    return MetricsOutput() if settings.requests else None


def add(into: Snapshot, more: Snapshot) -> Snapshot:
    """Add the counters of ``more`` to ``into`` (and answer it): numbers are summed,
    lists element by element, mappings key by key."""
    for key, value in more.items():
        mine = into.get(key)
        if mine is None:
            into[key] = _copy(value)
        elif isinstance(value, dict):
            add(mine, value)
        elif isinstance(value, list):
            mine.extend([0] * (len(value) - len(mine)))
            for index, number in enumerate(value):
                mine[index] += number
        else:
            into[key] = mine + value
    return into


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return list(value)
    return value
