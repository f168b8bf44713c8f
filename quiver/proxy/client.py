"""The client side: one protocol instance per accepted connection.

Requests are parsed by llhttp as bytes arrive.  The first request in flight is
the *current* exchange; requests pipelined behind it wait in a queue (reading
pauses meanwhile) and are answered strictly in order.  A connection is closed
gracefully: our side is shut for writing first and what the client still sends
is read and dropped for a moment, so an error answer is never lost to a reset.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol, cast

import httptools

from quiver.errors import (
    Answer,
    BadRequest,
    HeaderFieldsTooLarge,
    HTTPError,
    RequestTimeout,
    URITooLong,
)
from quiver.http.tracecontext import TRACEPARENT
from quiver.proxy.exchange import Exchange
from quiver.proxy.flow import PAUSE_PIPELINE
from quiver.proxy.phases import plugin_fault
from quiver.proxy.problem import problem_response
from quiver.proxy.websocket import GOING_AWAY, WebSocketRelay

if TYPE_CHECKING:
    from quiver.plugins.responder import TargetType
    from quiver.proxy.server import ProxyState
    from quiver.proxy.upstream import UpstreamConnection

_LINGER_SECONDS = 2.0
#: what a closed connection parses with: its own parser is let go with the connection
_CLOSED = httptools.HttpRequestParser(object())


class Tunnel(Protocol):
    """Where a tunnel's client bytes go: the node's connection, or a WebSocket relay."""

    def tunnel_write(self, data: bytes) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "body_started",
        "chunk_len",
        "client_eof",
        "current",
        "deadline",
        "draining",
        "forwarded",
        "head",
        "head_bytes",
        "lingering",
        "memo",
        "parser",
        "parsing",
        "paused_at",
        "peer",
        "queue",
        "read_paused",
        "scheme",
        "server",
        "transport",
        "tunnel",
        "tunnel_buffer",
        "tunneled",
        "url",
        "write_paused",
    )

    def __init__(self, server: ProxyState, scheme: bytes) -> None:
        self.server = server
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = b""
        self.forwarded = b""
        self.head: Exchange | None = None  # being parsed, until its head is complete
        self.head_bytes = -1  # of `head` read after the read it began in; -1: none yet
        self.chunk_len = 0
        self.client_eof = False
        self.url = b""
        self.parsing: Exchange | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.deadline = 0.0
        # when the body being read began, moved on by the time reading was paused by
        # the proxy itself (limits.min_body_rate is the client's rate); 0.0: no body
        self.body_started = 0.0
        self.paused_at = 0.0  # when the proxy paused reading during a body
        self.read_paused = 0
        self.write_paused = False
        self.lingering = False
        self.draining = False
        self.tunnel: Tunnel | None = None
        self.tunnel_buffer: list[bytes] | None = None
        self.tunneled: Exchange | None = None  # the upgrade the tunnel came of
        #: what plugins remember between the requests of this connection
        self.memo: dict[str, Any] = {}

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]).encode() if peer else b"unknown"
        # what a request without X-Forwarded-For of its own carries upstream
        self.forwarded = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n" % (
            self.peer,
            self.scheme,
        )
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self.server
        server.connections.add(self)
        server.sweeper.add(self)
        self.deadline = server.loop.time() + server.snapshot.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.connections.discard(self)
        server.sweeper.discard(self)
        self.transport = None
        self.memo.clear()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        if self.tunneled is not None:
            server.tunnels.discard(self)
            _count_websocket(server.websockets, self.tunneled, -1)
            self.tunneled.on_tunnel_ended()
            self.tunneled = None
        for exchange in (self.current, *self.queue):
            if exchange is not None and not exchange.finished:
                exchange.abandon()
        self.current = None
        self.queue.clear()
        self.parser = _CLOSED  # (the parser calls back into this connection: a cycle)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.tunnel_write(data)
            return
        if self.tunnel_buffer is not None:
            self.tunnel_buffer.append(data)
            return
        if self.lingering:
            return
        if self.current is None and self.head is None:
            server = self.server  # a new request begins: it has header_timeout to arrive
            self.deadline = server.loop.time() + server.snapshot.limits.header_timeout
        self.chunk_len = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.tunnel_buffer = [data[exc.args[0] :]]
            self.pause_reading_for(PAUSE_PIPELINE)
            return
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised; our own refusals keep their type
            cause = exc.__context__
            self._refuse(
                cause if isinstance(cause, HTTPError) else BadRequest(_parser_message(exc))
            )
            return
        if self.head is not None:
            # A head goes on in the next read.  httptools holds a header field until it
            # is complete: bound that too, counting the reads after the one the head
            # began in (what came before it in that read belongs to other requests).
            if self.head_bytes < 0:
                self.head_bytes = 0
                return
            self.head_bytes += len(data)
            limits = self.server.snapshot.limits
            if self.head_bytes > 2 * (limits.max_request_line + limits.max_header_size):
                self._refuse(HeaderFieldsTooLarge("request head is too large"))

    def eof_received(self) -> bool | None:
        if self.lingering or (self.current is None and self.head is None):
            return None
        # half-closed client: answer what it sent, then close
        self.client_eof = True
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        self.deadline = self.server.loop.time() + self.server.snapshot.limits.send_timeout
        current = self.current
        if self.tunnel is not None:
            self.tunnel.pause_reading()
        elif current is not None and current.upstream is not None:
            current.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._settle_deadline()
        current = self.current
        if self.tunnel is not None:
            self.tunnel.resume_reading()
        elif current is not None:
            if current.upstream is not None:
                current.upstream.resume_reading()
            elif current.drained is not None and not current.drained.done():
                current.drained.set_result(None)  # an in-process body goes on

    # -- httptools callbacks ----------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        # the first callback of every request (llhttp always reports a target)
        if self.head is None:
            self.head = Exchange(self)
            self.url = url
            self.head_bytes = -1  # began in the read being parsed
        else:
            self.url += url
        if len(self.url) > self.server.snapshot.limits.max_request_line:
            raise URITooLong(f"request target longer than {len(self.url) - 1} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self.head
        if head is not None:  # None for trailer fields after a chunked body: dropped
            head.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.head
        assert exchange is not None
        server = self.server
        limits = server.snapshot.limits
        # a head that began in this read is no larger than the read: count its fields
        # only if that could exceed the limit (or when it spans reads)
        max_size = limits.max_header_size
        exchange.finish(
            self.url,
            self.parser,
            limits.max_headers,
            max_size if self.head_bytes >= 0 or self.chunk_len > max_size else 0,
            server.field_names,
            limits.underscores_in_headers,
        )
        if self.draining:
            exchange.keep_alive = False
        exchange.rid = exchange.request_id or server.new_request_id()
        if server.observing:  # records or traces are made of this exchange
            if server.recording:  # (the record's; the loop's clock counts ms only)
                exchange.began = monotonic()
            tracing = server.tracing
            if tracing is not None:
                fresh = tracing.fresh
                if fresh and exchange.traceparent is None:
                    # (begin's usual case, spelled out: a new trace, not sampled)
                    exchange.forward.append((TRACEPARENT, fresh.pop()))
                else:
                    tracing.begin(exchange)
        self.head = None
        self.parsing = exchange
        has_body = exchange.chunked or bool(exchange.content_length)
        if not has_body:
            exchange.request_done = True
        else:
            self.body_started = now = server.loop.time()
            if self.read_paused:
                self.paused_at = now
        if self.current is None:
            self.current = exchange
            try:
                exchange.start()
            except HTTPError as exc:
                exchange.fail(exc)
        else:
            self.queue.append(exchange)
            self.pause_reading_for(PAUSE_PIPELINE)
        if has_body:
            self.deadline = self.body_started + limits.body_timeout
        elif self.current is not exchange or exchange.finished:
            self._settle_deadline()
        else:
            self.deadline = 0.0

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        assert exchange is not None
        server = self.server
        limits = server.snapshot.limits
        deadline = server.loop.time() + limits.body_timeout
        rate = limits.min_body_rate
        if rate:  # (_body_due, inlined: this runs for every piece of every body)
            due = (
                self.body_started
                + limits.body_timeout
                + (exchange.body_received + len(body)) / rate
            )
            if due < deadline:
                deadline = due
        self.deadline = deadline
        exchange.on_request_body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        self.parsing = None
        if exchange is not None and not exchange.request_done:
            self.body_started = self.paused_at = 0.0
            exchange.on_request_end()
            if exchange.finished and exchange is not self.current and not self.queue:
                # answered early (error) while its body was still arriving
                self._after_exchange(exchange)
            self._settle_deadline()

    # -- used by exchanges ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: list[bytes] | tuple[bytes, ...]) -> None:
        if self.transport is not None:
            self.transport.writelines(parts)

    def pause_reading_for(self, reason: int) -> None:
        if not self.read_paused:
            if self.transport is not None:
                self.transport.pause_reading()
            if self.body_started:
                self.paused_at = self.server.loop.time()
        self.read_paused |= reason

    def resume_reading_for(self, reason: int) -> None:
        if not self.read_paused & reason:
            return
        self.read_paused &= ~reason
        if not self.read_paused:
            if self.transport is not None:
                self.transport.resume_reading()
            if self.paused_at:  # the client is not to blame for the time we held it
                self.body_started += self.server.loop.time() - self.paused_at
                self.paused_at = 0.0

    def respond_error(self, exchange: Exchange, error: HTTPError) -> None:
        close = (
            error.close_connection
            or not exchange.request_done
            or not exchange.keep_alive
            or exchange.upgrade is not None
        )
        exchange.keep_alive = not close
        head_only = exchange.method == b"HEAD"
        rid = exchange.rid or self.server.new_request_id()
        answered = isinstance(error, Answer)  # (by a plugin: sent as it is)
        route = exchange.route
        # the route's own API may state gateway errors its way (an AI route's shapes)
        speaker = route.error_answers if route is not None and not answered else None
        if speaker is not None:
            error = _error_answer(speaker, exchange, error)
        if isinstance(error, Answer) and error.head is not None:
            # a stored node response: its URLs are mapped back as they were when relayed
            redirects = route.redirects if route is not None else None
            if redirects is not None and redirects.concerns(error.head):
                path = exchange.raw_path
                error.head = redirects.apply(error.head, path, exchange.upstream_path)
        added = exchange.response_fields
        response = problem_response(
            error, rid.decode("latin-1"), close=close, head_only=head_only, added=added
        )
        if exchange.chain.response_headers and not exchange.headers_shaped and not answered:
            # the route's plugins shape gateway answers too (e.g. CORS on a 401)
            end = response.index(b"\r\n\r\n") + 4
            try:
                response = exchange.run_response_headers(response[:end]) + response[end:]
            except HTTPError as fault:  # the answer is the fault now, unshaped
                exchange.status = fault.status_code
                if speaker is not None:
                    fault = _error_answer(speaker, exchange, fault)
                response = problem_response(
                    fault, rid.decode("latin-1"), close=close, head_only=head_only, added=added
                )
        exchange.bytes_out += len(response)
        self.write(response)
        self.exchange_finished(exchange)

    def exchange_finished(self, exchange: Exchange) -> None:
        if exchange is not self.current:
            return
        self.current = None
        if not exchange.request_done:
            if exchange.keep_alive and exchange is self.parsing:
                return  # the rest of its body is read and dropped; see on_message_complete
            self._linger()
        elif (
            exchange.keep_alive
            and not self.queue
            and self.head is None
            and not self.write_paused
            and not self.client_eof
        ):
            server = self.server  # the usual case: idle until the next request
            self.deadline = server.loop.time() + server.snapshot.limits.idle_timeout
        else:
            self._after_exchange(exchange)

    def start_tunnel(self, exchange: Exchange, upstream: UpstreamConnection, early: bytes) -> None:
        """The node accepted an Upgrade: from now on bytes pass through untouched, or
        frame by frame on a route with WebSocket limits (quiver.proxy.websocket)."""
        self.current = None
        self.deadline = 0.0
        self.tunneled = exchange
        self.server.tunnels.add(self)
        _count_websocket(self.server.websockets, exchange, 1)
        route = exchange.route
        settings = route.websocket if route is not None else None
        tunnel: Tunnel = upstream
        if (
            settings is not None
            and settings.frame_aware
            and (exchange.upgrade or b"").lower() == b"websocket"
        ):
            relay = exchange.relay = WebSocketRelay(settings, self, upstream)
            upstream.relay = relay
            upstream.sink = relay.from_node
            if settings.idle_timeout is not None:
                upstream.read_timeout = settings.idle_timeout
                upstream.deadline = self.server.loop.time() + settings.idle_timeout
            tunnel = relay
        else:
            upstream.sink = self.write
        self.tunnel = tunnel
        if early:
            upstream.tunnel_out += len(early)
            upstream.sink(early)
        buffered = self.tunnel_buffer or []
        self.tunnel_buffer = None
        for data in buffered:
            if data:
                tunnel.tunnel_write(data)
        self.resume_reading_for(PAUSE_PIPELINE)

    def node_left_tunnel(self) -> None:
        """The node's side of the tunnel is gone: what it sent still reaches the
        client, then the client's side is half-closed and read to its end.  Closing
        at once, with bytes of the client's still unread, would reset the connection,
        and a reset can discard the last bytes the client was sent (a close frame)."""
        self.tunnel = None
        self._linger()

    def end_tunnel(self) -> None:
        """End the tunnel from the gateway's side (a drain): 1001 both ways when its
        frames are read, else its TCP connections are closed."""
        tunnel = self.tunnel
        if isinstance(tunnel, WebSocketRelay):
            tunnel.shut(GOING_AWAY, "going away")
        elif self.transport is not None:
            if self.tunneled is not None and self.tunneled.tunnel_closer is None:
                self.tunneled.tunnel_closer = "gateway"
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def on_deadline(self, now: float) -> None:
        self.deadline = 0.0
        if self.lingering or self.write_paused or self.tunnel is not None:
            self.abort()
            return
        parsing = self.parsing
        in_body = parsing is not None and not parsing.request_done
        if in_body and self.read_paused:
            # the proxy holds the body back (a slow node, a request waiting its turn)
            self.deadline = now + self.server.snapshot.limits.body_timeout
            return
        if self.head is not None or in_body:
            error = RequestTimeout("the client did not send the request in time")
            if in_body and self._body_due() <= now:
                rate = self.server.snapshot.limits.min_body_rate
                error = RequestTimeout(
                    f"the request body arrived slower than limits.min_body_rate ({rate} bytes/s)"
                )
            if parsing is not None and parsing is self.current:
                parsing.fail(error)
            elif self.current is None:
                self._refuse(error)
            else:
                self.abort()
            return
        if self.current is None:
            self.close()  # idle keep-alive connection

    # -- internals --------------------------------------------------------------------

    def _begin(self, exchange: Exchange) -> None:
        try:
            exchange.start()
        except HTTPError as exc:
            exchange.fail(exc)

    def _after_exchange(self, exchange: Exchange) -> None:
        if not exchange.keep_alive or (self.client_eof and not self.queue):
            self._linger()
        elif self.queue:
            nxt = self.queue.popleft()
            self.current = nxt
            if not self.queue:
                self.resume_reading_for(PAUSE_PIPELINE)
            self._begin(nxt)
        elif self.head is None and self.parsing is None and not self.write_paused:
            server = self.server
            self.deadline = server.loop.time() + server.snapshot.limits.idle_timeout
        else:
            self._settle_deadline()

    def _settle_deadline(self) -> None:
        if self.head is not None or self.lingering:
            return
        parsing = self.parsing
        limits = self.server.snapshot.limits
        if parsing is not None and not parsing.request_done:
            self.deadline = min(self.server.loop.time() + limits.body_timeout, self._body_due())
        elif self.write_paused:
            self.deadline = self.server.loop.time() + limits.send_timeout
        elif self.current is None and not self.queue:
            self.deadline = self.server.loop.time() + limits.idle_timeout
        else:
            self.deadline = 0.0

    def _body_due(self) -> float:
        """When the body being read must be complete by limits.min_body_rate: its start,
        plus body_timeout, plus a second per min_body_rate bytes received (the idea of
        Apache's mod_reqtimeout MinRate); inf when the rate is not limited."""
        limits = self.server.snapshot.limits
        parsing = self.parsing
        if not limits.min_body_rate or parsing is None:
            return math.inf
        received = parsing.body_received
        return self.body_started + limits.body_timeout + received / limits.min_body_rate

    def _refuse(self, error: HTTPError) -> None:
        """The request cannot be parsed any further: answer in turn, then close."""
        parsing = self.parsing
        if parsing is not None and not parsing.finished and parsing is self.current:
            parsing.fail(error)
            if not self.lingering:
                self._linger()
            return
        if parsing is not None and parsing in self.queue:
            self.queue.remove(parsing)  # its body is broken: it never starts
            parsing.finished = True
        bare = Exchange(self)
        bare.rid = self.server.new_request_id()
        bare.keep_alive = False
        if self.server.recording:  # its record tells what was read of the request
            self._head_read(bare)
        if self.current is None or self.current.finished:
            self.current = bare
            bare.fail(error)  # (answered, then recorded as any exchange that ends)
        else:
            # answer after the requests already in flight, then close
            self.pause_reading_for(PAUSE_PIPELINE)
            self.queue.append(_FailingExchange(bare, error))

    def _head_read(self, bare: Exchange) -> None:
        """Give ``bare``, the exchange of a refused request, what was read of its head:
        the method and target once the request line is whole (the target only if it
        is within limits.max_request_line), the fields read so far.  What the error
        left unread stays empty."""
        head = self.head
        if head is None:  # (the request line itself was not understood)
            return
        bare.headers = head.headers
        bare.method = head.method or _method_of(self.parser)
        if len(self.url) <= self.server.snapshot.limits.max_request_line:
            path, _, query = self.url.partition(b"?")
            bare.raw_path, bare.query = path, query

    def _linger(self) -> None:
        transport = self.transport
        if transport is None or self.lingering:
            return
        self.lingering = True
        self.tunnel_buffer = None
        self.deadline = self.server.loop.time() + _LINGER_SECONDS
        if transport.can_write_eof() and not self.client_eof:
            transport.write_eof()
            self.read_paused = 0
            transport.resume_reading()
        else:
            transport.close()


def _count_websocket(counts: dict[str, int], exchange: Exchange, change: int) -> None:
    if (exchange.upgrade or b"").lower() == b"websocket":
        name = exchange.route.name if exchange.route is not None else ""
        counts[name] = counts.get(name, 0) + change


class PlainOnTlsPort(ClientConnection):
    """A client speaking plain HTTP to a TLS port: told so, then closed (as nginx does)."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._refuse(BadRequest("plain HTTP request sent to HTTPS port"))


class _FailingExchange(Exchange):
    """Stands in the pipeline queue for a request that could not be parsed."""

    __slots__ = ("error",)

    def __init__(self, bare: Exchange, error: HTTPError) -> None:
        super().__init__(bare.client)
        self.rid = bare.rid
        self.headers, self.method = bare.headers, bare.method
        self.raw_path, self.query = bare.raw_path, bare.query
        self.request_done = True
        self.keep_alive = False
        self.error = error

    def start(self) -> None:
        raise self.error


def _error_answer(speaker: TargetType[Any], exchange: Exchange, error: HTTPError) -> HTTPError:
    """``error`` as the route's responder states it (``error_answer``), or as it is
    when it keeps problem documents, or fails (a fault, logged once)."""
    try:
        answer = speaker.error_answer(exchange, error)
        if answer is None:
            return error
        if not isinstance(answer, Answer) or answer.head is not None:
            raise TypeError(f"error_answer returned {type(answer).__name__}, not an Answer")
    except Exception as exc:
        plugin_fault(speaker.error_answer, "error_answer", exchange.rid, exc)
        return error
    exchange.status = answer.status_code
    return answer


def _method_of(parser: httptools.HttpRequestParser) -> bytes:
    """The method of the request line ``parser`` read (b"" when it cannot say)."""
    try:
        return parser.get_method()
    except httptools.HttpParserError:
        return b""


def _parser_message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"malformed request: {text}"
