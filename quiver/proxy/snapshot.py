"""A validated config compiled into what the data plane reads per request.

Everything that can be decided once per config is decided here: the route table,
each target's nodes and balancer, base paths and header bytes.  A snapshot is
never mutated; a new config produces a new snapshot that replaces the old one in
a single assignment.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from quiver.config.effective import effective_pool, effective_timeouts
from quiver.config.models import Config, Limits, Route, Target
from quiver.config.resilience import RetryBudget as RetryBudgetSettings
from quiver.errors import BadRequest, ConfigError, ConfigIssue
from quiver.plugins.base import PluginContext
from quiver.plugins.catalog import Catalog
from quiver.plugins.chain import Chain, attached, scopes
from quiver.plugins.chain import build as build_plugins
from quiver.plugins.consumers import Consumers
from quiver.plugins.outbound import Outbound
from quiver.plugins.responder import HTTP_TARGET, TargetType, answers_errors
from quiver.plugins.stores import Stores
from quiver.proxy.balancing import RequestKeys, make_balancer
from quiver.proxy.capture import CallCapture
from quiver.proxy.health import watch_nodes
from quiver.proxy.plain import plain
from quiver.proxy.products import Products
from quiver.proxy.redirects import Redirects
from quiver.proxy.request import host_for_routing
from quiver.proxy.retry import RetryBudget, RetryPolicy
from quiver.proxy.routing import RouteMatch, Router, normalize_path
from quiver.proxy.routing.matcher import STEP
from quiver.proxy.sse import SSEWatch
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.tls import upstream_context
from quiver.proxy.upstream import Node, NodePool

if TYPE_CHECKING:
    from quiver.proxy.exchange import Exchange

log = logging.getLogger("quiver.snapshot")

_VIA = b"\r\nVia: 1.1 quiver\r\n\r\n"


class TargetRuntime:
    __slots__ = (
        "answer_timeout",
        "balancer",
        "base_path",
        "budget",
        "checker",
        "failure_statuses",
        "guarded",
        "name",
        "nodes",
        "only_node",
        "random",
        "responder",
        "retry_settings",
        "rotation",
        "settings",
        "tracks_latency",
        "weighted",
    )

    def __init__(
        self, target: Target, nodes: list[Node], base_path: bytes, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.name = target.name
        self.nodes = nodes
        self.base_path = base_path
        self.retry_settings = target.retries
        budget = target.retries.budget if target.retries is not None else RetryBudgetSettings()
        self.budget = RetryBudget(budget.ratio, budget.min_per_second)
        self.random = random.Random()
        self.balancer = make_balancer(target.balance, nodes, clock=loop.time)
        #: the node when there is just one: no balancing to do
        self.only_node = nodes[0] if len(nodes) == 1 and nodes[0].weight else None
        #: the nodes that take traffic at all (weight above 0), for panic_pick
        self.weighted = tuple(node for node in nodes if node.weight)
        self.tracks_latency = target.balance.algorithm == "ewma"
        #: probes of the nodes, when active health checks are on (started by the server)
        self.checker = watch_nodes(nodes, loop, target.health_check, target.circuit_breaker)
        #: outcomes are reported to the nodes' health and breakers
        self.guarded = any(node.health is not None for node in nodes)
        passive = target.health_check.passive if target.health_check is not None else None
        if passive is not None:
            statuses: Iterable[int] = passive.statuses
        else:  # a breaker alone counts server errors as failures
            statuses = (502, 503, 504) if target.circuit_breaker is not None else ()
        self.failure_statuses = frozenset(statuses)
        self.settings: tuple[object, ...] = ()
        #: answers its routes inside the worker (a target type other than "http")
        self.responder: TargetType[Any] | None = None
        self.rotation = 0
        #: how long an in-process responder may take to answer (timeouts.read)
        self.answer_timeout = 60.0

    def choose(self, request: RequestKeys, avoid: Node | None, now: float) -> Node | None:
        """The node for one try of ``request``, admitted by its breaker; None when
        there is none.  ``avoid`` is the node that just failed; ``now`` is loop time.

        The only node when it is up, else the balancer's pick, else (health checks
        ejected every node) :meth:`panic_pick`.  A node whose breaker refuses is
        traded for the balancer's next pick, once.  An admitted node's try must end
        in one outcome reported to ``node.health`` or in ``node.breaker.release()``.
        """
        node = self.only_node
        if node is None or not node.up:
            node = self.balancer.pick(request, avoid)
            if node is None:
                node = self.panic_pick(avoid)
        if node is not None and node.breaker is not None and not node.breaker.admit(now):
            node = self.balancer.pick(request, node)
            if node is not None and node.breaker is not None and not node.breaker.admit(now):
                return None
        return node

    def panic_pick(self, avoid: Node | None) -> Node | None:
        """A node when the balancer has none up: health checks have ejected them all.
        Trying them anyway (in turn) beats answering 503 on a verdict that may be
        wrong; a node kept out by its open breaker still refuses at admission."""
        nodes = [node for node in self.weighted if node is not avoid]
        if not nodes:
            return avoid if avoid is not None and avoid.weight else None
        self.rotation += 1
        return nodes[self.rotation % len(nodes)]

    def close(self) -> None:
        if self.responder is not None:
            try:
                self.responder.close()
            except Exception:  # its code, not ours: the rest still closes
                log.exception("in-process target %r failed to close", self.name)
        if self.checker is not None:
            self.checker.stop()
        for node in self.nodes:
            if node.health is not None:
                node.health.close()
            if node.pool is not None:
                node.pool.close()


class RouteRuntime:
    """A route with its target resolved and its forwarding rules precomputed."""

    __slots__ = (
        "base_path",
        "chain",
        "error_answers",
        "holds_body",
        "http_route",
        "name",
        "preserve_host",
        "read_timeout",
        "redirects",
        "responder",
        "retries",
        "target",
        "websocket",
    )

    def __init__(self, route: Route, target: TargetRuntime, chain: Chain | None = None) -> None:
        self.name = route.name
        #: its path pattern, for the spans' ``http.route`` (None: several, or a regex)
        self.http_route = _http_route(route.paths)
        #: limits and drain of the route's WebSocket connections (None: plain tunnels)
        self.websocket = route.websocket
        #: the phases of the route's plugins, each in the order they run
        self.chain = chain if chain is not None else Chain(())
        self.target = target
        #: None: a node of the target answers; else the in-process target does
        self.responder = responder = target.responder
        #: the responder that states the gateway's errors on this route its own way
        #: (its type defines ``error_answer``); None: problem documents
        self.error_answers = (
            responder if responder is not None and answers_errors(responder) else None
        )
        #: the request body is read whole before it goes on (plugins or responder read it)
        self.holds_body = self.chain.holds_body or self.responder is not None
        self.redirects = _redirects(route, target)
        self.base_path = target.base_path
        self.preserve_host = route.preserve_host
        settings = route.retries or target.retry_settings
        self.retries = (
            RetryPolicy(settings, target.budget, target.random) if settings is not None else None
        )
        #: a try's read timeout when the retries set one (None: the target's timeouts.read)
        self.read_timeout = self.retries.per_try_timeout if self.retries is not None else None

    def request_head(self, exchange: Exchange, node: Node) -> bytes:
        """The request line and header block sent to ``node``."""
        if self.preserve_host and exchange.host_header:
            host_line = b" HTTP/1.1\r\nHost: " + exchange.host_header + b"\r\n"
        else:
            host_line = node.request_line_tail
        parts = [exchange.method, b" ", exchange.upstream_path, host_line]
        for name, value in exchange.forward:
            parts += (name, b": ", value, b"\r\n")
        if exchange.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif exchange.content_length is not None:
            parts.append(b"Content-Length: %d\r\n" % exchange.content_length)
        if exchange.upgrade is not None:
            parts += (b"Connection: Upgrade\r\nUpgrade: ", exchange.upgrade, b"\r\n")
        client = exchange.client
        if exchange.xff is None:
            parts.append(client.forwarded)
        else:
            parts += (b"X-Forwarded-For: ", exchange.xff, b", ", client.peer, b"\r\n")
            parts += (b"X-Forwarded-Proto: ", client.scheme, b"\r\n")
        if exchange.host_header:
            parts += (b"X-Forwarded-Host: ", exchange.host_header, b"\r\n")
        parts += (b"X-Request-ID: ", exchange.rid, _VIA)
        return b"".join(parts)


Resolved = tuple[bytes, "RouteMatch[RouteRuntime] | None"]
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: Config
    limits: Limits
    router: Router[RouteRuntime]
    targets: dict[str, TargetRuntime]
    # (method, Host as sent, path as sent) -> (normalized path, match or None).  Most
    # traffic repeats a few paths; a hit skips normalizing, host checks and routing.
    route_cache: dict[tuple[bytes, bytes | None, bytes], Resolved] = field(default_factory=dict)

    def resolve(self, exchange: Exchange) -> Resolved:
        """Where a request goes: ``(upstream path, match)``, or ``(path, None)`` if nowhere.

        The upstream path is the target's base path joined to the route's path (query
        not included). Raises BadRequest when the path or Host is malformed.
        """
        key = (exchange.method, exchange.host_header, exchange.raw_path)
        resolved = self.route_cache.get(key)
        if resolved is not None:
            return resolved
        path = normalize_path(exchange.raw_path)
        if path is None:
            raise BadRequest("malformed request path")
        host = host_for_routing(exchange.host_header) if exchange.host_header else b""
        router = self.router
        match = router.match(exchange.method, host, path, exchange)
        resolved = (path, None) if match is None else (match.value.base_path + match.path, match)
        if not router.depends_on_headers:
            cache = self.route_cache
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[key] = resolved
        return resolved

    def close(self) -> None:
        for target in self.targets.values():
            target.close()


def compile_snapshot(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    sweeper: Sweeper,
    previous: Snapshot | None = None,
    catalog: Catalog | None = None,
    outbound: Outbound | None = None,
    stores: Stores | None = None,
) -> Snapshot:
    """Compile ``config``, building its plugins and in-process targets from ``catalog``
    (none without one); targets whose settings did not change are taken over from
    ``previous`` whole, with their pooled connections and health state.  Plugins get
    ``outbound`` for requests of their own and the worker's ``stores``."""
    steps = compile_steps(config, loop, sweeper, previous, catalog, outbound, stores)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            snapshot: Snapshot = done.value
            return snapshot


Steps = Generator[None, None, Snapshot]


def compile_steps(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    sweeper: Sweeper,
    previous: Snapshot | None = None,
    catalog: Catalog | None = None,
    outbound: Outbound | None = None,
    stores: Stores | None = None,
) -> Steps:
    """:func:`compile_snapshot` a few routes at a time: the generator pauses (yields)
    after every ``STEP`` routes or targets and returns the snapshot.  A reload drives it
    from the event loop, letting requests through between steps
    (:mod:`quiver.proxy.reload`); closing it before the end closes the targets it built."""
    catalog = catalog if catalog is not None else Catalog()
    context = PluginContext(
        consumers=Consumers(config.consumers),
        limits=config.limits,
        outbound=outbound,
        stores=stores if stores is not None else Stores(loop=loop),
    )
    targets: dict[str, TargetRuntime] = {}
    built: list[TargetRuntime] = []  # made for this config (not taken over)
    try:
        for index, target in enumerate(config.targets):
            if index % STEP == STEP - 1:
                yield
            settings = _target_settings(config, target)
            kept = previous.targets.get(target.name) if previous is not None else None
            if target.type != HTTP_TARGET:
                # (its responder was built with the consumers and limits: they count too)
                settings = (*settings, tuple(config.consumers), config.limits)
            if kept is not None and kept.settings == settings:
                targets[target.name] = kept  # with its pools, or its responder, as they are
                continue
            if target.type != HTTP_TARGET:
                runtime = _in_process_target(config, target, index, catalog, context, loop)
                runtime.settings = settings
            else:
                runtime = _compile_target(config, target, loop, sweeper)
            built.append(runtime)
            targets[target.name] = runtime
        models = {target.name: target for target in config.targets}
        # a consumer's plugins are built once and shared by every route's chain
        by_consumer = {
            c.name: build_plugins(c.plugins, context, catalog, f"consumer:{c.name}")
            for c in config.consumers
            if c.plugins
        }
        products = Products(config, catalog)
        entries = []
        for index, route in enumerate(config.routes):
            if index % STEP == STEP - 1:
                yield
            target_name = route.target
            assert target_name is not None  # (an AI route was given its target by the config)
            attached_here = attached(config, models[target_name], route)
            where = scopes(config, models[target_name], route)
            plugins = build_plugins(attached_here, context, catalog, where)
            if route.call_log is not None and route.call_log.bodies:
                plugins[CallCapture.name] = CallCapture(route.call_log, context)
            if route.sse is not None and route.sse.heartbeat is not None:
                plugins[SSEWatch.name] = SSEWatch(route.sse, context)
            if route.name in products.apis:  # (no cost for a route in no API)
                plugins = products.add(route.name, plugins, context)
            chain = Chain(plugins.values()).with_consumers(by_consumer)
            entries.append((route, RouteRuntime(route, targets[target_name], chain)))
        router = yield from Router.in_steps(entries)
    except BaseException:
        close_all(built)  # a config that does not compile leaves nothing open behind
        raise
    return Snapshot(config=config, limits=plain(config.limits), router=router, targets=targets)


def close_all(targets: list[TargetRuntime]) -> None:
    """Stop the targets' probes, timers and pools (and in-process responders)."""
    for target in targets:
        target.close()


def _target_settings(config: Config, target: Target) -> tuple[object, ...]:
    """Everything a compiled target depends on, for telling whether it changed."""
    return (target, effective_timeouts(config, target), effective_pool(config, target))


def _compile_target(
    config: Config, target: Target, loop: asyncio.AbstractEventLoop, sweeper: Sweeper
) -> TargetRuntime:
    timeouts = effective_timeouts(config, target)
    pool = effective_pool(config, target)
    context = None
    nodes = []
    # every node of a target serves the same API: the first URL's path is the base
    base_path = urlsplit(target.node_list[0].url).path.rstrip("/").encode()
    for spec in target.node_list:
        parts = urlsplit(spec.url)
        https = parts.scheme == "https"
        if https and context is None:
            context = upstream_context(target)
        host = parts.hostname or ""
        default_port = 443 if https else 80
        node = Node(
            host,
            parts.port or default_port,
            weight=spec.weight,
            ssl_context=context if https else None,
            server_hostname=(target.tls_server_name or host) if https else None,
            default_port=default_port,
            target=target.name,
        )
        node.pool = NodePool(node, plain(pool), plain(timeouts), loop, sweeper)
        nodes.append(node)
    runtime = TargetRuntime(target, nodes, base_path, loop)
    runtime.settings = _target_settings(config, target)
    return runtime


def _in_process_target(
    config: Config,
    target: Target,
    index: int,
    catalog: Catalog,
    context: PluginContext,
    loop: asyncio.AbstractEventLoop,
) -> TargetRuntime:
    """A target answered inside the worker by its type's responder.

    Config validation checks the type and options against the catalog first; this
    check is for a config built without it (``Config.model_validate``)."""
    kind = catalog.target_type(target.type)
    where = f"targets[{index}]"
    if kind is None:
        known = ", ".join([HTTP_TARGET, *sorted(catalog.target_type_names())])
        raise ConfigError(
            [ConfigIssue(f"{where}.type", f"unknown target type {target.type!r}; known: {known}")]
        )
    try:
        options = kind.Options.model_validate(target.options)
    except ValidationError as exc:
        issues = [
            ConfigIssue(
                ".".join([f"{where}.options", *(str(p) for p in error["loc"])]), error["msg"]
            )
            for error in exc.errors()
        ]
        raise ConfigError(issues) from exc
    runtime = TargetRuntime(target, [], b"", loop)
    runtime.responder = kind(options, context)
    runtime.answer_timeout = effective_timeouts(config, target).read
    return runtime


def _http_route(paths: list[str]) -> str | None:
    """The route's one path pattern as written (``=`` dropped), which the semantic
    conventions' ``http.route`` is; None for a regex, or when there are several
    (which one matched is not kept)."""
    if len(paths) != 1 or paths[0].startswith("~"):
        return None
    return paths[0].removeprefix("=")


def _redirects(route: Route, target: TargetRuntime) -> Redirects | None:
    """How the route maps the URLs its nodes answer with back to the client's view."""
    if route.redirects == "off" or target.responder is not None:
        return None
    if route.redirects != "auto":
        return Redirects(rules=[(r.from_.encode(), r.to.encode()) for r in route.redirects])
    origins: list[bytes] = []
    for node in target.nodes:
        scheme = b"https://" if node.ssl is not None else b"http://"
        origins += (scheme + node.label.encode(), scheme + node.host_header)
    return Redirects(origins)
