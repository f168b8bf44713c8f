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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quiver.errors import ContentTooLarge, HTTPError, NotFound
from quiver.proxy.attempts import Attempts
from quiver.proxy.flow import DECODED, FILTERED, NO_BODY, PAUSE_BUFFER, WRAP_CHUNKS
from quiver.proxy.in_process import InProcessAnswers
from quiver.proxy.phases import PhaseRunner
from quiver.proxy.request import CONSUMER_FIELDS, RequestHead
from quiver.proxy.response_head import rewrite_head
from quiver.proxy.websocket import ABNORMAL

if TYPE_CHECKING:
    from quiver.http.tracecontext import TraceContext
    from quiver.observe.capture import Capture
    from quiver.plugins.consumers import ConsumerRuntime
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.snapshot import RouteRuntime
    from quiver.proxy.sse import Heartbeat
    from quiver.proxy.upstream import UpstreamConnection
    from quiver.proxy.websocket import WebSocketRelay

_BUFFER_LIMIT = 65536
_LAST_CHUNK = b"0\r\n\r\n"
_JOIN_BELOW = 16384  # smaller writes are joined into one buffer, larger go as a vector
CLIENT_CLOSED = 499  # the status logged for a request whose client left before its answer


class Exchange(RequestHead, PhaseRunner, Attempts, InProcessAnswers):
    rid = b""  # the request id, sent upstream and on the response
    route: RouteRuntime | None = None
    upstream_path = b""
    body_received = 0
    request_done = False
    response_started = False
    finished = False
    mode = NO_BODY
    body_limit: int | None = None  # a plugin's body size limit, below the global one
    consumer: ConsumerRuntime | None = None  # who is calling, once a plugin identified it
    credential: bytes | None = None  # which of its credentials it presented, if said
    response_fields = b""  # what plugins add to the response, whoever answers it
    held: list[bytes] | None = None  # body chunks kept from the node until plugins are done
    hold_limit: int | None = None  # most bytes held for plugins that read the body whole
    _ctx: dict[str, Any] | None = None
    #: a plugin's receiver of the response body as sent (``tap_body``)
    tap: Callable[[bytes, bool], None] | None = None
    status = 0  # of the response (the node's, the in-process target's, or the proxy's error)
    began = 0.0  # time.monotonic() when the request head was complete (for the record)
    bytes_out = 0  # response bytes written to the client
    cache_status: str | None = None  # what a cache plugin reported (report_cache_status)
    #: header fields and capped bodies kept for the call log (routes that ask only)
    capture: Capture | None = None
    trace: TraceContext | None = None  # when tracing is on (quiver.proxy.tracecontext)
    #: an event stream's heartbeat, on routes that set one (quiver.proxy.sse)
    sse: Heartbeat | None = None
    #: the frames of an upgrade to WebSocket, on routes with limits (quiver.proxy.websocket)
    relay: WebSocketRelay | None = None
    tunnel_closer: str | None = None  # "target" (or "gateway") when not the client closed
    #: what went through an upgrade's tunnel, once it closed (the record's ``websocket``)
    tunnel_note: dict[str, Any] | None = None

    def __init__(self, client: ClientConnection) -> None:
        self.headers = []
        self.forward = []
        self.client = client
        # response bytes gathered while one upstream read is parsed, sent in one write
        self.out: list[bytes] = []

    @property
    def connection_memo(self) -> dict[str, Any]:
        """What plugins remember between the requests of the connection (PluginRequest)."""
        return self.client.memo

    # -- request side -----------------------------------------------------------------

    def start(self) -> None:
        """Route the request and send it on its way; raises HTTPError to refuse it."""
        state = self.client.server
        if state.ended:  # what ended before this request is logged before it starts
            state.log_ended()
        snapshot = state.snapshot
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
        if route.holds_body:
            self._hold_body(snapshot.limits.max_buffered_body)
        elif self.held is not None or (self.chunked and self.request_done):
            self._release_body()  # body that came while this request waited its turn
        if chain.access:
            self._access(0)
        elif route.responder is not None:
            self._answer_in_process(route.responder)
        else:  # the usual case, spelled out: no plugins, a node answers
            if self.expect_continue:
                self._continue()
            self._send_to_node()

    def _respond(self) -> None:
        """The access phases let the request through: the route's responder answers."""
        responder = self.route.responder  # type: ignore[union-attr]
        if responder is None:  # the usual case: a node of the target answers
            if self.body is not None or self.held is not None:
                self._release_body()
            if self.expect_continue:
                self._continue()
            self._send_to_node()
            return
        self._answer_in_process(responder)

    # -- request bodies read whole by plugins -----------------------------------------

    def _hold_body(self, limit: int) -> None:
        """Keep the body instead of forwarding it, for a plugin that reads it whole."""
        self.hold_limit = limit
        if not self.has_body:
            self.body = b""
        elif self.request_done:
            self._take_held()
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

    def remove_field(self, field: tuple[bytes, bytes]) -> None:
        # ``forward`` holds the tuples of ``headers`` (RequestHead.finish): the lists
        # remove them in C, by identity first; by name when one is not there
        self._fields = None
        try:
            self.headers.remove(field)
            self.forward.remove(field)
        except ValueError:
            self.remove_header(field[0])

    def set_query(self, query: bytes) -> None:
        self.query = query
        path = self.upstream_path.partition(b"?")[0]
        self.upstream_path = path + b"?" + query if query else path

    def add_response_field(self, name: bytes, value: bytes, *, replace: bool = False) -> None:
        added = self.response_fields
        if replace and added:
            start = name.lower() + b":"
            lines = added.split(b"\r\n")[:-1]
            added = b"".join(
                b"%s\r\n" % line for line in lines if not line.lower().startswith(start)
            )
        self.response_fields = added + b"%s: %s\r\n" % (name, value)

    def add_response_fields(self, lines: bytes) -> None:
        self.response_fields += lines

    def set_consumer(self, consumer: ConsumerRuntime, credential: bytes | None = None) -> None:
        # (X-Consumer-* from the client never reach `forward`: see SPECIAL_REQUEST_HEADERS)
        if self.consumer is not None:
            for name in CONSUMER_FIELDS:
                self.remove_header(name)
        self.consumer = consumer
        self.credential = credential
        self.forward.extend(consumer.headers)
        self.headers.extend(consumer.headers)  # (a client's own were dropped on arrival)
        self._fields = None
        route = self.route
        if route is not None and route.chain.by_consumer:
            self.chain = route.chain.by_consumer.get(consumer.name, route.chain)

    def report_cache_status(self, label: str) -> None:
        self.cache_status = label

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

    def tap_body(self, receiver: Callable[[bytes, bool], None]) -> None:
        if self.capture is not None:  # (the call log's copy is the tap: it passes on)
            self.capture.passed_on = receiver
        else:
            self.tap = receiver

    def limit_body(self, max_size: int) -> None:
        if self.body_limit is None or max_size < self.body_limit:
            self.body_limit = max_size

    @property
    def client_ip(self) -> bytes:
        return self.client.peer

    def on_request_body(self, chunk: bytes) -> None:
        self.body_received += len(chunk)
        if self.capture is not None:
            self.capture.request_chunk(chunk)
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
                self._take_held()
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
            self.client.pause_reading_for(PAUSE_BUFFER)

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
            policy = route.retries
            if policy is not None and status in policy.statuses and self._retry(str(status)):
                self._detach()
                return False
        self.status = status
        chain = self.chain
        filtered = chain.filters_body
        if chain.response_headers and status != 101:
            try:
                raw = self.run_response_headers(raw)
            except HTTPError as exc:  # a plugin refused (or failed on) a good response:
                self._detach()  # the node did its part; its connection goes (body unread)
                self.fail(exc)
                return False
            if self.sse is not None:
                filtered = True  # an event stream with heartbeats: the proxy frames it
                self.sse.start()
        keep_alive = self.keep_alive and not self.client.draining
        head, self.mode, self.keep_alive, close_delimited = rewrite_head(
            raw, status, self, keep_alive, filtered, route.redirects
        )
        if close_delimited:
            conn.close_delimited = True
        self.response_started = True
        self.out.append(head)
        return True

    def _finish(self) -> None:
        """The response is out: the connection goes on with the next request."""
        self.finished = True
        self.client.exchange_finished(self)
        self._log_later()

    def on_response_body(self, chunk: bytes) -> None:
        """A decoded body chunk (only parsers set up to decode call this: for HTTP/1.0
        clients and for routes with response_body phases)."""
        mode = self.mode
        if mode == DECODED:
            self.out.append(chunk)
        elif mode == FILTERED:
            if not self.finished:
                self._filter(chunk, False)
            return
        if self.tap is not None:  # (the relayed bytes are in `out` already)
            self.tap(chunk, False)

    def flush(self) -> None:
        """Send what the last upstream read produced, in one system call."""
        out = self.out
        if out:
            self.out = []
            transport = self.client.transport
            if transport is None:
                return
            if len(out) == 2 and len(out[1]) < _JOIN_BELOW:
                data = out[0] + out[1]  # a head and a small body: one buffer
                self.bytes_out += len(data)
                transport.write(data)
            else:
                self.bytes_out += sum(map(len, out))
                transport.writelines(out)

    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        self._detach()
        mode = self.mode
        if mode == WRAP_CHUNKS:
            self.out.append(_LAST_CHUNK)
        elif mode == FILTERED and not self.finished:
            if not self._filter(b"", True):
                conn.close()
                return
            if self.version == b"1.1":
                self.out.append(_LAST_CHUNK)
        if self.tap is not None and mode != FILTERED and not self.finished:
            self.tap(b"", True)
        self.flush()
        if self.finished:
            conn.close()
            return
        if reusable:
            conn.pool.release(conn)
        else:
            conn.close()
        self.finished = True  # (what _finish does, spelled out on the busiest path)
        self.client.exchange_finished(self)
        if self.chain.log or self.began:  # (an exchange with a record to make has began)
            self._log_later()

    # -- upgrade tunnels --------------------------------------------------------------

    def on_upgrade_accepted(self, early: bytes) -> None:
        upstream = self.upstream
        assert upstream is not None
        self.finished = True
        self.flush()
        # the exchange lives as long as the tunnel: its log phases run when it closes
        # (a concurrency slot is held that long), as nginx logs a 101 on close
        self.client.start_tunnel(self, upstream, early)

    def on_tunnel_closed(self, closer: str = "target") -> None:
        """The node's side of the tunnel closed (or the gateway closed it, idle): the
        client's goes too."""
        if self.tunnel_closer is None:
            self.tunnel_closer = closer
        if closer == "target":
            self.client.node_left_tunnel()
        else:  # the gateway gave up on the node: the client is cut off too
            self.client.close()

    def on_tunnel_ended(self) -> None:
        """Both sides are closed: what went through is noted, the log phases run."""
        upstream = self.upstream
        relay = self.relay
        closer = self.tunnel_closer or "client"
        code = None
        messages_in = messages_out = None
        if relay is not None:
            relay.ended()
            code = relay.close_code or ABNORMAL  # (1006: no close frame came)
            closer = relay.closed_by or closer
            messages_in, messages_out = relay.messages_in, relay.messages_out
        self.tunnel_note = {
            "messages_in": messages_in,
            "messages_out": messages_out,
            "bytes_in": upstream.tunnel_in if upstream is not None else 0,
            "bytes_out": upstream.tunnel_out if upstream is not None else 0,
            "close_code": code,
            "closed_by": closer,
        }
        self._log_later()

    # -- ending -----------------------------------------------------------------------

    def fail(self, error: HTTPError) -> None:
        """Answer ``error`` if nothing was sent yet, else cut the client off."""
        if self.finished:
            return
        self.finished = True
        if self.sse is not None:
            self.sse.stop()
        self.cancel_upstream()
        if not self.response_started:
            self.status = error.status_code
        if self.response_started:
            self.out = []
            self.client.abort()
        else:
            self.client.respond_error(self, error)
        self._log_later()

    def abandon(self) -> None:
        """The client went away before the exchange ended: stop it where it is.  Its
        log phases still run, with status 499 when no response had begun (nginx's
        code for a request the client closed)."""
        self.finished = True
        if self.sse is not None:
            self.sse.stop()
        self.cancel_upstream()
        if not self.response_started:
            self.status = CLIENT_CLOSED
        self._log_later()


# CPython keeps the attribute names of a class's instances in one table shared by
# them all, with room for 30 names, and every instance made takes one place of the
# room that is left (3.11 and later).  Under load, dozens of exchanges begin before
# the first one has set all its attributes: the names set later no longer fit, every
# exchange then keeps a dict of its own, and the interpreter's attribute caches take
# their slower paths (about 6% of the CPU of a request with plugins and records).
# The first exchange of the process, made here, sets the names a usual request sets,
# so that the table holds them before any request does.  Rarer names (those of a new
# upstream connection, a retry, a body held for plugins, ...) go in a dict of the
# exchange's own, as before.
USUAL_ATTRIBUTES = (
    # every proxied request
    "headers",
    "forward",
    "client",
    "out",
    "method",
    "host_header",
    "keep_alive",
    "raw_path",
    "query",
    "rid",
    "began",  # (with records: access log, call log, request counters)
    "trace",  # (a sampled trace)
    "request_done",
    "route",
    "upstream_path",
    "chain",
    # plugins: key-auth and rate-limit (read fields, a consumer, answer fields)
    "_fields",
    "consumer",
    "credential",
    "response_fields",
    # the node's answer
    "node",
    "upstream",
    "upstream_at",  # (with records)
    "status",
    "mode",
    "response_started",
    "bytes_out",
    "finished",
    "logged",  # (with records or log phases)
)


def _settle_attribute_names() -> None:
    first = Exchange.__new__(Exchange)
    for name in USUAL_ATTRIBUTES:
        setattr(first, name, None)


_settle_attribute_names()
