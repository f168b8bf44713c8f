"""One request's trip through the proxy: from a parsed head to a finished response.

An exchange is the request head plus the relay in both directions.  Request body
chunks go to the node as they arrive (buffered only until a connection is
attached); response bytes go to the client as they arrive, and each side's flow
control pauses the other, so memory stays bounded whatever the body sizes.

Responses framed by Content-Length, and chunked responses to HTTP/1.1 clients,
are relayed byte for byte after the head: llhttp checks their framing, the proxy
only rewrites the head.  Other responses (ended by closing the connection, or
chunked to an HTTP/1.0 client) are decoded and framed again.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from quiver.errors import (
    BadGateway,
    ContentTooLarge,
    HTTPError,
    NotFound,
    ServiceUnavailable,
    UpstreamResetError,
)
from quiver.proxy.request import RequestHead

if TYPE_CHECKING:
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.snapshot import RouteRuntime
    from quiver.proxy.upstream import Node, UpstreamConnection

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# How the response body travels to the client.
NO_BODY = 0
RELAY = 1  # the node's bytes as they are (Content-Length, or chunked to HTTP/1.1)
REFRAME_CHUNKED = 2  # decoded, sent chunked (the node closes to end the body)
REFRAME_UNTIL_CLOSE = 3  # decoded, ended by closing (HTTP/1.0 client)

_BUFFER_LIMIT = 65536
_BUFFER_PAUSE = 4
_LAST_CHUNK = b"0\r\n\r\n"
# Response fields that are hop-by-hop (RFC 9110 §7.6.1) or re-framed by the proxy.
_HOP_BY_HOP = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade)[ \t]*:[^\r]*", re.I
)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r]*)", re.I)
_CONNECTION = re.compile(rb"\r\nconnection[ \t]*:([^\r]*)", re.I)
_UPGRADE = re.compile(rb"\r\nupgrade[ \t]*:[ \t]*([^\r]*)", re.I)
_PLAIN_CONNECTION = frozenset({b"close", b"keep-alive", b"upgrade"})


class Exchange(RequestHead):
    __slots__ = (
        "body_buffer",
        "body_received",
        "buffered",
        "client",
        "connect_task",
        "finished",
        "mode",
        "node",
        "out",
        "request_done",
        "response_started",
        "reused",
        "rid",
        "route",
        "upstream",
        "upstream_path",
    )

    def __init__(self, client: ClientConnection) -> None:
        super().__init__()
        self.client = client
        self.rid = b""
        self.route: RouteRuntime | None = None
        self.node: Node | None = None
        self.upstream: UpstreamConnection | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.upstream_path = b""
        self.body_buffer: list[bytes] = []
        self.buffered = 0
        self.body_received = 0
        self.request_done = False
        self.response_started = False
        self.finished = False
        self.reused = False
        self.mode = NO_BODY
        # response bytes gathered while one upstream read is parsed, sent in one write
        self.out: list[bytes] = []

    # -- request side -----------------------------------------------------------------

    def start(self) -> None:
        """Route the request and send it on its way; raises HTTPError to refuse it."""
        snapshot = self.client.server.snapshot
        match = snapshot.router.match(self.method, self.host, self.path, self)
        if match is None:
            method, path = self.method.decode("latin-1"), self.path.decode("latin-1")
            raise NotFound(f"no route matches {method} {path}")
        route = self.route = match.value
        limit = snapshot.limits.max_body_size
        if limit is not None and self.content_length is not None and self.content_length > limit:
            raise ContentTooLarge(f"request body of {self.content_length} bytes exceeds {limit}")
        path = route.base_path + match.path
        self.upstream_path = path + b"?" + self.query if self.query else path
        if self.expect_continue and not self.body_received:
            self.client.write(CONTINUE)
        self._send_to_node()

    def on_request_body(self, chunk: bytes) -> None:
        self.body_received += len(chunk)
        limit = self.client.server.snapshot.limits.max_body_size
        if limit is not None and self.body_received > limit:
            raise ContentTooLarge(f"request body exceeds {limit} bytes")
        if self.finished:
            return
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
        if self.chunked:
            self._forward((_LAST_CHUNK,))
        if self.upstream is not None:
            self.upstream.request_sent()

    def _forward(self, parts: tuple[bytes, ...]) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.writelines(parts)
            return
        self.body_buffer.extend(parts)
        self.buffered += sum(len(part) for part in parts)
        if self.buffered > _BUFFER_LIMIT:
            self.client.pause_reading_for(_BUFFER_PAUSE)

    def _send_to_node(self) -> None:
        assert self.route is not None
        node = self.route.target.balancer.pick()
        if node is None:
            raise ServiceUnavailable(f"target {self.route.target.name!r} has no node available")
        self.node = node
        assert node.pool is not None
        conn = node.pool.take_idle()
        if conn is not None:
            self._attach(conn, reused=True)
        else:
            self.connect_task = self.client.server.loop.create_task(self._connect(node))

    async def _connect(self, node: Node) -> None:
        assert node.pool is not None
        try:
            conn = await node.pool.connect()
        except HTTPError as exc:
            self.connect_task = None
            self.fail(exc)
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
        head = self.route.request_head(self, self.node)
        if self.body_buffer:
            head = b"".join((head, *self.body_buffer))
            self.body_buffer = []
            self.buffered = 0
            self.client.resume_reading_for(_BUFFER_PAUSE)
        conn.send(self, head)
        if self.request_done:
            conn.request_sent()

    # -- response side ----------------------------------------------------------------

    def on_response_head(self, conn: UpstreamConnection, status: int, raw: bytes) -> None:
        """Rewrite the node's head for the client and choose how the body travels."""
        low = raw.lower()
        head = _HOP_BY_HOP.sub(b"", raw)
        if b"\r\nconnection:" in low:
            head = _drop_connection_named(raw, head)
        extra = [b"X-Request-ID: ", self.rid, b"\r\n"] if b"\r\nx-request-id:" not in low else []
        extra.append(b"Via: 1.1 quiver\r\n")
        keep_alive = self.keep_alive and not self.client.draining
        if status == 101:
            if self.upgrade is None:
                raise BadGateway("upstream switched protocols without being asked")
            match = _UPGRADE.search(raw)
            extra += (b"Connection: Upgrade\r\nUpgrade: ", match.group(1) if match else b"", b"\r\n")
            self.mode = NO_BODY
        elif status < 200 or status == 204 or status == 304 or self.method == b"HEAD":
            self.mode = NO_BODY
        elif b"\r\ncontent-length:" in low:
            self.mode = RELAY
        elif b"\r\ntransfer-encoding:" in low:
            match = _TRANSFER_ENCODING.search(raw)
            coding = match.group(1).strip().lower() if match else b""
            if not coding.endswith(b"chunked"):
                raise BadGateway("upstream used a transfer coding other than chunked")
            if self.version == b"1.1":
                self.mode = RELAY
            else:
                head = _TRANSFER_ENCODING.sub(b"", head)
                self.mode = REFRAME_UNTIL_CLOSE
                keep_alive = False
        else:
            conn.close_delimited = True
            if self.version == b"1.1":
                extra.append(b"Transfer-Encoding: chunked\r\n")
                self.mode = REFRAME_CHUNKED
            else:
                self.mode = REFRAME_UNTIL_CLOSE
                keep_alive = False
        if status != 101:
            if not keep_alive:
                extra.append(b"Connection: close\r\n")
            elif self.version == b"1.0":
                extra.append(b"Connection: keep-alive\r\n")
        self.keep_alive = keep_alive
        extra.append(b"\r\n")
        self.response_started = True
        self.out += (head[:-2], *extra)

    def on_response_body(self, chunk: bytes) -> None:
        """A decoded body chunk (re-framing modes only)."""
        if self.mode == REFRAME_CHUNKED:
            self.out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
        else:
            self.out.append(chunk)

    def flush(self) -> None:
        """Send what the last upstream read produced, in one system call."""
        out = self.out
        if out:
            self.out = []
            self.client.writelines(out)

    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        self.upstream = None
        if self.mode == REFRAME_CHUNKED:
            self.out.append(_LAST_CHUNK)
        self.flush()
        if reusable and not self.finished:
            conn.pool.release(conn)
        else:
            conn.close()
        if not self.finished:
            self.finished = True
            self.client.exchange_finished(self)

    def on_upstream_failed(self, conn: UpstreamConnection, error: HTTPError) -> None:
        if self.upstream is conn:
            self.upstream = None
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
        self.fail(error)

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
        if self.response_started:
            self.out = []
            self.client.abort()
        else:
            self.client.respond_error(self, error)

    def cancel_upstream(self) -> None:
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None


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
