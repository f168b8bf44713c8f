"""Byte-exact wire helpers for data-plane tests.

``Wire`` is a client connection that reads responses exactly as the proxy framed
them (so tests can assert on chunk framing, on bytes after a HEAD response, on a
close), keeping surplus bytes for the next read so pipelined answers are never
lost.  ``BodyReader`` reads a request body on the upstream side without holding
it in memory.  ``Payload`` is a large deterministic body with a known digest.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httptools

from tests.support.fields import field_value, field_values
from tests.support.proxy import RunningProxy
from tests.support.upstream import Conn

MiB = 1024 * 1024


# ----------------------------------------------------------------------- heads


@dataclass
class Head:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: bytes

    def header(self, name: str) -> str | None:
        return field_value(self.headers, name)

    def all(self, name: str) -> list[str]:
        return field_values(self.headers, name)

    def has(self, name: str) -> bool:
        return any(n.lower() == name.lower() for n, _ in self.headers)

    @property
    def names(self) -> list[str]:
        return [n.lower() for n, _ in self.headers]


def parse_head(raw: bytes) -> Head:
    """A response head (status line and fields, ending with the blank line)."""
    lines = raw.decode("latin-1").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))
    return Head(
        version.removeprefix("HTTP/"), int(status), reason[0] if reason else "", headers, raw
    )


@dataclass
class WireResponse:
    head: Head
    body: bytes = b""
    framing: str = "none"  # "none", "length", "chunked" or "close"
    raw_body: bytes = b""  # the body bytes as sent, chunk framing included

    @property
    def status(self) -> int:
        return self.head.status

    def header(self, name: str) -> str | None:
        return self.head.header(name)

    def json(self) -> Any:
        return json.loads(self.body)


# ----------------------------------------------------------------------- client


class Wire:
    """A raw client connection that reads responses byte-exactly."""

    def __init__(self, port: int, *, timeout: float = 10.0, rcvbuf: int | None = None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # set before connecting so the TCP window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        self.sock = sock
        self.buffer = b""
        self.eof = False

    # -- sending

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        host: str = "test.local",
        version: str = "1.1",
    ) -> bytes:
        """Bytes of one request; Content-Length is added for a body unless framed already."""
        fields = [("Host", host)] if host else []
        fields += headers or []
        if body and not any(
            n.lower() in ("content-length", "transfer-encoding") for n, _ in fields
        ):
            fields.append(("Content-Length", str(len(body))))
        lines = [f"{method} {path} HTTP/{version}"] + [f"{n}: {v}" for n, v in fields]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    # -- reading

    def _fill(self) -> bool:
        """Read more into the buffer; False at end of stream."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        """Bytes up to and including ``marker``."""
        start = 0
        while True:
            index = self.buffer.find(marker, start)
            if index >= 0:
                end = index + len(marker)
                data, self.buffer = self.buffer[:end], self.buffer[end:]
                return data
            start = max(0, len(self.buffer) - len(marker) + 1)
            if not self._fill():
                raise ConnectionError(f"closed before {marker!r}; got {self.buffer[:200]!r}")

    def pieces(self, size: int | None) -> Iterator[bytes]:
        """The next ``size`` bytes (all until the peer closes when None), as they arrive."""
        left = size
        if self.buffer:
            data = self.buffer if left is None else self.buffer[:left]
            self.buffer = self.buffer[len(data) :]
            if left is not None:
                left -= len(data)
            yield data
        while left is None or left > 0:
            try:
                data = self.sock.recv(262144 if left is None else min(left, 262144))
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
                if left is None:
                    return
                raise ConnectionError(f"closed with {left} of {size} bytes missing")
            if left is not None:
                left -= len(data)
            yield data

    def read_exactly(self, size: int) -> bytes:
        return b"".join(self.pieces(size))

    def read_to_eof(self) -> bytes:
        return b"".join(self.pieces(None))

    def body_pieces(self, head: Head) -> Iterator[bytes]:
        """The decoded body of a response to a GET whose ``head`` was just read."""
        if head.status < 200 or head.status in (204, 304):
            return
        if "chunked" in (head.header("transfer-encoding") or "").lower():
            while True:
                size = int(self.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    return
                yield from self.pieces(size)
                assert self.read_exactly(2) == b"\r\n", "chunk data not followed by CRLF"
        length = head.header("content-length")
        yield from self.pieces(int(length) if length is not None else None)

    def read_head(self) -> Head:
        return parse_head(self.read_until(b"\r\n\r\n"))

    def read_chunked(self) -> tuple[bytes, bytes]:
        """A chunked body: (decoded, raw as sent)."""
        raw: list[bytes] = []
        body: list[bytes] = []
        while True:
            line = self.read_until(b"\r\n")
            raw.append(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailer section, ended by an empty line
                    trailer = self.read_until(b"\r\n")
                    raw.append(trailer)
                    if trailer == b"\r\n":
                        return b"".join(body), b"".join(raw)
            chunk = self.read_exactly(size + 2)
            assert chunk[-2:] == b"\r\n", f"chunk of {size} bytes not followed by CRLF"
            raw.append(chunk)
            body.append(chunk[:-2])

    def read_response(self, *, head_request: bool = False, interim: bool = False) -> WireResponse:
        """The next response, framed as RFC 9112 §6.3 says; 1xx skipped unless ``interim``."""
        while True:
            head = self.read_head()
            if 100 <= head.status < 200 and head.status != 101 and not interim:
                continue
            break
        if head_request or head.status < 200 or head.status in (204, 304):
            return WireResponse(head)
        if "chunked" in (head.header("transfer-encoding") or "").lower():
            body, raw = self.read_chunked()
            return WireResponse(head, body, "chunked", raw)
        length = head.header("content-length")
        if length is not None:
            body = self.read_exactly(int(length))
            return WireResponse(head, body, "length", body)
        body = self.read_to_eof()
        return WireResponse(head, body, "close", body)

    def closed_by_peer(self) -> bool:
        """True when the peer closed without sending anything more (waits up to the timeout).

        Bytes that arrive instead stay in the buffer and make the answer False.
        """
        if self.buffer:
            return False
        if self.eof:
            return True
        return not self._fill()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- big bodies


@dataclass
class Payload:
    """``size`` deterministic, non-repeating-looking bytes, produced block by block."""

    size: int
    block_size: int = MiB
    blocks: list[bytes] = field(init=False)

    def __post_init__(self) -> None:
        seed = hashlib.sha256(b"quiver-payload").digest()
        # a few distinct blocks, so a duplicated or dropped block changes the digest
        self.blocks = [
            hashlib.shake_256(seed + bytes([i])).digest(self.block_size) for i in range(7)
        ]

    def pieces(self) -> Iterator[bytes]:
        left = self.size
        index = 0
        while left > 0:
            block = self.blocks[index % len(self.blocks)]
            piece = block if left >= len(block) else block[:left]
            left -= len(piece)
            index += 1
            yield piece

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()


class Progress:
    """A byte counter shared between a sending thread and the test."""

    def __init__(self) -> None:
        self.count = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def add(self, n: int) -> None:
        self.count += n


def send_counted(
    sock: socket.socket, pieces: Iterator[bytes], progress: Progress, piece_size: int = 65536
) -> None:
    """``sendall`` in small pieces, counting what the kernel took; sets ``done`` at the end."""
    try:
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), piece_size):
                part = view[start : start + piece_size]
                sock.sendall(part)
                progress.add(len(part))
    except OSError as exc:
        progress.error = exc
    finally:
        progress.done.set()


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The pieces framed as HTTP/1.1 chunks, then the last chunk."""
    for piece in pieces:
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def wait_until_stalled(progress: Progress, *, quiet: float = 0.4, limit: float = 8.0) -> bool:
    """Poll ``progress`` until it stops moving for ``quiet`` seconds (True) or finishes (False)."""
    deadline = time.monotonic() + limit
    last = progress.count
    since = time.monotonic()
    while time.monotonic() < deadline:
        if progress.done.wait(0.05):
            return False
        now = time.monotonic()
        if progress.count != last:
            last, since = progress.count, now
        elif now - since >= quiet:
            return True
    raise AssertionError(f"still moving after {limit}s ({progress.count} bytes)")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll until ``predicate()`` is true; False when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class BodyReader:
    """Reads one request from an upstream ``Conn`` socket, digesting the body as it comes.

    ``pause`` (if given) is waited on once ``pause_after`` body bytes were read, to
    play a node that stops reading.
    """

    def __init__(
        self, conn: Conn, *, pause: threading.Event | None = None, pause_after: int = 0
    ) -> None:
        self.conn = conn
        self.pause = pause
        self.pause_after = pause_after
        self.parser = httptools.HttpRequestParser(self)
        self.headers: list[tuple[str, str]] = []
        self.digest = hashlib.sha256()
        self.received = 0
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.digest.update(body)
        self.received += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def header(self, name: str) -> str | None:
        return field_value(self.headers, name)

    def read(self) -> None:
        sock = self.conn.sock
        while not self.complete:
            size = 65536
            if self.pause is not None and self.received < self.pause_after:
                size = min(size, self.pause_after - self.received) or size
            data = sock.recv(size)
            if not data:
                raise ConnectionError(f"request body cut after {self.received} bytes")
            self.parser.feed_data(data)
            if self.pause is not None and self.received >= self.pause_after:
                self.pause.wait(20)
                self.pause = None


# ----------------------------------------------------------------------- proxy internals


def proxy_buffered_bytes(proxy: RunningProxy) -> int:
    """Bytes the proxy holds in user space for its client connections right now.

    Sums the write buffers of every client transport and of the upstream transport
    serving it, plus request body bytes waiting for an upstream connection.  Read
    on the proxy's own loop, so the numbers are consistent.
    """

    def measure() -> int:
        assert proxy.server is not None
        total = 0
        for conn in list(proxy.server.state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                total += transport.get_write_buffer_size()
            exchange = getattr(conn, "current", None)
            upstream = getattr(exchange, "upstream", None)
            upstream_transport = getattr(upstream, "transport", None)
            if upstream_transport is not None:
                total += upstream_transport.get_write_buffer_size()
            total += getattr(exchange, "buffered", 0) or 0
        return total

    return int(proxy.call(measure))


def idle_upstream_connections(proxy: RunningProxy, target: str) -> int:
    """Open connections waiting in the pools of ``target``'s nodes, read on the proxy's loop."""

    def count() -> int:
        assert proxy.server is not None
        total = 0
        for node in proxy.server.state.snapshot.targets[target].nodes:
            assert node.pool is not None
            for conn in node.pool.idle:
                if conn.transport is not None and not conn.transport.is_closing():
                    total += 1
        return total

    return int(proxy.call(count))
