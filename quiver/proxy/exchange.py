"""One request's trip through the proxy: from a parsed head to a finished response.

The exchange owns the relay in both directions.  Request body chunks go to the
node as they arrive (buffered only until a connection is attached), response
chunks go to the client as they arrive, and each side's flow control pauses the
other: memory stays bounded whatever the body sizes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from quiver.errors import ContentTooLarge, HTTPError, NotFound, ServiceUnavailable
from quiver.errors import UpstreamResetError
from quiver.proxy.request import RequestHead

if TYPE_CHECKING:
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.snapshot import RouteRuntime
    from quiver.proxy.upstream import Node, UpstreamConnection

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
VIA = b"Via: 1.1 quiver\r\n"
# how the response body is framed toward the client
NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = range(4)
_BUFFER_LIMIT = 65536
_BUFFER_PAUSE = 4
_LAST_CHUNK = b"0\r\n\r\n"


class Exchange:
    __slots__ = (
        "body_buffer",
        "body_received",
        "buffered",
        "client",
        "connect_task",
        "finished",
        "head",
        "keep_alive",
        "mode",
        "node",
        "request_done",
        "request_id",
        "response_started",
        "reused",
        "route",
        "upstream",
        "upstream_path",
    )

    def __init__(self, client: ClientConnection, head: RequestHead, request_id: bytes) -> None:
        self.client = client
        self.head = head
        self.request_id = request_id
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
        self.keep_alive = head.keep_alive
        self.mode = NO_BODY

    # -- request side -----------------------------------------------------------------

    def start(self) -> None:
        """Route the request and send it on its way; raises HTTPError to refuse it."""
        head = self.head
        snapshot = self.client.server.snapshot
        match = snapshot.router.match(head.method, head.host, head.path, head.fields)
        if match is None:
            method, path = head.method.decode("latin-1"), head.path.decode("latin-1")
            raise NotFound(f"no route matches {method} {path}")
        route = self.route = match.value
        limit = snapshot.limits.max_body_size
        if limit is not None and head.content_length is not None and head.content_length > limit:
            raise ContentTooLarge(f"request body of {head.content_length} bytes exceeds {limit}")
        path = route.base_path + match.path
        self.upstream_path = path + b"?" + head.query if head.query else path
        if head.expect_continue and not self.body_received:
            self.client.write(CONTINUE)
        self._send_to_node()

    def on_request_body(self, chunk: bytes) -> None:
        self.body_received += len(chunk)
        limit = self.client.server.snapshot.limits.max_body_size
        if limit is not None and self.body_received > limit:
            raise ContentTooLarge(f"request body exceeds {limit} bytes")
        if self.finished:
            return
        if self.head.chunked:
            self._forward((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            self._forward((chunk,))

    def on_request_end(self) -> None:
        if self.request_done:
            return
        self.request_done = True
        if self.finished:
            return
        if self.head.chunked:
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

    def on_response_head(self, conn: UpstreamConnection, status: int) -> None:
        head = self.head
        client = self.client
        if status == 101 and head.upgrade is None:
            raise UpstreamResetError("upstream switched protocols without being asked")
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, conn.reason)]
        tokens = conn.token_headers
        if tokens and any(t not in (b"close", b"keep-alive", b"upgrade") for t in tokens):
            headers = [(n, v) for n, v in conn.headers if n.lower() not in tokens]
        else:
            headers = conn.headers
        seen_request_id = False
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
            if not seen_request_id and len(name) == 12 and name.lower() == b"x-request-id":
                seen_request_id = True
        if status == 101:
            parts.append(b"Connection: Upgrade\r\n")
            self.mode = NO_BODY
        elif head.method == b"HEAD" or status in (204, 304) or status < 200:
            if conn.content_length is not None and status != 204:
                parts += (b"Content-Length: %d\r\n" % conn.content_length,)
            self.mode = NO_BODY
        elif conn.content_length is not None:
            parts.append(b"Content-Length: %d\r\n" % conn.content_length)
            self.mode = LENGTH
        elif head.version == b"1.1":
            parts.append(b"Transfer-Encoding: chunked\r\n")
            self.mode = CHUNKED
        else:
            self.mode = UNTIL_CLOSE
            self.keep_alive = False
        if not seen_request_id:
            parts += (b"X-Request-ID: ", self.request_id, b"\r\n")
        parts.append(VIA)
        if status != 101:
            if not self.keep_alive or client.draining:
                self.keep_alive = False
                parts.append(b"Connection: close\r\n")
            elif head.version == b"1.0":
                parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.response_started = True
        client.write(b"".join(parts))

    def on_response_body(self, chunk: bytes) -> None:
        if self.mode == CHUNKED:
            self.client.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        elif self.mode != NO_BODY:
            self.client.write(chunk)

    def on_response_end(self, conn: UpstreamConnection, *, reusable: bool) -> None:
        self.upstream = None
        if self.mode == CHUNKED:
            self.client.write(_LAST_CHUNK)
        pool = conn.pool
        if reusable and not self.finished:
            pool.release(conn)
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
            and self.head.replayable
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
