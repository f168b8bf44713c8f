#!/usr/bin/env python3
"""WebSocket relay CPU: Quiver's CPU seconds per echoed message, through an opaque
tunnel (a route without ``websocket:``) and through the frame-aware relay (a route
with limits), in one run against the same echo node.

    .venv/bin/python bench/websocket_cpu.py                  # 20000 x 64 B, 2000 x 16 KiB
    MESSAGES=5000 .venv/bin/python bench/websocket_cpu.py    # quick look
    QUIVER="python -m quiver.cli" PYTHONPATH=/other/tree ... # another tree's quiver

The node (the ``websockets`` library, its own process) echoes every message; the
client (raw frames on a plain socket, this process) keeps ``WINDOW`` messages in
flight.  Quiver's whole process tree is metered (scheduler nanoseconds) while the
client sends; what is reported is microseconds of Quiver CPU per message (one
message each way), the least and the median of ``ROUNDS`` rounds.  Compare the opaque line
between two trees to see what the relay costs an opaque tunnel.
"""

from __future__ import annotations

import os
import shlex
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rig import free_port, process_tree

MESSAGES = int(os.environ.get("MESSAGES", "20000"))
WINDOW = int(os.environ.get("WINDOW", "64"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
QUIVER = shlex.split(os.environ.get("QUIVER", f"{sys.executable} -m quiver.cli"))
#: FRAMED=0: the opaque route only (for a tree that has no ``websocket:`` setting)
FRAMED = os.environ.get("FRAMED", "1") != "0"

NODE = """
import sys
from websockets.sync.server import serve
from websockets.exceptions import ConnectionClosed
def echo(ws):
    try:
        for message in ws:
            ws.send(message)
    except ConnectionClosed:
        pass
with serve(echo, "127.0.0.1", int(sys.argv[1]), compression=None, max_size=None) as server:
    server.serve_forever()
"""


class CpuClock:
    """CPU nanoseconds of a process tree's threads (/proc/PID/task/TID/schedstat: the
    scheduler's own count, finer than the tick-based utime and stime)."""

    def __init__(self, root: int) -> None:
        self.root = root

    def read(self) -> int:
        total = 0
        for pid in process_tree(self.root):
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        return total


def masked_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        head = bytes((0x82, 0x80 | size))
    elif size < 65536:
        head = bytes((0x82, 0x80 | 126)) + struct.pack(">H", size)
    else:
        head = bytes((0x82, 0x80 | 127)) + struct.pack(">Q", size)
    return head + b"\0\0\0\0" + payload  # (a zero mask: the payload as it is)


def handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return sock


def echo_round(sock: socket.socket, frame: bytes, answer_size: int, count: int) -> None:
    """Send ``count`` frames, at most WINDOW unanswered, and read every echo."""
    sent = 0
    owed = 0
    while sent < count or owed:
        while sent < count and owed < WINDOW * answer_size:
            sock.sendall(frame)
            sent += 1
            owed += answer_size
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed mid-run")
        owed -= len(data)


def measure(clock: CpuClock, port: int, path: str, size: int, count: int) -> tuple[float, float]:
    """Microseconds of Quiver CPU per message: the least and the median of ROUNDS
    rounds (the least is the one other load on the machine disturbed least)."""
    frame = masked_frame(os.urandom(size))
    answer = size + (2 if size < 126 else 4 if size < 65536 else 10)
    results = []
    with handshake(port, path) as sock:
        echo_round(sock, frame, answer, 200)  # warm up
        for _ in range(ROUNDS):
            before = clock.read()
            echo_round(sock, frame, answer, count)
            results.append((clock.read() - before) / count / 1000)
    return min(results), statistics.median(results)


def main() -> None:
    node_port, proxy_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "quiver.yaml"
        config.write_text(
            f"listen: 127.0.0.1:{proxy_port}\n"
            f"targets: [{{name: node, url: 'http://127.0.0.1:{node_port}'}}]\n"
            "routes:\n"
            "  - {name: opaque, paths: [/opaque], target: node}\n"
            + (
                "  - name: framed\n"
                "    paths: [/framed]\n"
                "    target: node\n"
                "    websocket: {max_message_size: 1MiB, idle_timeout: 60s, message_rate: 1e6}\n"
                if FRAMED
                else ""
            )
        )
        node = subprocess.Popen([sys.executable, "-c", NODE, str(node_port)])
        proxy = subprocess.Popen(
            [*QUIVER, "serve", "-c", str(config), "--run-dir", scratch],
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
                    socket.create_connection(("127.0.0.1", node_port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            clock = CpuClock(proxy.pid)
            for size, count in ((64, MESSAGES), (16384, max(MESSAGES // 10, 100))):
                for path in ("/opaque", "/framed") if FRAMED else ("/opaque",):
                    least, median = measure(clock, proxy_port, path, size, count)
                    print(
                        f"{path[1:]:>7} {size:>6} B x {count}: {least:6.2f} us CPU per message "
                        f"(median {median:.2f})"
                    )
        finally:
            proxy.terminate()
            node.terminate()
            proxy.wait(20)
            node.wait(20)


if __name__ == "__main__":
    main()
