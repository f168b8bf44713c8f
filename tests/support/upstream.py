"""Upstream servers for tests: real sockets, behaviour scripted per connection."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httptools

from tests.support.fields import field_value


@dataclass
class Request:
    method: str
    path: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    keep_alive: bool = True

    def header(self, name: str) -> str | None:
        return field_value(self.headers, name)


class _RequestReader:
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.done: list[Request] = []
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append(
            Request(
                self.parser.get_method().decode(),
                self.url.decode("latin-1"),
                self.parser.get_http_version(),
                self.headers,
                bytes(self.body),
                self.parser.should_keep_alive(),
            )
        )
        self._reset()


class Server(Protocol):
    """What a connection tells of the test server that accepted it."""

    port: int
    requests: list[Request]  # every request read on any of its connections


class Conn:
    """One accepted connection, with blocking helpers for scripted behaviour."""

    def __init__(self, sock: socket.socket, server: Server) -> None:
        self.sock = sock
        self.server = server
        self._reader = _RequestReader()
        self.upgraded_rest = b""

    def read_request(self, discard_body: bool = False) -> Request | None:
        """The next full request, or None when the peer closed."""
        reader = self._reader
        while not reader.done:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            try:
                reader.parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                self.upgraded_rest = data[exc.args[0] :]
            if discard_body:
                reader.body.clear()
        request = reader.done.pop(0)
        self.server.requests.append(request)
        return request

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def respond(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        reason: str = "OK",
    ) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        all_headers = list(headers or [])
        if not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in all_headers):
            all_headers.append(("Content-Length", str(len(body))))
        lines += [f"{n}: {v}" for n, v in all_headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def reset(self) -> None:
        """Close with RST instead of FIN."""
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.sock.close()


Handler = Callable[[Conn], None]


def json_response(conn: Conn, request: Request, **extra: Any) -> None:
    """Answer with JSON describing ``request`` (what ``echo`` sends), plus ``extra`` keys."""
    body = json.dumps(
        {
            "method": request.method,
            "path": request.path,
            "headers": request.headers,
            "body_length": len(request.body),
            "body": request.body[:1000].decode("latin-1"),
            **extra,
        }
    ).encode()
    conn.respond(200, body, [("Content-Type", "application/json")])


def echo(conn: Conn) -> None:
    """Answers every request with JSON describing it; keep-alive until the peer closes."""
    while True:
        request = conn.read_request()
        if request is None:
            return
        json_response(conn, request)
        if not request.keep_alive:
            conn.close()
            return


@dataclass
class Upstream:
    """A threaded TCP server on 127.0.0.1:0 running ``handler`` for each connection."""

    handler: Handler = echo
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        self._conns.append(sock)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                self._conns.append(sock)
            self.handler(Conn(sock, self))
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closed.set()
        # Wake the accept thread and let it end before the listener's descriptor is
        # freed: closed under a thread about to accept, the number could be reused by
        # the next test's listener, whose connections this server would then take.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        self.listener.close()
        for sock in self._conns:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def silent_until_closed(conn: Conn) -> None:
    """Reads and drops whatever comes until the peer closes the connection."""
    while True:
        try:
            if not conn.sock.recv(65536):
                return
        except OSError:
            return


def silent(conn: Conn) -> None:
    """Reads one request and never answers; holds the connection until the peer closes."""
    if conn.read_request() is not None:
        silent_until_closed(conn)


def reset_after_request(conn: Conn) -> None:
    """Reads one request, then resets the connection without a response byte."""
    if conn.read_request() is not None:
        conn.reset()
