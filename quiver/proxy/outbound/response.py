"""One request of the outbound client on a pooled connection, and its response.

A :class:`Response` is what the pooled connection calls back, as it calls back a
proxied exchange (``quiver.proxy.upstream.Carried``): it is handed the head whole,
then the decoded body chunks, then the end; it buffers up to ``_HIGH_WATER`` bytes
before pausing the node.  The connection goes back to its pool once the body was
read to its end, and is dropped when the response is closed before.  How the
try went is told to a target's node through its :class:`~.admission.Admission`.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Self

from quiver.errors import BadGateway, GatewayTimeout, HTTPError, UpstreamResetError
from quiver.plugins.response import ResponseHead
from quiver.proxy.outbound.admission import Admission
from quiver.proxy.outbound.carried import WrittenWhole
from quiver.proxy.upstream import Node, UpstreamConnection, node_error

if TYPE_CHECKING:
    from quiver.proxy.snapshot import TargetRuntime

#: body bytes buffered before the node is paused, and below which it resumes
_HIGH_WATER = 1 << 18
_LOW_WATER = 1 << 16
_FRAMED = re.compile(rb"\r\n(?:content-length|transfer-encoding)[ \t]*:", re.I)


class Response(WrittenWhole):
    """One request on one pooled connection, and its response as it arrives."""

    __slots__ = (
        "_headers",
        "_waiter",
        "admission",
        "buffered",
        "chunks",
        "conn",
        "deadline",
        "ended",
        "error",
        "head",
        "loop",
        "method",
        "node",
        "paused",
        "raw_head",
        "reused",
        "stale",
        "status",
        "timeout",
    )

    def __init__(
        self,
        node: Node,
        method: bytes,
        head: bytes,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
        target: TargetRuntime | None = None,
        deadline: float | None = None,
    ) -> None:
        self.node = node
        self.method = method
        self.head = head  # the request, body included
        self.loop = loop
        self.timeout = timeout  # as the caller gave it, for the error that names it
        if deadline is None and timeout is not None:
            deadline = loop.time() + timeout
        self.deadline = deadline
        self.admission = Admission(node, loop, target)
        self.conn: UpstreamConnection | None = None
        self.reused = False
        self.stale = False
        self.status = 0
        self.raw_head = b""  # (the response's head as it came, decoded when asked)
        self._headers: list[tuple[str, str]] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.ended = False
        self.error: HTTPError | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- OutboundResponse -------------------------------------------------------------

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = self._headers
        if headers is None:
            raw = self.raw_head
            fields = ResponseHead(raw).fields if raw else ()
            headers = self._headers = [
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in fields
            ]
        return headers

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
                raise node_error(BadGateway, self.node, f"{{}} answered more than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.chunks.clear()
            conn = self._detach()
            if conn is not None:
                conn.abort()
            self.admission.release()  # abandoned before the head: nothing of the node

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the try (see quiver.proxy.outbound.wire.send_to_node) ------------------------

    def attach(self, conn: UpstreamConnection, *, reused: bool) -> None:
        """Send the request on ``conn``, pooled (``reused``) or new."""
        self.conn = conn
        self.reused = reused
        self.node.in_flight += 1
        self.admission.sent()
        conn.send(self, self.head, True)

    async def head_or_stale(self) -> bool:
        """Wait for the head or the try's failure (in ``error``); True instead when the
        pooled connection turned out to be closed by the node before it answered."""
        while not self.status and self.error is None and not self.stale:
            await self._wait()
        stale, self.stale = self.stale, False
        return stale

    def timed_out(self) -> GatewayTimeout:
        template = f"{{}} did not answer within {self.timeout:g}s"
        return node_error(GatewayTimeout, self.node, template)

    # -- waiting ------------------------------------------------------------------------

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
                self.admission.report("timeout")
            self.close()
            raise self.timed_out() from None
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._waiter = None

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

    # -- called back by the pooled connection -----------------------------------------

    def on_response_head(self, conn: UpstreamConnection, status: int, raw: bytes) -> bool:
        if status == 101:
            template = "{} switched protocols without being asked"
            self.error = node_error(BadGateway, self.node, template)
            self.admission.report("failure")
            self._detach()
            conn.abort()
            self._wake()
            return False
        self.status = status
        self.admission.answered(status)
        self.raw_head = raw
        self._headers = None
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
            conn.pool.release(conn)
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
            self.admission.report("timeout" if error.retry_kind == "timeout" else "failure")
        self._wake()
