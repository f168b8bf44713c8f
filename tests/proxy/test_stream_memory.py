"""Large bodies stream through a ``quiver serve`` process in bounded memory.

A 1 GiB download and a 1 GiB upload pass through one worker while its resident
set size is sampled from /proc; it must stay within 50 MiB of what it was before
the transfer, and every byte must arrive intact.  Midway the receiving side stops
reading for a moment, so the proxy's flow control is what keeps memory down.
``QUIVER_TEST_STREAM_BYTES`` sets the size (for example ``268435456`` for a
quicker run).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import pytest

from tests.support.process import catch_all_config, rss_bytes, serving, write_config
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(240)

MiB = 1 << 20
SIZE = int(os.environ.get("QUIVER_TEST_STREAM_BYTES", str(1 << 30)))
BLOCK = MiB
MAX_GROWTH = 50 * MiB
# Each side stops reading for a while mid-transfer: without flow control the proxy
# would buffer everything the other side keeps sending meanwhile.
STALL_AFTER = 64 * MiB
STALL_SECONDS = 1.5


def numbered_blocks(size: int) -> Iterator[bytes]:
    """``size`` bytes of pseudo-random blocks, each starting with its index."""
    base = bytearray(os.urandom(BLOCK))
    index = 0
    sent = 0
    while sent < size:
        base[:8] = index.to_bytes(8, "big")
        chunk = bytes(base[: min(BLOCK, size - sent)])
        yield chunk
        sent += len(chunk)
        index += 1


class RssSampler:
    """The peak VmRSS of a process, sampled on a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_bytes(self.pid))


# -- the node's side --------------------------------------------------------------------------


@dataclass
class Download:
    """Answers GET /big with ``size`` bytes and Content-Length; small requests get 3 bytes."""

    size: int
    sha256: str = ""

    def __call__(self, conn: Conn) -> None:
        while True:
            request = conn.read_request()
            if request is None:
                return
            if request.path != "/big":
                conn.respond(200, b"ok\n")
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size)
            digest = hashlib.sha256()
            last = b""
            for chunk in numbered_blocks(self.size):
                digest.update(chunk)
                conn.sock.sendall(last)
                last = chunk
            # known before the last bytes go: the client compares once they arrive
            self.sha256 = digest.hexdigest()
            conn.sock.sendall(last)


@dataclass
class _CountingReader:
    """Parses requests, keeping only the size and hash of each body."""

    bodies: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.length = 0
        self.digest = hashlib.sha256()

    def on_message_begin(self) -> None:
        self.length = 0
        self.digest = hashlib.sha256()

    def on_body(self, body: bytes) -> None:
        self.length += len(body)
        self.digest.update(body)

    def on_message_complete(self) -> None:
        self.bodies.append((self.length, self.digest.hexdigest()))


def counting_sink(conn: Conn) -> None:
    """Reads each request body and discards it, answering with its size and SHA-256."""
    reader = _CountingReader()
    buffer = bytearray(4 * MiB)
    view = memoryview(buffer)
    total = 0
    stalled = False
    while True:
        received = conn.sock.recv_into(buffer)
        if not received:
            return
        total += received
        if not stalled and total > STALL_AFTER:
            stalled = True
            time.sleep(STALL_SECONDS)
        reader.parser.feed_data(view[:received])
        while reader.bodies:
            length, digest = reader.bodies.pop(0)
            answer = json.dumps({"bytes": length, "sha256": digest}).encode()
            conn.respond(200, answer, [("Content-Type", "application/json")])


# -- the client's side ------------------------------------------------------------------------


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, rest


def download(port: int, path: str) -> tuple[int, int, str]:
    """GET ``path`` and read the body into a reused buffer: status, length, SHA-256."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: big.test\r\n\r\n".encode())
        status, headers, rest = read_head(sock)
        expected = int(headers["content-length"])
        digest = hashlib.sha256(rest)
        received = len(rest)
        buffer = bytearray(4 * MiB)
        view = memoryview(buffer)
        stalled = False
        while received < expected:
            if not stalled and received > STALL_AFTER:
                stalled = True
                time.sleep(STALL_SECONDS)
            count = sock.recv_into(buffer)
            if not count:
                break
            digest.update(view[:count])
            received += count
        return status, received, digest.hexdigest()


def upload(port: int, size: int, *, chunked: bool) -> tuple[int, dict[str, object], str]:
    """POST ``size`` bytes; the node's answer and the SHA-256 of what was sent."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    digest = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /up HTTP/1.1\r\nHost: big.test\r\n{framing}\r\n\r\n".encode())
        for chunk in numbered_blocks(size):
            digest.update(chunk)
            if chunked:
                sock.sendall(b"%x\r\n" % len(chunk))
                sock.sendall(chunk)
                sock.sendall(b"\r\n")
            else:
                sock.sendall(chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        status, headers, rest = read_head(sock)
        while len(rest) < int(headers["content-length"]):
            rest += sock.recv(65536)
    return status, json.loads(rest), digest.hexdigest()


# -- the tests --------------------------------------------------------------------------------


def proxy_config(tmp_path: Path, upstream: Upstream) -> Path:
    return write_config(tmp_path, catch_all_config(upstream.url))


def report(label: str, seconds: float, baseline: int, sampler: RssSampler) -> None:
    print(
        f"{label}: {SIZE / MiB:.0f} MiB in {seconds:.1f}s ({SIZE / MiB / seconds:.0f} MiB/s); "
        f"RSS {baseline / MiB:.1f} -> peak {sampler.peak / MiB:.1f} MiB "
        f"({sampler.samples} samples)"
    )


def test_large_download_streams_in_bounded_memory(tmp_path: Path) -> None:
    node = Download(SIZE)
    with Upstream(node) as upstream, serving(proxy_config(tmp_path, upstream)) as proxy:
        # warm up: pools, buffers and lazily imported code are in place before measuring
        assert download(proxy.port, "/small")[:2] == (200, 3)
        baseline = rss_bytes(proxy.pid)
        started = time.monotonic()
        with RssSampler(proxy.pid) as sampler:
            status, received, digest = download(proxy.port, "/big")
        seconds = time.monotonic() - started
        report("download", seconds, baseline, sampler)
        assert status == 200
        assert received == SIZE
        assert digest == node.sha256
        assert sampler.peak - baseline < MAX_GROWTH


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_upload_streams_in_bounded_memory(tmp_path: Path, chunked: bool) -> None:
    with Upstream(counting_sink) as upstream, serving(proxy_config(tmp_path, upstream)) as proxy:
        small_status, small_answer, _ = upload(proxy.port, 3, chunked=chunked)
        assert (small_status, small_answer["bytes"]) == (200, 3)
        baseline = rss_bytes(proxy.pid)
        started = time.monotonic()
        with RssSampler(proxy.pid) as sampler:
            status, answer, digest = upload(proxy.port, SIZE, chunked=chunked)
        seconds = time.monotonic() - started
        report(f"upload ({'chunked' if chunked else 'content-length'})", seconds, baseline, sampler)
        assert status == 200
        assert answer == {"bytes": SIZE, "sha256": digest}
        assert sampler.peak - baseline < MAX_GROWTH
