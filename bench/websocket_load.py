"""The processes ``bench/websocket_bench.py`` starts on the load core: the echo
server (``--echo``, and the plain GETs' node, ``--http``) and the load clients
(``--client``), with the WebSocket framing they share with the driver's own
handshake check.  Standard library only; uvloop when the interpreter has it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import json
import os
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# One key for every handshake: the client checks the answer against one precomputed
# accept value instead of hashing 10,000 times.
KEY = base64.b64encode(b"quiver-bench-key").decode()
HTTP_BODY = b"ok"
IP_BIND_ADDRESS_NO_PORT = 24  # Linux: the port is picked at connect(), per 4-tuple


def accept_value(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def run_loop(main: Coroutine[Any, Any, None]) -> str:
    """``main`` on uvloop when the interpreter has it; returns the loop's name."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        asyncio.run(main)
        return "asyncio"
    uvloop.run(main)
    return "uvloop"


def unmask(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    """One final frame; masked (as a client must) when ``mask`` is given."""
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head = bytes((0x80 | opcode, bit | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, bit | 127)) + size.to_bytes(8, "big")
    if mask:
        return head + mask + unmask(payload, mask)
    return head + payload


def next_frame(buf: bytearray) -> tuple[int, bytes, int] | None:
    """(opcode, unmasked payload, bytes used) of the first whole frame in ``buf``."""
    if len(buf) < 2:
        return None
    opcode, second = buf[0] & 0x0F, buf[1]
    size, at = second & 0x7F, 2
    if size == 126:
        if len(buf) < 4:
            return None
        size, at = int.from_bytes(buf[2:4], "big"), 4
    elif size == 127:
        if len(buf) < 10:
            return None
        size, at = int.from_bytes(buf[2:10], "big"), 10
    mask = b""
    if second & 0x80:
        if len(buf) < at + 4:
            return None
        mask, at = bytes(buf[at : at + 4]), at + 4
    if len(buf) < at + size:
        return None
    payload = bytes(buf[at : at + size])
    return opcode, unmask(payload, mask) if mask else payload, at + size


# --------------------------------------------------------------------------- echo server


class EchoServer(asyncio.Protocol):
    """Just enough RFC 6455: the handshake, then every data frame back unmasked;
    a ping gets a pong, a close a close.  A request without Upgrade gets ``ok``."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            lower = head.lower()
            del self.buf[: end + 4]
            if b"upgrade: websocket" in lower and (at := lower.find(b"sec-websocket-key:")) > 0:
                key = head[at + 18 :].split(b"\r\n", 1)[0].strip()
                self.transport.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                    + accept_value(key)
                    + b"\r\n\r\n"
                )
                self.upgraded = True
            else:
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(HTTP_BODY), HTTP_BODY)
                )
                if b"connection: close" in lower:
                    self.transport.close()
                    return
        while (found := next_frame(self.buf)) is not None:
            opcode, payload, used = found
            del self.buf[:used]
            if opcode == 0x8:
                self.transport.write(frame(0x8, payload[:2], None))
                self.transport.close()
                return
            self.transport.write(frame(0xA if opcode == 0x9 else opcode, payload, None))


async def serve_echo(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServer, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- load client


@dataclass
class ClientPlan:
    """What one client process does (its command line, as JSON)."""

    port: int
    path: str
    connections: int
    sources: list[str]
    rate: float  # messages per second, this process
    offset_ns: int  # its schedule starts this long after the shared start
    message_bytes: int
    warmup: float
    duration: float
    connect_timeout: float
    concurrency: int  # handshakes in flight at once
    top_up: bool  # then retry what failed, one at a time (the capacity probe)
    ready: str  # file written once every connection is tried
    go: str  # file the driver writes: {"t0_ns": ..., "stop": bool}
    result: str  # file written at the end


@dataclass
class Tally:
    """What the clients of one process saw."""

    connected: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    closed: int = 0  # connections lost after the handshake
    measure_from: int = 0  # ns: messages sent in [measure_from, measure_to) are timed
    measure_to: int = 0
    sent: int = 0  # timed messages
    latencies: list[int] = field(default_factory=list)  # ns
    bad: int = 0  # echoes that were not the message sent

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class WsClient(asyncio.Protocol):
    def __init__(self, request: bytes, accept: bytes, tally: Tally, size: int) -> None:
        self.request = request
        self.accept = accept
        self.tally = tally
        self.size = size
        self.buf = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def send(self, index: int) -> int:
        now = time.monotonic_ns()
        text = b"%019d %010d " % (now, index)
        payload = text + b"x" * (self.size - len(text))
        assert self.transport is not None
        self.transport.write(frame(0x1, payload, os.urandom(4)))
        return now

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.buf += data
        if not self.upgraded.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
                self.upgraded.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.open = True
            self.upgraded.set_result(None)
        tally = self.tally
        while (found := next_frame(self.buf)) is not None:
            opcode, payload, used = found
            del self.buf[:used]
            if opcode == 0x9 and self.transport is not None:
                self.transport.write(frame(0xA, payload, os.urandom(4)))
                continue
            if opcode != 0x1:
                continue
            if len(payload) != self.size or not payload[:19].isdigit():
                tally.bad += 1
                continue
            sent = int(payload[:19])
            if tally.measure_from <= sent < tally.measure_to:
                tally.latencies.append(now - sent)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.tally.closed += 1
        self.open = False
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed: {exc!r}"))


async def connect_one(
    plan: ClientPlan, source: str, request: bytes, accept: bytes, tally: Tally
) -> WsClient | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proto: WsClient | None = None
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        async with asyncio.timeout(plan.connect_timeout):
            await loop.sock_connect(sock, ("127.0.0.1", plan.port))
            _, proto = await loop.create_connection(
                lambda: WsClient(request, accept, tally, plan.message_bytes), sock=sock
            )
            await proto.upgraded
    except TimeoutError:
        tally.error("handshake timed out")
    except ConnectionError as exc:  # the proxy's answer instead of 101, or a reset
        tally.error(exc.strerror or str(exc)[:80] or type(exc).__name__)
    except OSError as exc:
        tally.error(exc.strerror or type(exc).__name__)
    else:
        return proto
    # a failed handshake's connection must not stay open and hold a descriptor of the
    # proxy's (uvloop's transport may own a duplicate of the socket's)
    if proto is not None and proto.transport is not None:
        proto.transport.abort()
    sock.close()
    tally.failed += 1
    return None


async def top_up(
    plan: ClientPlan, clients: list[WsClient], request: bytes, accept: bytes, tally: Tally
) -> None:
    """Replaces what failed one handshake at a time, until 20 in a row fail: many
    handshakes in flight at once hold descriptors of their own, so the first pass
    can stop short of what the proxy holds once they are done."""
    misses = 0
    index = 0
    while misses < 20 and sum(1 for c in clients if c.open) < plan.connections:
        source = plan.sources[index % len(plan.sources)]
        index += 1
        if (proto := await connect_one(plan, source, request, accept, tally)) is not None:
            clients.append(proto)
            misses = 0
        else:
            misses += 1


async def run_client(plan: ClientPlan) -> None:
    tally = Tally()
    request = (
        f"GET {plan.path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    accept = accept_value(KEY.encode())
    gate = asyncio.Semaphore(plan.concurrency)
    clients: list[WsClient] = []

    async def one(index: int) -> None:
        async with gate:
            source = plan.sources[index % len(plan.sources)]
            if (proto := await connect_one(plan, source, request, accept, tally)) is not None:
                clients.append(proto)

    await asyncio.gather(*(one(i) for i in range(plan.connections)))
    if plan.top_up:
        await top_up(plan, clients, request, accept, tally)
    tally.connected = len(clients)  # handshakes that succeeded
    Path(plan.ready).write_text(
        json.dumps(
            {
                "connected": tally.connected,
                # a proxy out of descriptors may close connections it had taken
                "open": sum(1 for c in clients if c.open),
                "failed": tally.failed,
                "errors": tally.errors,
            }
        )
    )
    while not os.path.exists(plan.go):
        await asyncio.sleep(0.02)
    order = json.loads(Path(plan.go).read_text())
    late: list[int] = []
    if not order["stop"] and clients and plan.rate > 0:
        late = await send_schedule(plan, clients, tally, int(order["t0_ns"]) + plan.offset_ns)
    live = [c for c in clients if c.open]
    closed_early = tally.closed  # before the closes below add to it
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    late.sort()
    Path(plan.result).write_text(
        json.dumps(
            {
                "connected": tally.connected,
                "failed": tally.failed,
                "errors": tally.errors,
                "open_at_end": len(live),
                "closed_early": closed_early,
                "sent": tally.sent,
                "received": len(tally.latencies),
                "bad_echoes": tally.bad,
                "late_p99_us": late[int(0.99 * (len(late) - 1))] // 1000 if late else 0,
                "late_max_us": late[-1] // 1000 if late else 0,
                "latencies_us": [v // 1000 for v in tally.latencies],
            }
        )
    )


async def send_schedule(
    plan: ClientPlan, clients: list[WsClient], tally: Tally, t0: int
) -> list[int]:
    """Message i is due at t0 + i / rate on connection i mod N; returns how late each
    timed message was written (ns), so that a client that fell behind shows."""
    interval = 1e9 / plan.rate
    warm_end = t0 + int(plan.warmup * 1e9)
    end = warm_end + int(plan.duration * 1e9)
    tally.measure_from, tally.measure_to = warm_end, end
    late: list[int] = []
    index = 0
    count = len(clients)
    while True:
        now = time.monotonic_ns()
        if now >= end:
            break
        due = int((now - t0) / interval) + 1 if now >= t0 else 0
        while index < due:
            client = clients[index % count]
            if client.open:
                sent = client.send(index)
                if sent >= warm_end:
                    tally.sent += 1
                    late.append(sent - (t0 + int(index * interval)))
            index += 1
        wake = t0 + index * interval
        await asyncio.sleep(max(0.0, (wake - time.monotonic_ns()) / 1e9))
    # the echoes of the last messages
    deadline = time.monotonic() + 5
    while len(tally.latencies) < tally.sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return late
