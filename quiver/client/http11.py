"""A lean HTTP/1.1 keep-alive transport for httpx: ``transport="http11"`` of the clients.

httpx's own transport (httpcore over h11, in pure Python) spends about 0.5 ms of CPU
receiving a 216 KB page, of the 0.8 ms a GET of it costs through httpx; here the
bytes of a response are parsed by httptools (C, llhttp) as they arrive, on a pooled
asyncio Protocol or a blocking socket (0.12 ms; see docs/client.md, "Transport").
It plugs in *under* httpx (an ``httpx.AsyncBaseTransport`` and
``httpx.BaseTransport``), so URLs, redirects, cookies, content decoding and the
timeouts httpx hands each request stay httpx's, and its errors are httpx's: the
client maps them as it does for httpx's own transport.

The clients also hand a plain GET to it directly (``fetch``): the request line and
headers as httpx would send them, encoded once per endpoint, and the response's
status, raw headers and body back, without httpx's per-request objects (its URL
parsing, ``Request``, ``Response`` and cookie extraction cost more CPU than the
exchange itself; see quiver/client/_async/client.py, ``_plain``).

What it does not speak goes to httpx's transport (``fallback``, made the first time it
is needed: it loads the CA certificates whatever the scheme): ``HEAD`` and
``CONNECT``, a request body that is a stream, any scheme but ``http``/``https``.
The clients keep httpx's transport altogether when a proxy is set in the
environment (``HTTP_PROXY`` and friends), which a custom transport would bypass.

The pool follows httpx's default limits: 100 connections, 20 kept idle for 5 s.
The read timeout runs from the last bytes received, as httpx's; the write timeout
bounds sending on the blocking transport (the asyncio one hands the request to
its loop's buffer at once).
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.request import getproxies

import httptools
import httpx

#: httpx's default pool limits (``httpx.Limits()``)
MAX_CONNECTIONS, MAX_IDLE, IDLE_EXPIRY = 100, 20, 5.0
_READ_SIZE = 256 * 1024
_SPOKEN = frozenset({b"http", b"https"})
_NO_BODY_STATUSES = frozenset({204, 304})

Origin = tuple[bytes, bytes, int]
#: a response as it came: status, raw headers, body (still content-encoded)
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: seconds per step, by httpx's names: connect, read, write, pool
Waits = Mapping[str, float | None]


def proxied_by_environment() -> bool:
    """Whether ``HTTP_PROXY``, ``HTTPS_PROXY`` or ``ALL_PROXY`` is set: httpx honours
    them only with its own transport."""
    return any(scheme in getproxies() for scheme in ("http", "https", "all"))


def spoken(request: httpx.Request) -> bool:
    """Whether the lean transport sends ``request`` (else the fallback does)."""
    return (
        request.url.raw_scheme in _SPOKEN
        and request.method not in ("HEAD", "CONNECT")
        and isinstance(request.stream, httpx.ByteStream)
    )


def encode(request: httpx.Request) -> bytes:
    """The request on the wire: httpx has set Host, Content-Length and the rest."""
    return head(request.method, request.url.raw_path, request.headers.raw) + request.read()


def head(method: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request's line and headers, up to the blank line that ends them."""
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class _Reader:
    """Feeds the bytes of one response to httptools (whose callbacks these methods
    are); I/O-free, shared by both transports."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.framed = False  # Content-Length or chunked: the end is known without a close
        self.keep_alive = False
        self.complete = False

    def feed(self, data: bytes) -> bool:
        """True once the response is complete; raises ``httpx.RemoteProtocolError``."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise httpx.RemoteProtocolError("the server switched protocols") from None
        except httptools.HttpParserError as exc:
            raise httpx.RemoteProtocolError(f"malformed response: {exc}") from exc
        return self.complete

    def closed(self) -> bool:
        """The server closed: True when that ends a response read until the close."""
        if not self.complete and self.status and not self.framed:
            self.complete = self.status not in _NO_BODY_STATUSES
        return self.complete

    def answer(self) -> Answer:
        # the reader and its parser refer to each other, so the garbage collector frees
        # them: the body leaves the reader to go with the answer instead (else pages
        # pile up between collections and the heap grows and shrinks by a page: a page
        # fault per 4 KB of it)
        body, self.body = b"".join(self.body), []
        return self.status, self.headers, body

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a message after the response: nobody asked for it
            raise httpx.RemoteProtocolError("the server sent more than one response")
        # the first message, or the real one after an interim (1xx) response
        self.headers, self.body, self.framed = [], [], False

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = self.status >= 200  # an interim response is not the answer


def _waits(request: httpx.Request) -> Waits:
    waits: Waits = request.extensions.get("timeout", {})
    return waits


def _response(request: httpx.Request, answer: Answer) -> httpx.Response:
    status, headers, body = answer
    return httpx.Response(
        status,
        headers=headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )


def origin_of(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.raw_scheme == b"https" else 80)
    return url.raw_scheme, url.raw_host, port


def _ssl_context(verify: ssl.SSLContext | bool | str) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    context: ssl.SSLContext = httpx.create_ssl_context(verify=verify)
    context.set_alpn_protocols(["http/1.1"])
    return context


# -- asyncio --------------------------------------------------------------------------------


class _AsyncConnection(asyncio.Protocol):
    """One keep-alive connection; a response's bytes are parsed as they arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.reader: _Reader | None = None
        self.done: asyncio.Future[None] | None = None
        self.open = True
        self.idle_since = 0.0
        self.heard = 0.0  # when bytes last arrived (the read timeout is per read, as httpx's)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader, done = self.reader, self.done
        if reader is None or done is None or done.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.heard = self.loop.time()
        try:
            if reader.feed(data):
                done.set_result(None)
        except httpx.RemoteProtocolError as exc:
            done.set_exception(exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        reader, done = self.reader, self.done
        if reader is None or done is None or done.done():
            return
        if reader.closed():
            done.set_result(None)
        else:
            done.set_exception(httpx.ReadError("the server closed the connection mid-response"))

    async def exchange(self, data: bytes, waits: Waits) -> Answer:
        assert self.transport is not None
        self.reader, self.done = _Reader(), self.loop.create_future()
        self.heard = self.loop.time()
        self.transport.write(data)
        timeout = waits.get("read")
        timer = None if timeout is None else self.loop.call_later(timeout, self._expire, timeout)
        try:
            await self.done
        finally:
            if timer is not None:
                timer.cancel()
        if not self.reader.keep_alive:
            self.close()
        return self.reader.answer()

    def usable(self, now: float) -> bool:
        """Open, not idle too long, and silent: an idle connection that is readable
        was closed by the server (the loop may not have said so yet)."""
        if not self.open or now - self.idle_since >= IDLE_EXPIRY or self.transport is None:
            return False
        return not _readable(self.transport.get_extra_info("socket"))

    def _expire(self, timeout: float) -> None:
        assert self.done is not None
        if self.done.done():
            return
        quiet = self.loop.time() - self.heard
        if quiet < timeout:
            self.loop.call_later(timeout - quiet, self._expire, timeout)
            return
        self.done.set_exception(httpx.ReadTimeout("no response bytes in time"))
        self.close()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class AsyncLeanTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        fallback: Callable[[], httpx.AsyncBaseTransport],
        verify: ssl.SSLContext | bool | str = True,
    ) -> None:
        self.make_fallback = fallback
        self.made: httpx.AsyncBaseTransport | None = None
        self.verify = verify
        self.ssl: ssl.SSLContext | None = None
        self.idle: dict[Origin, deque[_AsyncConnection]] = {}
        self.slots: asyncio.Semaphore | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not spoken(request):
            return await self.fallback().handle_async_request(request)
        answer = await self.fetch(origin_of(request.url), encode(request), _waits(request))
        return _response(request, answer)

    async def fetch(self, origin: Origin, data: bytes, waits: Waits) -> Answer:
        """``data`` (a whole request) sent to ``origin`` on a pooled connection; raises
        httpx's exceptions."""
        if self.slots is None:  # made on the loop that uses it
            self.slots = asyncio.Semaphore(MAX_CONNECTIONS)
        if self.slots.locked():
            try:
                await asyncio.wait_for(self.slots.acquire(), waits.get("pool"))
            except TimeoutError:
                raise httpx.PoolTimeout("no connection was free in time") from None
        else:
            await self.slots.acquire()  # at once (no wait_for: it costs a task)
        try:
            connection = self._idle(origin) or await self._connect(origin, waits)
            try:
                answer = await connection.exchange(data, waits)
            except BaseException:
                connection.close()  # failed or cancelled mid-exchange: never reused
                raise
            self._keep(origin, connection)
            return answer
        finally:
            self.slots.release()

    def _idle(self, origin: Origin) -> _AsyncConnection | None:
        connections, now = self.idle.get(origin), time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, waits: Waits) -> _AsyncConnection:
        scheme, host, port = origin
        context = None
        if scheme == b"https":
            self.ssl = self.ssl or _ssl_context(self.verify)
            context = self.ssl
        loop = asyncio.get_running_loop()
        name = host.decode("ascii")
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _AsyncConnection(loop),
                    name,
                    port,
                    ssl=context,
                    server_hostname=name if context else None,
                ),
                waits.get("connect"),
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {name}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        _nodelay(connection.transport)
        return connection

    def _keep(self, origin: Origin, connection: _AsyncConnection) -> None:
        if not connection.open:
            return
        idle = self.idle.setdefault(origin, deque())
        if len(idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since, connection.reader, connection.done = time.monotonic(), None, None
        idle.append(connection)

    async def aclose(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
        if self.made is not None:
            await self.made.aclose()

    def fallback(self) -> httpx.AsyncBaseTransport:
        if self.made is None:
            self.made = self.make_fallback()
        return self.made


def _readable(sock: Any) -> bool:
    readable, _, _ = select.select([sock.fileno()], [], [], 0)
    return bool(readable)


def _nodelay(transport: asyncio.BaseTransport | None) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# -- blocking -------------------------------------------------------------------------------


class _SyncConnection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.open = True
        self.idle_since = 0.0

    def exchange(self, data: bytes, waits: Waits) -> Answer:
        reader = _Reader()
        try:
            self.sock.settimeout(waits.get("write"))
            self.sock.sendall(data)
            self.sock.settimeout(waits.get("read"))
            while True:
                data = self.sock.recv(_READ_SIZE)
                if not data:
                    self.close()
                    if reader.closed():
                        break
                    raise httpx.ReadError("the server closed the connection mid-response")
                if reader.feed(data):
                    break
        except TimeoutError:
            self.close()
            raise httpx.ReadTimeout("no response bytes in time") from None
        except OSError as exc:
            self.close()
            raise httpx.ReadError(str(exc)) from exc
        except httpx.RemoteProtocolError:
            self.close()
            raise
        if not reader.keep_alive:
            self.close()
        return reader.answer()

    def usable(self, now: float) -> bool:
        """Open, not idle too long, and silent: an idle connection that is readable
        was closed by the server (or sent what nobody asked for)."""
        if not self.open or now - self.idle_since >= IDLE_EXPIRY:
            return False
        return not _readable(self.sock)

    def close(self) -> None:
        self.open = False
        self.sock.close()


class SyncLeanTransport(httpx.BaseTransport):
    def __init__(
        self,
        fallback: Callable[[], httpx.BaseTransport],
        verify: ssl.SSLContext | bool | str = True,
    ) -> None:
        self.make_fallback = fallback
        self.made: httpx.BaseTransport | None = None
        self.verify = verify
        self.ssl: ssl.SSLContext | None = None
        self.idle: dict[Origin, deque[_SyncConnection]] = {}
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not spoken(request):
            return self.fallback().handle_request(request)
        answer = self.fetch(origin_of(request.url), encode(request), _waits(request))
        return _response(request, answer)

    def fetch(self, origin: Origin, data: bytes, waits: Waits) -> Answer:
        """``data`` (a whole request) sent to ``origin`` on a pooled connection; raises
        httpx's exceptions."""
        if not self.slots.acquire(timeout=waits.get("pool")):
            raise httpx.PoolTimeout("no connection was free in time")
        try:
            connection = self._idle(origin) or self._connect(origin, waits)
            try:
                answer = connection.exchange(data, waits)
            except BaseException:
                connection.close()
                raise
            self._keep(origin, connection)
            return answer
        finally:
            self.slots.release()

    def _idle(self, origin: Origin) -> _SyncConnection | None:
        now = time.monotonic()
        with self.lock:
            connections = self.idle.get(origin)
            while connections:
                connection = connections.pop()
                if connection.usable(now):
                    return connection
                connection.close()
        return None

    def _connect(self, origin: Origin, waits: Waits) -> _SyncConnection:
        scheme, host, port = origin
        name = host.decode("ascii")
        try:
            sock = socket.create_connection((name, port), timeout=waits.get("connect"))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == b"https":
                self.ssl = self.ssl or _ssl_context(self.verify)
                sock = self.ssl.wrap_socket(sock, server_hostname=name)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {name}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        return _SyncConnection(sock)

    def _keep(self, origin: Origin, connection: _SyncConnection) -> None:
        if not connection.open:
            return
        with self.lock:
            idle = self.idle.setdefault(origin, deque())
            if len(idle) >= MAX_IDLE:
                connection.close()
                return
            connection.idle_since = time.monotonic()
            idle.append(connection)

    def close(self) -> None:
        with self.lock:
            for connections in self.idle.values():
                for connection in connections:
                    connection.close()
            self.idle.clear()
        if self.made is not None:
            self.made.close()

    def fallback(self) -> httpx.BaseTransport:
        with self.lock:
            if self.made is None:
                self.made = self.make_fallback()
            return self.made
