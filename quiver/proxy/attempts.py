"""Tries of a request on a target's nodes: picking, connecting, retrying, reporting.

Each try picks a node (the balancer, then the node's breaker), sends the request on
a pooled or new connection, and reports how it ended to the node's health checks
and breaker.  A failed try is sent again when the route's retry policy allows it
(:mod:`quiver.proxy.retry`).  When every node of a target is out (health checks
ejected them all), the nodes are tried anyway rather than answering 503 at once,
as nginx and Envoy's panic mode do: a wrong verdict of the checks then costs a
failed try, not an outage.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import TYPE_CHECKING

from quiver.errors import HTTPError, PluginError, ServiceUnavailable, UpstreamResetError
from quiver.proxy.balancing.ewma import record_latency
from quiver.proxy.flow import PAUSE_BUFFER
from quiver.proxy.request import IDEMPOTENT_METHODS
from quiver.proxy.tracecontext import try_failed

if TYPE_CHECKING:
    from quiver.http.tracecontext import TraceContext
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.health import Outcome
    from quiver.proxy.snapshot import RouteRuntime
    from quiver.proxy.upstream import Node, UpstreamConnection

log = logging.getLogger("quiver.exchange")

FAILURE_LATENCY = 1.0  # seconds a failed try counts as, for latency-aware balancing
LOG_INTERVAL = 1.0  # seconds between two lines about one node's failures
REPLAY_LIMIT = 1 << 20  # request bodies up to this size are kept so a retry can resend them


class Attempts:
    """The upstream side of an exchange (mixed into ``Exchange``)."""

    node: Node | None = None
    upstream: UpstreamConnection | None = None
    connect_task: asyncio.Task[None] | None = None
    reused = True  # the try's connection came from the pool (read once attached)
    attempt = 1  # tries so far, this one included
    started_at = 0.0  # loop time of the first try, for the retry deadline
    avoid: Node | None = None  # the node that just failed, not to be picked again
    replay: list[bytes] | None = None  # the body as sent so far, kept to send it again
    replay_size = 0
    replay_lost = False  # the body outgrew what is kept: it cannot be sent again
    retry_handle: asyncio.TimerHandle | None = None
    sent_at = 0.0  # loop time the request went to the node (for latency-aware balancing)
    #: when the request went to the node (time.monotonic: the loop's clock counts
    #: milliseconds only), for the exchange's record
    upstream_at = 0.0
    #: when a sampled exchange's try began to connect (time.monotonic; 0: it took a
    #: pooled connection), for the try's span
    connecting_at = 0.0
    #: this try's outcome went to the node's health and breaker (once per try: an
    #: admission by the breaker ends in exactly one outcome or release)
    reported = False
    body_buffer: list[bytes] | None = None  # body held until a connection is attached
    buffered = 0

    if TYPE_CHECKING:
        client: ClientConnection
        route: RouteRuntime | None
        trace: TraceContext | None
        rid: bytes
        method: bytes
        began: float
        finished: bool
        request_done: bool
        response_started: bool

        @property
        def has_body(self) -> bool: ...

        def fail(self, error: HTTPError) -> None: ...
        def get(self, name: bytes, default: bytes | None = None) -> bytes | None: ...
        @property
        def replayable(self) -> bool: ...

    def _send_to_node(self) -> None:
        """Pick a node and send the request on a pooled or new connection."""
        target = self.route.target  # type: ignore[union-attr]
        node = target.only_node
        if node is None or not node.up or node.breaker is not None:
            # (a lone node without a breaker is taken inline: no call on the hot path)
            now = self.client.server.loop.time()
            node = target.choose(self, self.avoid, now)  # type: ignore[arg-type]
            if node is None:
                raise ServiceUnavailable(f"target {target.name!r} has no healthy node")
        self.node = node
        pool = node.pool
        assert pool is not None
        idle = pool.idle
        conn = idle.pop() if idle else None  # the most recently used connection
        if conn is not None and (conn.transport is None or conn.transport.is_closing()):
            conn = pool.take_idle()  # that one is going away: try the others
        if conn is not None:
            self._attach(conn, reused=True)
        else:
            self.connect_task = self.client.server.loop.create_task(self._connect(node))

    def _report(self, outcome: Outcome) -> None:
        """Tell the node's health checks and breaker how this try ended."""
        node = self.node
        if node is not None and node.health is not None:
            node.health.record(outcome, self.client.server.loop.time())
            self.reported = True

    def _keep_for_replay(self, parts: tuple[bytes, ...]) -> None:
        route = self.route
        if route is None or route.retries is None:
            self.replay_lost = True  # no retries: nothing to keep
            return
        self.replay_size += sum(len(part) for part in parts)
        if self.replay_size > REPLAY_LIMIT:
            self.replay_lost = True
            self.replay = None
            return
        if self.replay is None:
            self.replay = []
        self.replay.extend(parts)

    async def _connect(self, node: Node) -> None:
        assert node.pool is not None
        if self.trace is not None and not self.connecting_at:  # sampled: its try begins
            self.connecting_at = monotonic()
        try:
            conn = await node.pool.connect()
        except HTTPError as exc:
            self.connect_task = None
            self._upstream_error(exc)
            return
        self.connect_task = None
        if self.finished:
            node.pool.release(conn)
            return
        self._attach(conn, reused=False)

    def _attach(self, conn: UpstreamConnection, *, reused: bool) -> None:
        route = self.route
        node = self.node
        assert route is not None and node is not None
        self.upstream = conn
        if reused is not self.reused:  # (set only when it changes: most tries reuse one)
            self.reused = reused
        node.in_flight += 1
        if self.began:  # (the exchange keeps a record: when it went to the node is in it)
            self.upstream_at = monotonic()
        if route.target.tracks_latency:
            self.sent_at = self.client.server.loop.time()
        head = route.request_head(self, node)  # type: ignore[arg-type]
        if self.attempt > 1 and self.replay:
            head = b"".join((head, *self.replay))  # a retry: the whole body so far again
            self.body_buffer = None
            self.buffered = 0
            self.client.resume_reading_for(PAUSE_BUFFER)
        elif self.body_buffer:
            head = b"".join((head, *self.body_buffer))
            self.body_buffer = None
            self.buffered = 0
            self.client.resume_reading_for(PAUSE_BUFFER)
        conn.send(self, head, self.request_done, route.read_timeout)  # type: ignore[arg-type]

    def _response_arrived(self, status: int) -> None:
        target = self.route.target  # type: ignore[union-attr]
        if target.tracks_latency and self.node is not None:
            now = self.client.server.loop.time()
            record_latency(self.node, now - self.sent_at, now)
        if target.guarded:
            if status in target.failure_statuses:
                self._report("failure")
            elif self.node is not None and self.node.health.wants_success:
                self._report("ok")

    def on_upstream_failed(self, conn: UpstreamConnection, error: HTTPError) -> None:
        if self.upstream is conn:
            self._detach()
        if self.finished:
            return
        if (
            self.reused
            and isinstance(error, UpstreamResetError)
            and not self.response_started
            and self.replayable
            and self.node is not None
        ):
            # A pooled connection the node had already closed: the request never
            # reached it, so a fresh connection is safe (RFC 9112 §9.3.1).
            self.reused = False
            self.connect_task = self.client.server.loop.create_task(self._connect(self.node))
            return
        self._upstream_error(error)

    def _upstream_error(self, error: HTTPError) -> None:
        """A try failed: try again when the route allows it, else answer the error."""
        kind = error.retry_kind
        target = self.route.target if self.route is not None else None
        if isinstance(error, (ServiceUnavailable, PluginError)):
            # a full pool of our own, or a plugin's fault, says nothing about the node:
            # the breaker gets its admission back
            self._release_admission()
        elif target is not None:
            if self.trace is not None:  # sampled: the failed try is a span of its own
                try_failed(self, kind or type(error).__name__)  # type: ignore[arg-type]
            if self.node is not None and log.isEnabledFor(logging.WARNING):
                self._log_failure(target.name, self.node, error)
            if target.guarded and not self.reported:
                self._report("timeout" if kind == "timeout" else "failure")
            if target.tracks_latency and self.node is not None:
                # a node that fails fast must not look fast: count a failure as slow
                now = self.client.server.loop.time()
                record_latency(self.node, FAILURE_LATENCY, now)
        if kind is None or not self._retry(kind):
            self.fail(error)

    def _log_failure(self, target: str, node: Node, error: HTTPError) -> None:
        """A line per node and second at most for the same failure, however fast its
        requests fail (a node down under load would otherwise write a line per
        request); a different failure is told at once."""
        now = self.client.server.loop.time()
        what = error.internal or error.detail
        if now < node.quiet_until and what == node.last_failure:
            node.quieted += 1
            return
        folded = f" ({node.quieted} more like it since)" if node.quieted else ""
        log.warning(
            "request %s to target %r (node %s): %s%s",
            self.rid.decode("latin-1"),
            target,
            node.label,
            what,
            folded,
        )
        node.quiet_until = now + LOG_INTERVAL
        node.quieted = 0
        node.last_failure = what

    def _retry(self, kind: str) -> bool:
        """Schedule another try after a failure of ``kind``; False when none is allowed."""
        route = self.route
        policy = route.retries if route is not None else None
        if (
            policy is None
            or self.response_started
            or self.attempt >= policy.attempts
            or kind not in policy.kinds
            or (self.has_body and (self.replay_lost or self.replay is None))
        ):
            return False
        if not policy.all_methods and not (
            self.method in IDEMPOTENT_METHODS or self.get(b"idempotency-key") is not None
        ):
            return False
        loop = self.client.server.loop
        delay = policy.delay(self.attempt)
        if policy.deadline is not None and loop.time() + delay > self.started_at + policy.deadline:
            return False
        if not policy.budget.allow():
            return False
        if self.trace is not None:  # sampled: the next try is a span of its own
            self.client.server.tracing.retry(self, kind)  # type: ignore[union-attr,arg-type]
        self.attempt += 1
        self.avoid = self.node
        self.reported = False  # the next try is admitted and reported on its own
        self.retry_handle = loop.call_later(delay, self._try_again)
        return True

    def _try_again(self) -> None:
        self.retry_handle = None
        if self.finished:
            return
        try:
            self._send_to_node()
        except HTTPError as exc:
            self.fail(exc)

    def _detach(self) -> UpstreamConnection | None:
        """The try is done with its connection: the node has one request fewer in flight."""
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            self.node.in_flight -= 1  # type: ignore[union-attr]
        return upstream

    def _release_admission(self) -> None:
        node = self.node
        if node is not None and node.breaker is not None and not self.reported:
            node.breaker.release()
            self.reported = True

    def cancel_upstream(self) -> None:
        if self.upstream is not None or self.connect_task is not None:
            self._release_admission()  # the client left: says nothing of the node
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        upstream = self._detach()
        if upstream is not None:
            upstream.abort()
