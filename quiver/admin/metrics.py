"""``GET /metrics``: the node's metrics in the Prometheus text format.

The admin API runs beside the workers, not in them: it reads what they wrote to
the run directory (:mod:`quiver.observe.node_metrics`) on every scrape, adds the
workers' counters up with those of the workers that ended, and renders them with
``prometheus_client`` through a collector of its own (no global registry, nothing
counted in this process).  Every series is documented in docs/observability.md
("Metrics"); the labels are names from the config and small fixed sets only.

A team-scoped token sees its team's series only: those labelled with its routes
and targets (names qualified ``team.``, or unqualified for ``default``), never
the node-wide ones (calls to models, dropped records, workers, reloads).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from quiver.admin.auth import caller
from quiver.admin.responses import problems
from quiver.calls.names import team_of
from quiver.observe.mcp_metrics import KEY_SEPARATOR as MCP_KEY_SEPARATOR
from quiver.observe.metrics import (
    AI_KEY_SEPARATOR,
    BUCKETS_MS,
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    TTFT_BUCKETS,
)
from quiver.observe.node_metrics import NodeMetrics, read_node
from quiver.store.tokens import TokenInfo

#: the ``le`` of each histogram bucket, in seconds (Prometheus' unit of time)
_LE = (*(repr(bound / 1000) for bound in BUCKETS_MS), "+Inf")
_BREAKER_STATES = ("closed", "open", "half_open")
_MCP_PARTS = ("messages", "tool_calls", "durations")


class NodeCollector(Collector):
    """The metrics of the node whose workers write to ``run_dir``, read at each collect:
    all of them, or those of ``team``'s routes and targets."""

    def __init__(self, run_dir: Path, team: str | None = None) -> None:
        self.run_dir = run_dir
        self.team = team

    def collect(self) -> Iterator[Metric]:
        node = read_node(self.run_dir)
        if self.team is not None:
            yield from _team_families(_team_view(node, self.team))
            return
        yield from _request_families(node.counters.get("routes") or {})
        yield _upstream_family(node)
        dropped = CounterMetricFamily(
            "quiver_log_dropped",
            "Records dropped because the queue of an output was full.",
            labels=["output"],
        )
        for output, count in sorted((node.counters.get("dropped") or {}).items()):
            dropped.add_metric([output], count)
        yield dropped
        yield from _ai_families(node.counters.get("ai") or {})
        yield from _mcp_families(node.counters.get("mcp") or {})
        yield from _websocket_families(node.counters.get("routes") or {}, node.workers)
        yield from _node_families(node.workers)
        yield from _process_families(node)


def _team_families(node: NodeMetrics) -> Iterator[Metric]:
    """The series of one team's routes and targets (``node`` holds only those)."""
    yield from _request_families(node.counters.get("routes") or {})
    yield _upstream_family(node)
    yield from _mcp_families(node.counters.get("mcp") or {})
    yield from _websocket_families(node.counters.get("routes") or {}, node.workers)
    yield from _node_families(node.workers)


def _team_view(node: NodeMetrics, team: str) -> NodeMetrics:
    """What of ``node`` belongs to ``team``: its routes' and targets' counters and
    gauges (an exchange no route matched is no team's)."""

    def owned(name: str) -> bool:
        return name != "" and team_of(name) == team

    def keyed(counts: dict[str, Any]) -> dict[str, Any]:
        """MCP counts, keyed by labels that begin with the route."""
        return {
            key: value for key, value in counts.items() if owned(key.split(MCP_KEY_SEPARATOR, 1)[0])
        }

    counters = node.counters
    mcp = counters.get("mcp") or {}
    kept = {
        "routes": {k: v for k, v in (counters.get("routes") or {}).items() if owned(k)},
        "targets": {k: v for k, v in (counters.get("targets") or {}).items() if owned(k)},
        "mcp": {part: keyed(mcp.get(part) or {}) for part in _MCP_PARTS},
    }
    workers = [
        {
            "websockets": {k: v for k, v in (worker.get("websockets") or {}).items() if owned(k)},
            "targets": {k: v for k, v in (worker.get("targets") or {}).items() if owned(k)},
        }
        for worker in node.workers
    ]
    return replace(node, counters=kept, workers=workers)


def _upstream_family(node: NodeMetrics) -> HistogramMetricFamily:
    return _histogram(
        "quiver_upstream_duration_seconds",
        "From the request sent to the node to the end of the exchange, by target.",
        "target",
        {name: entry["upstream"] for name, entry in (node.counters.get("targets") or {}).items()},
    )


def _request_families(routes: dict[str, Any]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "quiver_requests",
        'Exchanges ended, by route and status class (route "": none matched).',
        labels=["route", "status_class"],
    )
    retries = CounterMetricFamily(
        "quiver_retries", "Tries after the first, by route.", labels=["route"]
    )
    rejections = CounterMetricFamily(
        "quiver_rejections",
        "Requests a plugin refused (answered 4xx or 5xx itself), by route and plugin.",
        labels=["route", "plugin"],
    )
    cache = CounterMetricFamily(
        "quiver_cache",
        "What a cache plugin reported, by route and cache status.",
        labels=["route", "status"],
    )
    for route, entry in sorted(routes.items()):
        for status_class, count in sorted(entry["status"].items()):
            requests.add_metric([route, status_class], count)
        retries.add_metric([route], entry["retries"])
        for plugin, count in sorted(entry["rejections"].items()):
            rejections.add_metric([route, plugin], count)
        for status, count in sorted(entry["cache"].items()):
            cache.add_metric([route, status], count)
    yield requests
    duration = HistogramMetricFamily(
        "quiver_request_duration_seconds",
        "From the request head read to the end of the exchange, by route and status class.",
        labels=["route", "status_class"],
    )
    for route, entry in sorted(routes.items()):
        for status_class, histogram in sorted((entry.get("latencies") or {}).items()):
            _add_ms(duration, [route, status_class], histogram)
    yield duration
    yield from (retries, rejections, cache)


def _histogram(
    name: str, documentation: str, label: str, histograms: dict[str, Any]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in sorted(histograms.items()):
        _add_ms(family, [value], histogram)
    return family


_GEN_AI_LABELS = [
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
]


def _ai_families(models: dict[str, Any]) -> Iterator[Metric]:
    """Calls to models, named and labelled after the OpenTelemetry GenAI semantic
    conventions (gen_ai.client.token.usage, gen_ai.client.operation.duration,
    gen_ai.server.time_to_first_token; dots become underscores, seconds a suffix)."""
    tokens = HistogramMetricFamily(
        "gen_ai_client_token_usage",
        "Input and output tokens of the calls to models (gen_ai.client.token.usage).",
        labels=[*_GEN_AI_LABELS, "gen_ai_token_type"],
    )
    duration = HistogramMetricFamily(
        "gen_ai_client_operation_duration_seconds",
        "Calls to models from the request read to the end of the answer "
        "(gen_ai.client.operation.duration).",
        labels=_GEN_AI_LABELS,
    )
    ttft = HistogramMetricFamily(
        "gen_ai_server_time_to_first_token_seconds",
        "Time to the first token of streamed answers (gen_ai.server.time_to_first_token).",
        labels=_GEN_AI_LABELS,
    )
    cost = CounterMetricFamily(
        "quiver_ai_cost_usd",
        "US dollars spent on calls to models, at the models' prices.",
        labels=_GEN_AI_LABELS,
    )
    for key, entry in sorted(models.items()):
        labels = key.split(AI_KEY_SEPARATOR)
        if len(labels) != len(_GEN_AI_LABELS):
            continue
        for kind in ("input", "output"):
            _add(tokens, [*labels, kind], TOKEN_BUCKETS, entry[kind])
        _add(duration, labels, DURATION_BUCKETS, entry["duration"])
        if sum(entry["ttft"]["buckets"]):
            _add(ttft, labels, TTFT_BUCKETS, entry["ttft"])
        cost.add_metric(labels, entry["cost"])
    yield from (tokens, duration, ttft, cost)


def _add(
    family: HistogramMetricFamily,
    labels: list[str],
    bounds: tuple[float, ...],
    histogram: dict[str, Any],
) -> None:
    cumulative, buckets = 0, []
    for le, count in zip((*(repr(b) for b in bounds), "+Inf"), histogram["buckets"], strict=True):
        cumulative += count
        buckets.append((le, cumulative))
    family.add_metric(labels, buckets, histogram["sum"])


def _mcp_families(mcp: dict[str, Any]) -> Iterator[Metric]:
    """MCP messages and tool calls (labels held to a bound: quiver.observe.mcp_metrics)."""
    messages = CounterMetricFamily(
        "quiver_mcp_messages",
        "MCP messages answered, by route, JSON-RPC method and outcome.",
        labels=["route", "method", "outcome"],
    )
    tool_calls = CounterMetricFamily(
        "quiver_mcp_tool_calls",
        "MCP tool calls, by route, tool, consumer and outcome.",
        labels=["route", "tool", "consumer", "outcome"],
    )
    duration = HistogramMetricFamily(
        "quiver_mcp_tool_call_duration_seconds",
        "The time the MCP endpoint took over a tool call, by route and tool.",
        labels=["route", "tool"],
    )
    for family, counts, width in (
        (messages, mcp.get("messages") or {}, 3),
        (tool_calls, mcp.get("tool_calls") or {}, 4),
    ):
        for key, count in sorted(counts.items()):
            labels = key.split(MCP_KEY_SEPARATOR)
            if len(labels) == width:
                family.add_metric(labels, count)
    for key, histogram in sorted((mcp.get("durations") or {}).items()):
        labels = key.split(MCP_KEY_SEPARATOR)
        if len(labels) == 2:
            _add_ms(duration, labels, histogram)
    yield from (messages, tool_calls, duration)


def _add_ms(family: HistogramMetricFamily, labels: list[str], histogram: dict[str, Any]) -> None:
    """A histogram over BUCKETS_MS (milliseconds), in seconds."""
    cumulative, buckets = 0, []
    for le, count in zip(_LE, histogram["buckets"], strict=True):
        cumulative += count
        buckets.append((le, cumulative))
    family.add_metric(labels, buckets, histogram["sum"] / 1000)


def _websocket_families(routes: dict[str, Any], workers: list[dict[str, Any]]) -> Iterator[Metric]:
    """WebSocket connections open now (the workers' gauges), messages and closes."""
    connections = GaugeMetricFamily(
        "quiver_websocket_connections",
        "WebSocket connections open now, by route.",
        labels=["route"],
    )
    # (a route that had sockets shows 0 once they are all closed, rather than vanishing)
    open_now = {route: 0 for route, entry in routes.items() if entry.get("websocket")}
    for worker in workers:
        for route, count in (worker.get("websockets") or {}).items():
            open_now[route] = open_now.get(route, 0) + count
    for route, count in sorted(open_now.items()):
        connections.add_metric([route], count)
    messages = CounterMetricFamily(
        "quiver_websocket_messages",
        'WebSocket messages relayed, by route and direction ("in": from the client), '
        "on routes that read frames.",
        labels=["route", "direction"],
    )
    closes = CounterMetricFamily(
        "quiver_websocket_closes",
        "WebSocket connections closed, by route and close code (1006: no close frame), "
        "on routes that read frames.",
        labels=["route", "code"],
    )
    for route, entry in sorted(routes.items()):
        counts = entry.get("websocket") or {}
        for direction, count in sorted((counts.get("messages") or {}).items()):
            messages.add_metric([route, direction], count)
        for code, count in sorted((counts.get("closes") or {}).items()):
            closes.add_metric([route, code], count)
    yield from (connections, messages, closes)


def _node_families(workers: list[dict[str, Any]]) -> Iterator[Metric]:
    """Gauges of the workers' views of the nodes: each worker checks them on its own."""
    views: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for worker in workers:
        for target, nodes in (worker.get("targets") or {}).items():
            for node in nodes:
                views.setdefault((target, node["node"]), []).append(node)
    up = GaugeMetricFamily(
        "quiver_node_up",
        "Share of the workers that see the node up (1: all, 0: none).",
        labels=["target", "node"],
    )
    breaker = GaugeMetricFamily(
        "quiver_breaker_state",
        "Workers whose circuit breaker for the node is in the state.",
        labels=["target", "node", "state"],
    )
    in_flight = GaugeMetricFamily(
        "quiver_node_in_flight", "Requests on their way to the node.", labels=["target", "node"]
    )
    pool = GaugeMetricFamily(
        "quiver_pool_connections",
        "Pooled connections to the target's nodes, busy or idle.",
        labels=["target", "state"],
    )
    pools: dict[str, list[int]] = {}
    for (target, node), seen in sorted(views.items()):
        up.add_metric([target, node], sum(1 for view in seen if view["up"]) / len(seen))
        states = [view["breaker"] for view in seen if view["breaker"] is not None]
        if states:
            for state in _BREAKER_STATES:
                breaker.add_metric([target, node, state], states.count(state))
        in_flight.add_metric([target, node], sum(view["in_flight"] for view in seen))
        busy_idle = pools.setdefault(target, [0, 0])
        busy_idle[0] += sum(view["open"] - view["idle"] for view in seen)
        busy_idle[1] += sum(view["idle"] for view in seen)
    for target, (busy, idle) in pools.items():
        pool.add_metric([target, "busy"], busy)
        pool.add_metric([target, "idle"], idle)
    yield from (up, breaker, in_flight, pool)


def _process_families(node: NodeMetrics) -> Iterator[Metric]:
    yield GaugeMetricFamily("quiver_workers", "Worker processes running.", len(node.workers))
    yield CounterMetricFamily(
        "quiver_worker_restarts",
        "Workers that ended unasked and were started again.",
        node.worker_restarts,
    )
    yield CounterMetricFamily(
        "quiver_reloads", "Configs handed to the workers since the node started.", node.reloads
    )
    if node.revision is not None:
        yield GaugeMetricFamily(
            "quiver_config_revision", "The config store's revision served.", node.revision
        )


async def _nobody() -> None:
    """Public metrics: no token is asked for."""
    return None


#: who scrapes: a token's holder, or nobody in particular when the metrics are public
_Caller = Annotated[TokenInfo, Depends(caller)]
_Public = Annotated[None, Depends(_nobody)]


def router(run_dir: Path, *, public: bool) -> APIRouter:
    """``GET /metrics`` over the run directory ``run_dir``; with ``public``, no token
    (and every series to anyone)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(run_dir))
    api = APIRouter(tags=["metrics"])

    def render(request: Request, token: TokenInfo | None) -> Response:
        chosen = registry
        if token is not None and token.team is not None:
            chosen = CollectorRegistry(auto_describe=False)
            chosen.register(NodeCollector(run_dir, token.team))
        # the text format 0.0.4, or OpenMetrics when the scraper prefers it (Accept)
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(chosen), headers={"Content-Type": content_type})

    route = api.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text format, or OpenMetrics when asked",
                "content": {"text/plain": {}, "application/openmetrics-text": {}},
            },
            **(problems(401, 500) if not public else problems(500)),
        },
        summary="Prometheus metrics of the node (a team-scoped token: its team's series)",
    )
    if public:

        @route
        def public_metrics(request: Request, nobody: _Public) -> Response:
            return render(request, None)

    else:

        @route
        def metrics(request: Request, token: _Caller) -> Response:
            return render(request, token)

    return api
