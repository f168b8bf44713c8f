"""One request's trip through the proxy: from a parsed head to a finished response.

An exchange is the request head plus the relay in both directions.  Request body
chunks go to the node as they arrive (buffered only until a connection is
attached); response bytes go to the client as they arrive, and each side's flow
control pauses the other, so memory stays bounded whatever the body sizes.

Response bodies are relayed byte for byte after the head whenever the client can
take them as they are: llhttp checks their framing, the proxy only rewrites the
head.  A body the node ends by closing is sent chunked to an HTTP/1.1 client, and
a chunked body is decoded for an HTTP/1.0 client.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from quiver.errors import (
    BadGateway,
    ContentTooLarge,
    HTTPError,
    NotFound,
    ServiceUnavailable,
    UpstreamResetError,
)
from quiver.plugins.chain import Chain
from quiver.plugins.response import ResponseHead
from quiver.proxy.balancing.ewma import record_latency
from quiver.proxy.request import CONSUMER_FIELDS, IDEMPOTENT_METHODS, RequestHead
from quiver.proxy.retry import failure_kind

if TYPE_CHECKING:
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.consumers import ConsumerRuntime
    from quiver.proxy.health import Outcome
    from quiver.proxy.snapshot import RouteRuntime
    from quiver.proxy.upstream import Node, UpstreamConnection

log = logging.getLogger("quiver.exchange")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# How the response body travels to the client.
NO_BODY = 0
RELAY = 1  # the node's bytes as they are (Content-Length, chunked to HTTP/1.1, or to close)
WRAP_CHUNKS = 2  # the node ends the body by closing: its bytes are sent as chunks
DECODED = 3  # chunked by the node, decoded for an HTTP/1.0 client (ended by closing)
FILTERED = 4  # decoded, passed through plugins, sent as chunks (HTTP/1.0: ended by closing)

_BUFFER_LIMIT = 65536
FAILURE_LATENCY = 1.0  # seconds a failed try counts as, for latency-aware balancing
REPLAY_LIMIT = 1 << 20  # request bodies up to this size are kept so a retry can resend them
_BUFFER_PAUSE = 4
_LAST_CHUNK = b"0\r\n\r\n"
_VIA_END = b"Via: 1.1 quiver\r\n\r\n"
_JOIN_BELOW = 16384  # smaller writes are joined into one buffer, larger go as a vector
# Response fields that are hop-by-hop (RFC 9110 §7.6.1) or re-framed by the proxy.
_HOP_BY_HOP = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade)[ \t]*:[^\r]*", re.I
)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r]*)", re.I)
_FRAMING_FIELDS = re.compile(rb"\r\n(?:content-length|transfer-encoding)[ \t]*:[^\r]*", re.I)
# The response fields the proxy acts on, with their values, found in one pass.
_RESPONSE_FIELDS = re.compile(
    rb"\r\n(connection|keep-alive|proxy-connection|te|trailer|upgrade|content-length"
    rb"|transfer-encoding|x-request-id)[ \t]*:[ \t]*([^\r]*)"
)
_CONNECTION_FIELD, _OTHER_HOP_FIELD, _LENGTH_FIELD, _TE_FIELD, _REQUEST_ID_FIELD = 1, 2, 4, 8, 16
_HOP_FIELDS = _CONNECTION_FIELD | _OTHER_HOP_FIELD
_FIELD_KINDS = {
    b"connection": _CONNECTION_FIELD,
    b"keep-alive": _OTHER_HOP_FIELD,
    b"proxy-connection": _OTHER_HOP_FIELD,
    b"te": _OTHER_HOP_FIELD,
    b"trailer": _OTHER_HOP_FIELD,
    b"upgrade": _OTHER_HOP_FIELD,
    b"content-length": _LENGTH_FIELD,
    b"transfer-encoding": _TE_FIELD,
    b"x-request-id": _REQUEST_ID_FIELD,
}
_CONNECTION = re.compile(rb"\r\nconnection[ \t]*:([^\r]*)", re.I)
_UPGRADE = re.compile(rb"\r\nupgrade[ \t]*:[ \t]*([^\r]*)", re.I)
_PLAIN_CONNECTION = frozenset({b"close", b"keep-alive", b"upgrade"})


class Exchange(RequestHead):
    rid = b""  # the request id, sent upstream and on the response
    route: RouteRuntime | None = None
    node: Node | None = None
    upstream: UpstreamConnection | None = None
    connect_task: asyncio.Task[None] | None = None
    upstream_path = b""
    body_buffer: list[bytes] | None = None  # body held until a connection is attached
    buffered = 0
    body_received = 0
    request_done = False
    response_started = False
    finished = False
    reused = False
    mode = NO_BODY
    attempt = 1  # tries so far, this one included
    started_at = 0.0  # loop time of the first try, for the retry deadline
    avoid: Node | None = None  # the node that just failed, not to be picked again
    replay: list[bytes] | None = None  # the body as sent so far, kept to send it again
    replay_size = 0
    replay_lost = False  # the body outgrew what is kept: it cannot be sent again
    retry_handle: asyncio.TimerHandle | None = None
    sent_at = 0.0  # loop time the request went to the node (for latency-aware balancing)
    body_limit: int | None = None  # a plugin's body size limit, below the global one
    consumer: ConsumerRuntime | None = None  # who is calling, once a plugin identified it
    chain = Chain(())  # the plugins this request runs: its route's, or its consumer's
    held: list[bytes] | None = None  # body chunks kept from the node until plugins are done
    hold_limit: int | None = None  # most bytes held for plugins that read the body whole
    body: bytes | None = None  # the whole body, once read for such plugins
    resume_at = -1  # the access phase waiting for the whole body
    _ctx: dict[str, Any] | None = None
    status = 0  # of the response (the node's, or the proxy's error)

    def __init__(self, client: ClientConnection) -> None:
        self.headers = []
        self.forward = []
        self.client = client
        # response bytes gathered while one upstream read is parsed, sent in one write
        self.out: list[bytes] = []

    # -- request side -----------------------------------------------------------------

    def start(self) -> None:
        """Route the request and send it on its way; raises HTTPError to refuse it."""
        snapshot = self.client.server.snapshot
        path, match = snapshot.resolve(self)
        if match is None:
            method = self.method.decode("latin-1")
            raise NotFound(f"no route matches {method} {path.decode('latin-1')}")
        route = self.route = match.value
        if self.content_length is not None:
            limit = snapshot.limits.max_body_size
            if limit is not None and self.content_length > limit:
                size = self.content_length
                raise ContentTooLarge(f"request body of {size} bytes exceeds {limit}")
        self.upstream_path = path + b"?" + self.query if self.query else path
        policy = route.retries
        if policy is not None:
            policy.budget.requests += 1
            if policy.deadline is not None:
                self.started_at = self.client.server.loop.time()
        chain = self.chain = route.chain
        if chain.holds_body:
            self._hold_body(snapshot.limits.max_buffered_body)
        elif self.held is not None or (self.chunked and self.request_done):
            self._release_body()  # body that came while this request waited its turn
        if chain.access:
            self._access(0)
        else:
            if self.expect_continue:
                self._continue()
            self._send_to_node()

    def _continue(self) -> None:
        """Invite the body of a client that waits to be asked (once the plugins that
        can refuse on the head alone have let the request through)."""
        if self.expect_continue and self.version == b"1.1" and not self.body_received:
            # (RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored)
            self.expect_continue = False
            self.client.write(CONTINUE)

    def _access(self, index: int) -> None:
        """Run the access phases from ``index`` on, then send the request to a node."""
        chain = self.chain
        phases = chain.access
        while index < len(phases):
            if index >= chain.body_at and self.body is None:
                if not self.request_done:
                    limit = self.hold_limit
                    if limit is not None and (self.content_length or 0) > limit:
                        size = self.content_length
                        raise ContentTooLarge(f"request body of {size} bytes exceeds {limit}")
                    self.resume_at = index  # goes on once the whole body is in
                    self._continue()
                    return
                # it came whole while an earlier phase was waiting
                self.body = b"".join(self.held or ())
                self.held = None
            waiting = phases[index](self)
            if self.chain is chain:
                index += 1
            else:  # a consumer with plugins of its own: its chain takes over
                index = self._next_access(chain, index)
                chain = self.chain
                phases = chain.access
            if waiting is not None:  # the plugin has to wait: go on in a task
                loop = self.client.server.loop
                self.connect_task = loop.create_task(self._access_async(waiting, index))
                return
        if self.body is not None or self.held is not None:
            self._release_body()
        if self.expect_continue:
            self._continue()
        self._send_to_node()

    def _next_access(self, chain: Chain, index: int) -> int:
        """The next access phase after ``chain.access[index]`` ran (it may have
        identified a consumer whose own chain takes over)."""
        if self.chain is chain:
            return index + 1
        return self.chain.index_after(chain.keys[index])

    async def _access_async(self, waiting: Awaitable[None], index: int) -> None:
        chain = self.chain
        try:
            await waiting
            self.connect_task = None
            if chain is not self.chain:  # the awaited phase identified a consumer
                index = self._next_access(chain, index - 1)
            if not self.finished:
                self._access(index)
        except HTTPError as exc:
            self.connect_task = None
            self.fail(exc)

    # -- request bodies read whole by plugins -----------------------------------------

    def _hold_body(self, limit: int) -> None:
        """Keep the body instead of forwarding it, for a plugin that reads it whole."""
        self.hold_limit = limit
        if not self.has_body:
            self.body = b""
        elif self.request_done:
            self.body = b"".join(self.held or ())
            self.held = None
        elif self.held is None:
            self.held = []
        if self.body_received > limit:
            raise ContentTooLarge(f"request body exceeds {limit} bytes, the most plugins read")

    def _release_body(self) -> None:
        """Forward what was held: the body as read (and maybe replaced) by plugins, or
        what arrived so far when no plugin read it after all (the rest then streams)."""
        body = self.body
        if body is not None:
            self.body = None
            if body or self.has_body:
                self.chunked = False
                self.content_length = len(body)
                if body:
                    self._forward((body,))
            return
        held = self.held or []
        self.held = None
        self.hold_limit = None
        for chunk in held:
            self._relay_body(chunk)
        if self.request_done and self.chunked:
            self._forward((_LAST_CHUNK,))

    # -- what plugins may do to a request (see quiver.plugins.base.PluginRequest) -----

    def set_header(self, name: bytes, value: bytes) -> None:
        self.remove_header(name)
        self.forward.append((name, value))
        self.headers.append((name, value))

    def remove_header(self, name: bytes) -> None:
        lname = name.lower()
        size = len(lname)
        self._fields = None  # `get` indexes again when it needs to
        for fields in (self.forward, self.headers):
            index = len(fields)
            while index:  # a handful of fields; from the end so deleting keeps the places
                index -= 1
                field = fields[index][0]
                if len(field) == size and field.lower() == lname:
                    del fields[index]

    def set_query(self, query: bytes) -> None:
        self.query = query
        path = self.upstream_path.partition(b"?")[0]
        self.upstream_path = path + b"?" + query if query else path

    def set_consumer(self, consumer: ConsumerRuntime) -> None:
        # (X-Consumer-* from the client never reach `forward`: see SPECIAL_REQUEST_HEADERS)
        if self.consumer is not None:
            for name in CONSUMER_FIELDS:
                self.remove_header(name)
        self.consumer = consumer
        self.forward.extend(consumer.headers)
        self.headers.extend(consumer.headers)  # (a client's own were dropped on arrival)
        self._fields = None
        route = self.route
        if route is not None and route.chain.by_consumer:
            self.chain = route.chain.by_consumer.get(consumer.name, route.chain)

    def set_body(self, body: bytes) -> None:
        if self.body is None:
            raise RuntimeError("set_body is for plugins that read the body (reads_body)")
        self.body = body

    @property
    def ctx(self) -> dict[str, Any]:
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = {}
        return ctx

    def limit_body(self, max_size: int) -> None:
        if self.body_limit is None or max_size < self.body_limit:
            self.body_limit = max_size

    @property
    def client_ip(self) -> bytes:
        return self.client.peer

    def _send_to_node(self) -> None:
        """Pick a node and send the request on a pooled or new connection."""
        target = self.route.target  # type: ignore[union-attr]
        if target.only_node is not None and target.only_node.up:
            node = target.only_node
        else:
            node = target.balancer.pick(self, self.avoid)
        if node is not None and node.breaker is not None and not self._admitted(node):
            node = target.balancer.pick(self, node)
            if node is not None and node.breaker is not None and not self._admitted(node):
                node = None
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

    def on_request_body(self, chunk: bytes) -> None:
        self.body_received += len(chunk)
        limit = self.body_limit or self.client.server.snapshot.limits.max_body_size
        if limit is not None and self.body_received > limit:
            raise ContentTooLarge(f"request body exceeds {limit} bytes")
        if self.finished:
            return
        if self.held is not None or self.route is None:
            # held whole for a plugin, or not routed yet (a pipelined request in line)
            hold_limit = self.hold_limit
            if hold_limit is not None and self.body_received > hold_limit:
                message = f"request body exceeds {hold_limit} bytes, the most plugins read"
                raise ContentTooLarge(message)
            if self.held is None:
                self.held = []
            self.held.append(chunk)
            return
        self._relay_body(chunk)

    def _relay_body(self, chunk: bytes) -> None:
        if self.chunked:
            # re-framed rather than relayed: chunk extensions and trailers stop here
            self._forward((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            self._forward((chunk,))

    def on_request_end(self) -> None:
        if self.request_done:
            return
        self.request_done = True
        if self.finished:
            return
        if self.held is not None or self.route is None:
            resume_at = self.resume_at
            if resume_at >= 0:  # the access phases wait for this body
                self.body = b"".join(self.held or ())
                self.held = None
                self.resume_at = -1
                try:
                    self._access(resume_at)
                except HTTPError as exc:
                    self.fail(exc)
            return  # (not routed yet: `start` forwards what came)
        if self.chunked:
            self._forward((_LAST_CHUNK,))
        if self.upstream is not None:
            self.upstream.request_sent()

    def _forward(self, parts: tuple[bytes, ...]) -> None:
        if not self.replay_lost:
            self._keep_for_replay(parts)
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.writelines(parts)
            return
        if self.body_buffer is None:
            self.body_buffer = []
        self.body_buffer.extend(parts)
        self.buffered += sum(len(part) for part in parts)
        if self.buffered > _BUFFER_LIMIT:
            self.client.pause_reading_for(_BUFFER_PAUSE)

    def _admitted(self, node: Node) -> bool:
        return bool(node.breaker.admit(self.client.server.loop.time()))

    def _report(self, outcome: Outcome) -> None:
        """Tell the node's health checks and breaker how this try ended."""
        node = self.node
        if node is not None and node.health is not None:
            node.health.record(outcome, self.client.server.loop.time())

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
        assert self.route is not None and self.node is not None
        self.upstream = conn
        self.reused = reused
        self.node.in_flight += 1
        if self.route.target.tracks_latency:
            self.sent_at = self.client.server.loop.time()
        head = self.route.request_head(self, self.node)
        if self.attempt > 1 and self.replay:
            head = b"".join((head, *self.replay))  # a retry: the whole body so far again
            self.body_buffer = None
            self.buffered = 0
            self.client.resume_reading_for(_BUFFER_PAUSE)
        elif self.body_buffer:
            head = b"".join((head, *self.body_buffer))
            self.body_buffer = None
            self.buffered = 0
            self.client.resume_reading_for(_BUFFER_PAUSE)
        conn.send(self, head, self.request_done, self.route.read_timeout)

    # -- response side ----------------------------------------------------------------

    def on_response_head(self, conn: UpstreamConnection, status: int, raw: bytes) -> bool:
        """Rewrite the node's head for the client and choose how the body travels.

        False when the response is dropped instead because the request is tried again.
        """
        route = self.route
        assert route is not None
        target = route.target
        if target.guarded or target.tracks_latency:
            self._response_arrived(status)
        if status >= 500:
            policy = self.route.retries  # type: ignore[union-attr]
            if policy is not None and status in policy.statuses and self._retry(str(status)):
                self._detach()
                return False
        self.status = status
        chain = self.chain
        if chain.response_headers and status != 101:
            raw = self.run_response_headers(raw)
        kinds = 0
        connection = coding = b""
        # one pass over the lowercased head (a case-sensitive regex runs several times
        # faster); only the lowercase values of Connection and Transfer-Encoding are used
        for name, value in _RESPONSE_FIELDS.findall(raw.lower()):
            kind = _FIELD_KINDS[name]
            kinds |= kind
            if kind == _CONNECTION_FIELD:
                connection = value if not connection else connection + b"," + value
            elif kind == _TE_FIELD:
                coding = value.strip()
        keep_alive = self.keep_alive and not self.client.draining
        if self.upgrade is not None and status != 101:
            keep_alive = False  # what the client sent after its head was never HTTP
        framing = b""
        if status == 101:
            if self.upgrade is None:
                raise BadGateway("upstream switched protocols without being asked")
            match = _UPGRADE.search(raw)
            upgrade = match.group(1) if match else b""
            framing = b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n"
            self.mode = NO_BODY
        elif status < 200 or status == 204 or status == 304 or self.method == b"HEAD":
            self.mode = NO_BODY
        elif kinds & _LENGTH_FIELD:
            self.mode = RELAY
        elif kinds & _TE_FIELD:
            if not coding.endswith(b"chunked"):
                raise BadGateway("upstream used a transfer coding other than chunked")
            if self.version == b"1.1":
                self.mode = RELAY
            else:
                raw = _TRANSFER_ENCODING.sub(b"", raw)
                self.mode = DECODED
                keep_alive = False
        else:
            conn.close_delimited = True
            if self.version == b"1.1":
                framing = b"Transfer-Encoding: chunked\r\n"
                self.mode = WRAP_CHUNKS
            else:
                self.mode = RELAY
                keep_alive = False
        if self.mode != NO_BODY and chain.response_body:
            # plugins may change the body: its length is unknown until it ends
            raw = _FRAMING_FIELDS.sub(b"", raw)
            kinds &= ~(_LENGTH_FIELD | _TE_FIELD)
            self.mode = FILTERED
            if self.version == b"1.1":
                framing = b"Transfer-Encoding: chunked\r\n"
            else:
                framing = b""
                keep_alive = False
        if status != 101:
            if not keep_alive:
                framing += b"Connection: close\r\n"
            elif self.version == b"1.0":
                framing += b"Connection: keep-alive\r\n"
        self.keep_alive = keep_alive
        head = raw
        if kinds & _HOP_FIELDS and not (
            # a lone "Connection: keep-alive" says what this hop does too: it can stay
            kinds & _HOP_FIELDS == _CONNECTION_FIELD
            and connection == b"keep-alive"
            and keep_alive
            and not framing
        ):
            head = _HOP_BY_HOP.sub(b"", raw)
            if connection and connection != b"keep-alive" and connection != b"close":
                head = _drop_connection_named(raw, head)
        request_id = b"" if kinds & _REQUEST_ID_FIELD else b"X-Request-ID: " + self.rid + b"\r\n"
        self.response_started = True
        self.out.append(b"".join((head[:-2], request_id, framing, _VIA_END)))
        return True

    def _run_log(self) -> None:
        """The route's log phases, once the exchange is over (off the hot path)."""
        for plugin_phase in self.chain.log:
            try:
                plugin_phase(self)
            except Exception:  # a log plugin must never hurt the proxy
                log.exception("log phase of a plugin failed")

    def run_response_headers(self, raw: bytes) -> bytes:
        """Let the route's plugins see and change the response head."""
        head = ResponseHead(raw)
        for plugin_phase in self.chain.response_headers:
            plugin_phase(self, head)
        return head.render()

    def _filter(self, chunk: bytes, last: bool) -> bool:
        """Pass a piece of the response body through the response_body phases and
        queue what comes out as a chunk; False when a plugin failed (the client is
        then cut off: its response has begun)."""
        try:
            for plugin_phase in self.chain.response_body:
                chunk = plugin_phase(self, chunk, last)
        except Exception:
            log.exception("response_body phase of a plugin failed")
            self.fail(BadGateway("a plugin failed on the response body"))
            return False
        if chunk:
            if self.version == b"1.1":
                self.out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
            else:
                self.out.append(chunk)
        return True

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

    def on_response_body(self, chunk: bytes) -> None:
        """A decoded body chunk (only parsers set up to decode call this: for HTTP/1.0
        clients and for routes with response_body phases)."""
        mode = self.mode
        if mode == DECODED:
            self.out.append(chunk)
        elif mode == FILTERED and not self.finished:
            self._filter(chunk, False)

    def flush(self) -> None:
        """Send what the last upstream read produced, in one system call."""
        out = self.out
        if out:
            self.out = []
            transport = self.client.transport
            if transport is None:
                return
            if len(out) == 2 and len(out[1]) < _JOIN_BELOW:
                transport.write(out[0] + out[1])  # a head and a small body: one buffer
            else:
                transport.writelines(out)

    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        self._detach()
        if self.mode == WRAP_CHUNKS:
            self.out.append(_LAST_CHUNK)
        elif self.mode == FILTERED and not self.finished:
            if not self._filter(b"", True):
                conn.close()
                return
            if self.version == b"1.1":
                self.out.append(_LAST_CHUNK)
        self.flush()
        if self.finished:
            conn.close()
            return
        if reusable:
            conn.pool.release(conn)
        else:
            conn.close()
        self.finished = True
        self.client.exchange_finished(self)
        if self.chain.log:
            self.client.server.loop.call_soon(self._run_log)

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
        kind = failure_kind(error)
        target = self.route.target if self.route is not None else None
        if target is not None and not isinstance(error, ServiceUnavailable):
            # (a full pool of our own says nothing about the node)
            if target.guarded:
                self._report("timeout" if kind == "timeout" else "failure")
            if target.tracks_latency and self.node is not None:
                # a node that fails fast must not look fast: count a failure as slow
                now = self.client.server.loop.time()
                record_latency(self.node, FAILURE_LATENCY, now)
        if kind is None or not self._retry(kind):
            self.fail(error)

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
        self.attempt += 1
        self.avoid = self.node
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

    # -- upgrade tunnels --------------------------------------------------------------

    def on_upgrade_accepted(self, early: bytes) -> None:
        upstream = self.upstream
        assert upstream is not None
        self.finished = True
        self.flush()
        self.client.start_tunnel(upstream, early)

    def on_tunnel_closed(self) -> None:
        self.client.close()

    # -- ending -----------------------------------------------------------------------

    def fail(self, error: HTTPError) -> None:
        """Answer ``error`` if nothing was sent yet, else cut the client off."""
        if self.finished:
            return
        self.finished = True
        self.cancel_upstream()
        if not self.response_started:
            self.status = error.status_code
        if self.response_started:
            self.out = []
            self.client.abort()
        else:
            self.client.respond_error(self, error)
        if self.chain.log:
            self.client.server.loop.call_soon(self._run_log)

    def _detach(self) -> UpstreamConnection | None:
        """The try is done with its connection: the node has one request fewer in flight."""
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            self.node.in_flight -= 1  # type: ignore[union-attr]
        return upstream

    def cancel_upstream(self) -> None:
        node = self.node
        pending = self.upstream is not None or self.connect_task is not None
        if pending and node is not None and node.breaker is not None and not self.response_started:
            node.breaker.release()  # the client left: says nothing of the node
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        upstream = self._detach()
        if upstream is not None:
            upstream.abort()


def _drop_connection_named(raw: bytes, head: bytes) -> bytes:
    """Also drop the fields the node's Connection header names (RFC 9110 §7.6.1)."""
    tokens: set[bytes] = set()
    for match in _CONNECTION.finditer(raw):
        tokens.update(t.strip(b" \t").lower() for t in match.group(1).split(b","))
    tokens -= _PLAIN_CONNECTION
    tokens.discard(b"")
    if not tokens:
        return head
    lines = head.split(b"\r\n")
    kept = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in tokens]
    return b"\r\n".join([lines[0], *kept])
