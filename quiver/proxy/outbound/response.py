"""The gateway's own HTTP client, over the same pools as proxied traffic.

Every request Quiver makes on its own behalf (a JWK Set, a token introspection, a
health probe) goes through :class:`OutboundClient`, one per worker, which plugins
receive as ``PluginContext.outbound`` (see :mod:`quiver.plugins.outbound`)::

    client = OutboundClient(loop, sweeper, targets=lambda: state.snapshot.targets)
    response = await client.request("GET", "https://idp.example/jwks", timeout=5)
    keys = await response.read(limit=1 << 20)
    async with await client.request("POST", "target://billing/events", body=b"{}") as r:
        async for chunk in r.stream():
            ...

A plain URL is sent over a keep-alive pool for its origin (scheme, host, port and
CA file), made when first needed; the least recently used origin is dropped past
``max_origins``.  ``target://NAME/path`` goes to a target of the live config: its
balancer picks the node, its breakers admit the request, the outcome feeds its
health checks, and a node that cannot be reached is traded for another one.

A :class:`Response` is what the pooled connection calls back, as it calls back a
proxied exchange: it is handed the head whole, then the decoded body chunks, then
the end; it buffers up to ``_HIGH_WATER`` bytes before pausing the node.  The
connection goes back to its pool once the body was read to its end, and is
dropped when the response is closed before.  Every failure is a
:class:`~quiver.errors.GatewayError`, never an ``OSError`` or a parser error.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

from quiver.config.models import Pool, Timeouts
from quiver.errors import (
    BadGateway,
    GatewayTimeout,
    HTTPError,
    ServiceUnavailable,
    UpstreamResetError,
)
from quiver.proxy.balancing.ewma import record_latency
from quiver.proxy.flow import NO_BODY
from quiver.proxy.plain import plain
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.tls import client_context
from quiver.proxy.upstream import Node, NodePool, UpstreamConnection

if TYPE_CHECKING:
    from quiver.proxy.snapshot import TargetRuntime

USER_AGENT = "quiver"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: body bytes buffered before the node is paused, and below which it resumes
_HIGH_WATER = 1 << 18
_LOW_WATER = 1 << 16
#: a target request tries at most this many nodes when it cannot reach one
_MAX_TRIES = 3
#: seconds a failure counts as for latency-aware balancing: a node that fails fast
#: must not look fast (as for proxied requests)
_FAILURE_LATENCY = 1.0
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # a field name (RFC 9110 §5.6.2)
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")
_OWN_FIELDS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_FRAMED = re.compile(rb"\r\n(?:content-length|transfer-encoding)[ \t]*:", re.I)


class _Decoding:
    """Stands for a plugin chain with a response-body phase: it makes the connection
    parse the body and hand it over decoded (``on_response_body``)."""

    response_body = (None,)


_DECODING = _Decoding()


class Response:
    """One request on one pooled connection, and its response as it arrives."""

    __slots__ = (
        "_waiter",
        "buffered",
        "chunks",
        "conn",
        "deadline",
        "ended",
        "error",
        "head",
        "headers",
        "label",
        "loop",
        "method",
        "node",
        "paused",
        "reported",
        "reused",
        "sent_at",
        "stale",
        "status",
        "target",
        "timeout",
    )

    # what a pooled connection reads of the exchange it serves (see quiver.proxy.upstream)
    mode = NO_BODY  # the body is neither relayed nor wrapped: it comes decoded
    out: list[bytes] = []  # (never filled: only RELAY and WRAP_CHUNKS bodies go there)
    rid = b"-"  # the gateway's own request: no client request id
    version = b"1.1"
    chain = _DECODING
    request_done = True  # the request is written whole at once

    def __init__(
        self,
        node: Node,
        method: bytes,
        head: bytes,
        *,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
        label: str,
        target: TargetRuntime | None = None,
    ) -> None:
        self.node = node
        self.method = method
        self.head = head  # the request, body included
        self.loop = loop
        self.timeout = timeout
        self.deadline = loop.time() + timeout if timeout is not None else None
        self.label = label
        self.target = target
        self.conn: UpstreamConnection | None = None
        self.reused = False
        self.stale = False
        self.sent_at = 0.0
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.ended = False
        self.error: HTTPError | None = None
        self.reported = False  # a target's health was told how the request went
        self._waiter: asyncio.Future[None] | None = None

    # -- OutboundResponse -------------------------------------------------------------

    def header(self, name: str) -> str | None:
        lower = name.lower()
        values = [value for field, value in self.headers if field.lower() == lower]
        return ", ".join(values) if values else None

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._next()
            if chunk is None:
                return
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        parts = []
        size = 0
        while (chunk := await self._next()) is not None:
            size += len(chunk)
            if limit is not None and size > limit:
                self.close()
                raise BadGateway(f"{self.label} answered more than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.chunks.clear()
            conn = self._detach()
            if conn is not None:
                conn.abort()
            self._release()  # abandoned before the head: it says nothing of the node

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending ----------------------------------------------------------------------

    async def send(self, *, retry_stale: bool) -> None:
        """Send on an idle pooled connection or a new one; return once the head is in."""
        pool = self.node.pool
        assert pool is not None
        while True:
            conn = pool.take_idle()
            self.reused = conn is not None
            if conn is None:
                conn = await self._connect(pool)
                if conn.transport is None:  # closed by the node as soon as it was opened
                    self._report("failure")
                    raise UpstreamResetError(f"{self.label} closed the connection")
            self.conn = conn
            self.node.in_flight += 1
            if self.target is not None and self.target.tracks_latency:
                self.sent_at = self.loop.time()
            conn.send(self, self.head, True)
            while not self.status and self.error is None and not self.stale:
                await self._wait()
            if not self.stale:
                break
            # a pooled connection the node had closed: the request never reached it
            # (RFC 9112 §9.3.1), so a fresh connection is safe for an idempotent one
            self.stale = False
            if not retry_stale:
                self._release()
                raise UpstreamResetError(f"{self.label} closed the connection")
            retry_stale = False
        if self.error is not None:
            raise self.error

    async def _connect(self, pool: NodePool) -> UpstreamConnection:
        try:
            if self.deadline is None:
                return await pool.connect()
            async with asyncio.timeout_at(self.deadline):
                return await pool.connect()
        except TimeoutError:
            self._report("timeout")
            raise self._timed_out() from None
        except ServiceUnavailable:
            self._release()  # our own pool is full: that says nothing of the node
            raise
        except HTTPError as exc:
            self._report("timeout" if exc.retry_kind == "timeout" else "failure")
            raise
        except asyncio.CancelledError:
            self._release()
            raise

    async def _wait(self) -> None:
        waiter = self._waiter = self.loop.create_future()
        try:
            if self.deadline is None:
                await waiter
            else:
                async with asyncio.timeout_at(self.deadline):
                    await waiter
        except TimeoutError:
            if not self.status:
                self._report("timeout")
            self.close()
            raise self._timed_out() from None
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._waiter = None

    def _timed_out(self) -> GatewayTimeout:
        return GatewayTimeout(f"{self.label} did not answer within {self.timeout:g}s")

    async def _next(self) -> bytes | None:
        chunks = self.chunks
        while not chunks:
            if self.error is not None:
                raise self.error
            if self.ended:
                return None
            await self._wait()
        chunk = chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered < _LOW_WATER:
            self.paused = False
            if self.conn is not None:
                self.conn.resume_reading()
        return chunk

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _detach(self) -> UpstreamConnection | None:
        conn = self.conn
        if conn is not None:
            self.conn = None
            self.node.in_flight -= 1
        return conn

    def _release(self) -> None:
        """Give back a target node's breaker admission that no outcome will use."""
        breaker = self.node.breaker
        if not self.reported and self.target is not None and breaker is not None:
            self.reported = True
            breaker.release()

    def _report(self, outcome: str) -> None:
        """Tell a target's health checks and breaker how the request went."""
        target, node = self.target, self.node
        if target is None:
            return
        self.reported = True
        if target.tracks_latency:
            now = self.loop.time()
            latency = now - self.sent_at if outcome == "ok" else _FAILURE_LATENCY
            record_latency(node, latency, now)
        health = node.health
        if target.guarded and health is not None:
            if outcome == "ok" and not health.wants_success:
                return
            health.record(outcome, self.loop.time())

    # -- called back by the pooled connection -----------------------------------------

    def on_response_head(self, conn: UpstreamConnection, status: int, raw: bytes) -> bool:
        if status == 101:
            self.error = BadGateway(f"{self.label} switched protocols without being asked")
            self._report("failure")
            self._detach()
            conn.abort()
            self._wake()
            return False
        self.status = status
        if self.target is not None:
            self._report("failure" if status in self.target.failure_statuses else "ok")
        lines = raw.decode("latin-1").split("\r\n")
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers.append((name, value.strip(" \t")))
        if (
            status >= 200
            and status not in (204, 304)
            and self.method != b"HEAD"
            and not _FRAMED.search(raw)
        ):
            conn.close_delimited = True  # the body ends when the connection does
        return True

    def on_response_body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        if self.buffered > _HIGH_WATER and not self.paused and self.conn is not None:
            self.paused = True
            self.conn.pause_reading()

    def flush(self) -> None:
        """One read from the node was parsed."""
        self._wake()

    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        self._detach()
        if self.paused:
            self.paused = False
            conn.resume_reading()
        if reusable and not self.ended:
            pool = conn.pool
            pool.release(conn)
        else:
            conn.close()
        self.ended = True
        self._wake()

    def on_upstream_failed(self, conn: UpstreamConnection, error: HTTPError) -> None:
        self._detach()
        if self.ended:
            return
        if self.reused and not self.status and isinstance(error, UpstreamResetError):
            self.stale = True
        else:
            self.error = error
            kind = error.retry_kind
            self._report("timeout" if kind == "timeout" else "failure")
        self._wake()

    def on_upgrade_accepted(self, early: bytes) -> None:
        return None  # never asked for: the connection was dropped at its head

    def on_tunnel_closed(self) -> None:
        return None

    # the request is written whole: there is no client to pause or tunnel to
    @property
    def client(self) -> Response:
        return self

    def pause_reading_for(self, reason: int) -> None:
        return None

    def resume_reading_for(self, reason: int) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None


class _RequestKeys:
    """What a balancer reads of a request (``quiver.proxy.balancing.RequestKeys``)."""

    __slots__ = ("fields", "raw_path")
    peer = b""  # the gateway itself is the client

    def __init__(self, raw_path: bytes, fields: Mapping[str, str] | None) -> None:
        self.raw_path = raw_path
        self.fields = fields or {}

    @property
    def client(self) -> _RequestKeys:
        return self

    def get(self, name: bytes) -> bytes | None:
        wanted = name.decode("latin-1")
        for field, value in self.fields.items():
            if field.lower() == wanted:
                return value.encode("latin-1")
        return None


def request_head(
    method: str, path: bytes, node: Node, headers: Mapping[str, str] | None, body: bytes
) -> bytes:
    """The request line, header block and body for ``node``.

    Host comes from the node, Content-Length from the body; fields that frame the
    message cannot be given.  Raises ValueError for a field that would break the head.
    """
    parts = [method.encode("ascii"), b" ", path, node.request_line_tail]
    agent = False
    for name, value in (headers or {}).items():
        lower = name.lower()
        if not _TOKEN.match(name) or lower in _OWN_FIELDS:
            raise ValueError(f"{name!r} cannot be sent as a request field")
        if _UNSAFE_VALUE.search(value):
            raise ValueError(f"the value of {name!r} has a line break or NUL")
        agent = agent or lower == "user-agent"
        parts += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
    if not agent:
        parts.append(b"User-Agent: " + USER_AGENT.encode() + b"\r\n")
    if body or method in ("POST", "PUT", "PATCH"):
        parts.append(b"Content-Length: %d\r\n" % len(body))
    parts += (b"\r\n", body)
    return b"".join(parts)


async def send_to_node(
    node: Node,
    method: str,
    *,
    loop: asyncio.AbstractEventLoop,
    head: bytes,
    timeout: float | None = None,
    retry_stale: bool | None = None,
    target: TargetRuntime | None = None,
) -> Response:
    """Send the request ``head`` (from :func:`request_head`) to ``node`` over its pool;
    the response once its head is in."""
    response = Response(
        node,
        method.encode("ascii"),
        head,
        loop=loop,
        timeout=timeout,
        label=target.name if target is not None else node.label,
        target=target,
    )
    await response.send(retry_stale=method in IDEMPOTENT if retry_stale is None else retry_stale)
    return response


class OutboundClient:
    """Sends the requests of one worker; implements :class:`quiver.plugins.outbound.Outbound`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sweeper: Sweeper,
        *,
        targets: Callable[[], Mapping[str, TargetRuntime]] | None = None,
        pool: Pool | None = None,
        timeouts: Timeouts | None = None,
        max_origins: int = 64,
    ) -> None:
        self.loop = loop
        self.sweeper = sweeper
        self.targets = targets
        self.pool_settings = plain(pool or Pool(max_idle=8))
        self.timeouts = plain(timeouts or Timeouts())
        self.max_origins = max_origins
        #: a node with its pool per origin, least recently used first
        self.origins: OrderedDict[tuple[str, str, int, str | None], Node] = OrderedDict()
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        self.closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        timeout: float | None = None,
        ca_file: str | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        if self.closed:
            raise ServiceUnavailable("the worker is shutting down")
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not path.isascii() or " " in path:
            raise ValueError(f"{url!r} is not a URL of printable ASCII")
        if parts.scheme == "target":
            return await self._to_target(
                method, parts.netloc, path.encode(), headers, body, timeout, idempotent
            )
        node = self._origin(parts.scheme, parts.hostname, parts.port, ca_file, url)
        head = request_head(method, path.encode(), node, headers, body)
        return await send_to_node(
            node, method, loop=self.loop, head=head, timeout=timeout, retry_stale=idempotent
        )

    def close(self) -> None:
        """Close every origin's idle connections; busy ones close when their request ends."""
        self.closed = True
        while self.origins:
            _, node = self.origins.popitem()
            assert node.pool is not None
            node.pool.close()

    def _origin(
        self, scheme: str, host: str | None, port: int | None, ca_file: str | None, url: str
    ) -> Node:
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"{url!r} is not an http://, https:// or target:// URL")
        https = scheme == "https"
        default_port = 443 if https else 80
        key = (scheme, host, port or default_port, ca_file)
        node = self.origins.get(key)
        if node is not None:
            self.origins.move_to_end(key)
            return node
        context = None
        if https:
            context = self._contexts.get(ca_file)
            if context is None:
                context = self._contexts[ca_file] = client_context(ca_file)
        node = Node(
            host,
            port or default_port,
            weight=1,
            ssl_context=context,
            server_hostname=host if https else None,
            default_port=default_port,
        )
        node.pool = NodePool(node, self.pool_settings, self.timeouts, self.loop, self.sweeper)
        self.origins[key] = node
        while len(self.origins) > self.max_origins:
            _, dropped = self.origins.popitem(last=False)
            assert dropped.pool is not None
            dropped.pool.close()
        return node

    async def _to_target(
        self,
        method: str,
        name: str,
        path: bytes,
        headers: Mapping[str, str] | None,
        body: bytes,
        timeout: float | None,
        idempotent: bool | None,
    ) -> Response:
        target = self.targets().get(name) if self.targets is not None else None
        if target is None:
            raise ValueError(f"no target named {name!r}")
        path = target.base_path + path
        avoid: Node | None = None
        deadline = self.loop.time() + timeout if timeout is not None else None
        for attempt in range(1, min(len(target.nodes), _MAX_TRIES) + 1):
            node = self._pick(target, path, headers, avoid)
            head = request_head(method, path, node, headers, body)
            remaining = None if deadline is None else max(0.0, deadline - self.loop.time())
            try:
                return await send_to_node(
                    node,
                    method,
                    loop=self.loop,
                    head=head,
                    timeout=remaining,
                    retry_stale=idempotent,
                    target=target,
                )
            except HTTPError as exc:
                # nothing reached the node: another one may take the request
                if not exc.retryable or attempt >= min(len(target.nodes), _MAX_TRIES):
                    raise
                avoid = node
        raise ServiceUnavailable(f"target {name!r} has no healthy node")  # pragma: no cover

    def _pick(
        self,
        target: TargetRuntime,
        path: bytes,
        headers: Mapping[str, str] | None,
        avoid: Node | None,
    ) -> Node:
        keys = _RequestKeys(path, headers)
        node = target.only_node
        if node is None or not node.up:
            node = target.balancer.pick(keys, avoid)
        now = self.loop.time()
        if node is not None and node.breaker is not None and not node.breaker.admit(now):
            node = target.balancer.pick(keys, node)
            if node is not None and node.breaker is not None and not node.breaker.admit(now):
                node = None
        if node is None:
            raise ServiceUnavailable(f"target {target.name!r} has no healthy node")
        return node
