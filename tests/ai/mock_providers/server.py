"""The mocks' HTTP/1.1 server: one asyncio loop on its own thread, real sockets.

A provider module answers a :class:`MockRequest` with a :class:`Reply` (a whole body
with its length) or a :class:`StreamReply` (chunked, written piece by piece as its
iterator yields, so a client sees the first token before the last one exists).  A
stream piece may be :data:`CUT`: the connection is then dropped mid-body, the way a
provider's load balancer drops a long stream.  Every request is recorded with what
the mock answered, for tests to assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools
import orjson

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    529: "Overloaded",
    599: "Mock Provider Failed",
}


class Cut:
    """Marker piece of a stream: drop the connection here."""


CUT = Cut()


@dataclass
class MockRequest:
    """One request as a provider received it, and what the mock made of it."""

    method: str
    target: str  # path and query as sent on the request line
    headers: dict[str, str]  # names lowercased; a repeated field keeps its last value
    body: bytes
    provider: str = ""  # which mock answered: the provider type, e.g. "azure-openai"
    path: str = ""  # the path inside the provider's prefix, percent-encoding kept
    status: int = 0  # the status the mock answered
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens the mock counted
    json: Any = None  # the parsed body, when it was JSON
    received: float = field(default_factory=time.monotonic)  # when its body was read

    @property
    def full_path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds before the head is written (a slow model)
    cut: bool = False  # write half the body, then drop the connection


@dataclass
class StreamReply:
    status: int
    pieces: AsyncIterator[bytes | Cut]
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(
    status: int, data: Any, headers: list[tuple[str, str]] | None = None, **options: Any
) -> Reply:
    """``data`` as an ``application/json`` reply."""
    head = [("Content-Type", "application/json"), *(headers or [])]
    return Reply(status, orjson.dumps(data), head, **options)


Handler = Callable[[MockRequest], Awaitable[Reply | StreamReply]]


class _Parser:
    """httptools callbacks collecting whole requests."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.done: list[MockRequest] = []
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        self.done.append(MockRequest(method, self.url.decode(), self.headers, bytes(self.body)))


class MockServer:
    """An HTTP/1.1 server on 127.0.0.1:0 whose loop runs on a daemon thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[MockRequest] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        self.port = future.result(10)

    async def _open(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        """Close the listener and every open connection, then end the loop's thread."""

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        parser = _Parser()
        try:
            while True:
                while not parser.done:
                    data = await reader.read(65536)
                    if not data:
                        return
                    parser.parser.feed_data(data)
                request = parser.done.pop(0)
                self.requests.append(request)
                try:
                    reply = await self.handler(request)
                except Exception:  # a bug of the mock: said plainly, never a hang
                    trace = traceback.format_exc().encode()
                    reply = Reply(599, trace, [("Content-Type", "text/plain")])
                request.status = reply.status
                gzip_ok = "gzip" in (request.header("accept-encoding") or "")
                keep = await self._write(writer, reply, gzip_ok)
                if not keep or not parser.parser.should_keep_alive():
                    return
        except (ConnectionError, httptools.HttpParserError, asyncio.CancelledError):
            return  # a cancelled handler ends quietly: the server is stopping
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _write(
        self, writer: asyncio.StreamWriter, reply: Reply | StreamReply, gzip_ok: bool
    ) -> bool:
        """Write ``reply``; False when the connection must not be used again.  A whole
        body goes gzip-compressed to a client that accepts it, as the providers' CDNs do."""
        head = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        if isinstance(reply, Reply):
            if reply.delay:
                await asyncio.sleep(reply.delay)
            whole = reply.body
            if gzip_ok and whole:
                whole = gzip.compress(whole, mtime=0)
                head.append("Content-Encoding: gzip")
            head.append(f"Content-Length: {len(whole)}")
            body = whole[: len(whole) // 2] if reply.cut else whole
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            if reply.cut:
                writer.transport.abort()
                return False
            return True
        head.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        async for piece in reply.pieces:
            if isinstance(piece, Cut):
                writer.transport.abort()
                return False
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
