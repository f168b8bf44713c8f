"""The upstream side: one keep-alive connection pool per node.

A pooled connection carries one exchange at a time (no upstream pipelining).  It
is handed back to its pool only when the response was complete, the request fully
written and the node did not ask to close; a connection the node closes while idle
leaves the pool the moment the loop sees it go (``connection_lost``), and an
exchange that still meets such a race is sent again on a fresh connection when
its request is replayable (see ``Exchange``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import httptools

from quiver.config.models import Pool, Timeouts
from quiver.errors import (
    BadGateway,
    GatewayTimeout,
    HTTPError,
    ServiceUnavailable,
    UpstreamConnectError,
    UpstreamResetError,
)
from quiver.proxy.flow import PAUSE_UPSTREAM, RELAY, WRAP_CHUNKS
from quiver.proxy.sweeper import Sweeper

E = TypeVar("E", bound=HTTPError)

tunnel_log = logging.getLogger("quiver.tunnel")
#: what a closed connection parses with: its own parser is let go with the connection
_CLOSED = httptools.HttpResponseParser(object())


class ClientSide(Protocol):
    """What a pooled connection may do to the client side of what it carries."""

    def write(self, data: bytes) -> None: ...
    def pause_reading_for(self, reason: int) -> None: ...
    def resume_reading_for(self, reason: int) -> None: ...


class Idle(Protocol):
    """A WebSocket relay, told when its connection went silent too long."""

    def idle(self, seconds: float) -> None: ...


class Phases(Protocol):
    @property
    def response_body(self) -> tuple[object, ...]:
        """Non-empty when plugins filter response bodies (the body must be decoded)."""
        ...


class Carried(Protocol):
    """What a pooled connection carries and calls back: a proxied exchange
    (:class:`quiver.proxy.exchange.Exchange`) or one of the gateway's own requests
    (:class:`quiver.proxy.outbound.Response`).

    The head is handed over whole (``on_response_head``; False drops the response
    for a retry), the body as relayed bytes in ``out`` (``mode`` RELAY or
    WRAP_CHUNKS) or decoded (``on_response_body``), then ``on_response_end``;
    ``on_upstream_failed`` instead when the try fails.
    """

    rid: bytes
    method: bytes
    version: bytes
    request_done: bool
    mode: int
    tap: Callable[[bytes, bool], None] | None
    out: list[bytes]

    @property
    def chain(self) -> Phases: ...
    @property
    def client(self) -> ClientSide: ...

    def on_response_head(self, conn: UpstreamConnection, status: int, raw: bytes) -> bool: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None: ...
    def on_upstream_failed(self, conn: UpstreamConnection, error: HTTPError) -> None: ...
    def on_upgrade_accepted(self, early: bytes) -> None: ...
    def on_tunnel_closed(self, closer: str = "target") -> None: ...
    def flush(self) -> None: ...


class Node:
    """One server of a target, with its pool of connections."""

    __slots__ = (
        "address",
        "breaker",
        "ewma",
        "ewma_at",
        "health",
        "host_header",
        "in_flight",
        "label",
        "last_failure",
        "pool",
        "public",
        "quiet_until",
        "quieted",
        "request_line_tail",
        "server_hostname",
        "ssl",
        "up",
        "url",
        "weight",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        weight: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        default_port: int,
        target: str = "",
    ) -> None:
        self.address = (host, port)
        #: how clients hear of this node: by its target's name, never its address
        self.public = f"target {target!r}" if target else "the upstream"
        #: failures are logged at most once a second per node: until when it is
        #: quiet, and how many failures were not logged meanwhile
        self.quiet_until = 0.0
        self.quieted = 0
        self.last_failure = ""
        self.weight = weight
        self.ssl = ssl_context
        self.server_hostname = server_hostname
        bracketed = f"[{host}]" if ":" in host else host
        self.label = f"{bracketed}:{port}"
        self.host_header = (bracketed if port == default_port else self.label).encode()
        self.request_line_tail = b" HTTP/1.1\r\nHost: " + self.host_header + b"\r\n"
        self.url = f"{'https' if ssl_context else 'http'}://{self.label}"
        self.pool: NodePool | None = None
        # Live state, read by balancers and written as requests end:
        self.in_flight = 0  # requests sent to this node and not finished
        self.up = True  # False while health checks or the circuit breaker keep it out
        self.ewma = 0.0  # peak-EWMA response time in seconds (see balancing.ewma)
        self.ewma_at = 0.0  # loop time of the last update
        self.health: Any = None  # quiver.proxy.health.NodeHealth when checks are on
        self.breaker: Any = None  # quiver.proxy.breaker.CircuitBreaker when configured


def node_error(kind: type[E], node: Node, template: str, reason: str = "") -> E:
    """An error about ``node``: clients read its target's name (``template`` filled
    with it), the log its address and the ``reason`` (which may name hosts too, as a
    certificate check's does)."""
    internal = template.format(node.label) + (f": {reason}" if reason else "")
    return kind(template.format(node.public), internal=internal)


class NodePool:
    """Keep-alive connections to one node, most recently used first."""

    __slots__ = (
        "_connecting",
        "closed",
        "idle",
        "loop",
        "node",
        "open",
        "settings",
        "sweeper",
        "timeouts",
    )

    def __init__(
        self,
        node: Node,
        settings: Pool,
        timeouts: Timeouts,
        loop: asyncio.AbstractEventLoop,
        sweeper: Sweeper,
    ) -> None:
        self.node = node
        self.settings = settings
        self.timeouts = timeouts
        self.loop = loop
        self.sweeper = sweeper
        self.idle: list[UpstreamConnection] = []
        self.open = 0
        self._connecting = 0
        self.closed = False  # retired by a reload: connections close once their request ends

    def take_idle(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        limit = self.settings.max_connections
        if limit and self.open + self._connecting >= limit:
            raise node_error(
                ServiceUnavailable, self.node, f"{{}} is at its limit of {limit} connections"
            )
        node = self.node
        self._connecting += 1
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamConnection(self),
                    node.address[0],
                    node.address[1],
                    ssl=node.ssl,
                    server_hostname=node.server_hostname if node.ssl else None,
                ),
                self.timeouts.connect,
            )
        except TimeoutError as exc:
            raise node_error(GatewayTimeout, node, "connecting to {} timed out") from exc
        except ssl.SSLCertVerificationError as exc:
            reason = str(exc.verify_message or exc.reason)
            raise node_error(BadGateway, node, "TLS certificate of {} rejected", reason) from exc
        except ssl.SSLError as exc:
            reason = str(exc.reason)
            raise node_error(BadGateway, node, "TLS handshake with {} failed", reason) from exc
        except ConnectionRefusedError as exc:
            raise node_error(UpstreamConnectError, node, "{} refused the connection") from exc
        except OSError as exc:
            raise node_error(
                UpstreamConnectError, node, f"cannot connect to {{}}: {exc.strerror}"
            ) from exc
        finally:
            self._connecting -= 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        settings = self.settings
        transport = conn.transport
        if (
            len(self.idle) < settings.max_idle
            and not self.closed
            and transport is not None
            and not transport.is_closing()
            and not (settings.max_requests and conn.requests >= settings.max_requests)
        ):
            conn.deadline = self.loop.time() + settings.idle_timeout
            self.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        # Idle connections are dropped at once: a TLS close() waits for the node's
        # close_notify, which may come after the worker's event loop has closed.
        self.closed = True
        while self.idle:
            self.idle.pop().abort()


class UpstreamConnection(asyncio.Protocol):
    """Writes one request at a time to a node and relays its response.

    The response head is collected as raw bytes and handed to the exchange whole;
    llhttp parses it (and the body framing) without a Python call per header.
    """

    __slots__ = (
        "body_tail",
        "close_delimited",
        "deadline",
        "exchange",
        "head_buffer",
        "head_done",
        "keep_alive",
        "message_done",
        "parser",
        "pool",
        "read_timeout",
        "relay",
        "requests",
        "reset_parser",
        "sink",
        "transport",
        "tunnel",
        "tunnel_in",
        "tunnel_out",
        "write_paused",
    )

    def __init__(self, pool: NodePool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Carried | None = None
        self.deadline = 0.0
        self.requests = 0
        self.head_buffer = b""
        self.head_done = False
        self.body_tail = 0
        self.message_done = False
        self.reset_parser = False
        self.close_delimited = False
        self.keep_alive = False
        self.read_timeout = pool.timeouts.read
        self.tunnel = False
        #: where a tunnel's bytes from the node go: the client, or a WebSocket relay
        self.sink: Callable[[bytes], None] | None = None
        self.relay: Idle | None = None  # a WebSocket relay, on routes that read frames
        self.tunnel_in = 0  # bytes through the tunnel from the client
        self.tunnel_out = 0  # and from the node
        self.write_paused = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.pool.open += 1
        self.pool.sweeper.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        pool = self.pool
        pool.open -= 1
        pool.sweeper.discard(self)
        pool.forget(self)
        self.transport = None
        self.parser = _CLOSED  # (the parser calls back into this connection: a cycle)
        exchange = self.exchange
        if exchange is None:
            return
        self.exchange = None
        if self.tunnel:
            if tunnel_log.isEnabledFor(logging.DEBUG):
                tunnel_log.debug("tunnel %s to %s closed", exchange.rid.decode(), pool.node.label)
            exchange.on_tunnel_closed()
        elif self.head_done and self.close_delimited:
            exchange.on_response_end(self, reusable=False)
        elif self.head_done or self.head_buffer:
            exchange.on_upstream_failed(self, BadGateway("upstream closed mid-response"))
        elif isinstance(exc, ssl.SSLError):
            # e.g. a node that wants a client certificate says so after the handshake
            error = node_error(BadGateway, pool.node, "TLS error from {}", str(exc.reason or exc))
            exchange.on_upstream_failed(self, error)
        else:
            exchange.on_upstream_failed(
                self, node_error(UpstreamResetError, pool.node, "{} closed the connection")
            )

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # unsolicited bytes: this connection cannot be trusted
            return
        if self.tunnel:
            self.deadline = self.pool.loop.time() + self.read_timeout  # timeouts.tunnel_idle
            self.tunnel_out += len(data)
            self.sink(data)  # type: ignore[misc]
            return
        if self.head_done:
            self.body_tail = -1  # all of this chunk is body
        else:
            self.body_tail = 0
            self.head_buffer = self.head_buffer + data if self.head_buffer else data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.tunnel = True
            # from now on silence is measured in both directions (see tunnel_write)
            self.read_timeout = self.pool.timeouts.tunnel_idle
            self.deadline = self.pool.loop.time() + self.read_timeout
            exchange.on_upgrade_accepted(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised: the proxy's own errors (a plugin's
            # fault in response_headers, a response it cannot relay) keep their type
            cause = exc.__context__
            if isinstance(cause, HTTPError):
                self._fail(cause)
            else:
                self._fail(BadGateway(f"invalid response from upstream: {exc}"))
            return
        except HTTPError as exc:
            self._fail(exc)
            return
        if self.exchange is not exchange:
            self.abort()  # its response was dropped so the request could be tried again
            return
        mode = exchange.mode
        if mode in (RELAY, WRAP_CHUNKS):
            tail = self.body_tail
            body = data if tail < 0 else data[-tail:] if tail else None
            if body is not None:
                if mode == RELAY:
                    exchange.out.append(body)
                else:
                    exchange.out += (b"%x\r\n" % len(body), body, b"\r\n")
        if self.message_done:
            self._message_finished(exchange)
            return
        if self.deadline:  # more is owed: the read timeout starts again
            self.deadline = self.pool.loop.time() + self.read_timeout
        exchange.flush()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self.write_paused = True
        exchange = self.exchange
        if exchange is not None:
            self.deadline = self.pool.loop.time() + self.pool.timeouts.write
            exchange.client.pause_reading_for(PAUSE_UPSTREAM)

    def resume_writing(self) -> None:
        self.write_paused = False
        exchange = self.exchange
        if exchange is not None:
            self.deadline = 0.0 if not exchange.request_done else self._read_deadline()
            exchange.client.resume_reading_for(PAUSE_UPSTREAM)

    # -- used by the exchange ---------------------------------------------------------

    def send(
        self, exchange: Carried, data: bytes, complete: bool, read_timeout: float | None = None
    ) -> None:
        """Write a request head (and what there is of its body) for ``exchange``."""
        if exchange.version == b"1.0" or exchange.chain.response_body or exchange.tap:
            # its response may need decoding, which the fast parser does not do
            self.parser = httptools.HttpResponseParser(_Decoder(self))
            self.reset_parser = True
        self.exchange = exchange
        self.requests += 1
        self.head_done = False
        self.close_delimited = False
        self.transport.write(data)  # type: ignore[union-attr]
        # once the whole request is out, the node owes us bytes within the read timeout
        self.read_timeout = read_timeout or self.pool.timeouts.read
        self.deadline = self.pool.loop.time() + self.read_timeout if complete else 0.0

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def tunnel_write(self, data: bytes) -> None:
        """Bytes from the client of a tunnel: they keep it from idling out too."""
        transport = self.transport
        if transport is not None:
            # (no deadline while the client is not reading; while the node is not, the
            # write timeout runs, and it may start with this write)
            if self.deadline and not self.write_paused:
                self.deadline = self.pool.loop.time() + self.read_timeout
            self.tunnel_in += len(data)
            transport.write(data)

    def request_sent(self) -> None:
        """The whole request is written: from now on the node owes us bytes."""
        if not self.write_paused:
            self.deadline = self._read_deadline()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()
            self.deadline = 0.0  # the client is slow, not the node

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()
            self.deadline = self._read_deadline()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()

    def on_deadline(self, now: float) -> None:
        exchange = self.exchange
        self.deadline = 0.0
        if exchange is None:
            self.close()  # idle too long in the pool
            return
        if self.relay is not None and not self.write_paused:
            self.relay.idle(self.read_timeout)  # close frames both ways, then TCP
            return
        self.exchange = None
        if self.tunnel:
            if self.write_paused:  # what it still has to take would never be flushed
                why = f"the node took no bytes for {self.pool.timeouts.write:g}s (timeouts.write)"
                self.abort()
            else:
                why = f"no bytes either way for {self.read_timeout:g}s (timeouts.tunnel_idle)"
                self.close()
            label = self.pool.node.label
            tunnel_log.info("tunnel %s to %s closed: %s", exchange.rid.decode(), label, why)
            exchange.on_tunnel_closed("gateway")
            return
        self.abort()
        exchange.on_upstream_failed(
            self, node_error(GatewayTimeout, self.pool.node, "{} did not answer in time")
        )

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.message_done:
            # bytes after a complete response: the node is out of step with us
            raise BadGateway("upstream sent more than one response")

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        exchange = self.exchange
        assert exchange is not None
        buffer = self.head_buffer
        end = buffer.find(b"\r\n\r\n") + 4
        if 100 <= status < 200 and status != 101:
            self.head_buffer = buffer[end:]  # interim response: dropped, the final one follows
            return
        self.head_buffer = b""
        self.head_done = True
        # the bytes after the head, all at the end of the chunk being parsed, are body
        self.body_tail = len(buffer) - end
        if exchange.method == b"HEAD" and end:
            # llhttp cannot be told a HEAD response has no body: start afresh after it
            self.reset_parser = True
            self.message_done = True
            self.keep_alive = parser.should_keep_alive()
        if not exchange.on_response_head(self, status, buffer[:end]):
            self.exchange = None  # dropped for a retry: data_received lets the connection go

    def on_message_complete(self) -> None:
        if not self.head_done:
            return  # the end of an interim (1xx) response
        self.message_done = True
        # llhttp forgets keep-alive once the callback returns
        self.keep_alive = self.parser.should_keep_alive()

    # -- internals --------------------------------------------------------------------

    def _message_finished(self, exchange: Carried) -> None:
        self.message_done = False
        if self.reset_parser:
            self.reset_parser = False
            self.parser = httptools.HttpResponseParser(self)
        self.exchange = None
        self.deadline = 0.0
        exchange.on_response_end(self, reusable=self.keep_alive and exchange.request_done)

    def _read_deadline(self) -> float:
        return self.pool.loop.time() + self.read_timeout

    def _fail(self, error: HTTPError) -> None:
        exchange = self.exchange
        self.abort()
        if exchange is not None:
            exchange.on_upstream_failed(self, error)


class _Decoder:
    """Parser callbacks that also hand decoded body chunks to what is carried.

    Used only where the body must be decoded: for HTTP/1.0 clients, on routes with
    ``response_body`` plugins, and for the gateway's own requests.  Relaying needs no
    body callback, and leaving ``on_body`` out spares a Python call per response.
    """

    __slots__ = ("on_headers_complete", "on_message_begin", "on_message_complete", "upstream")

    def __init__(self, upstream: UpstreamConnection) -> None:
        self.upstream = upstream
        self.on_message_begin = upstream.on_message_begin
        self.on_headers_complete = upstream.on_headers_complete
        self.on_message_complete = upstream.on_message_complete

    def on_body(self, body: bytes) -> None:
        exchange = self.upstream.exchange
        if exchange is not None:
            exchange.on_response_body(body)
