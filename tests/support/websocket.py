"""WebSocket peers for tests: an echo server (the ``websockets`` library) and raw
frames for what a well-behaved library would never send."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class EchoServer:
    """Echoes every message (and answers pings, as the library does) until closed."""

    def __init__(self) -> None:
        self.closes: list[int | None] = []  # the close code each connection got
        self.opened = threading.Semaphore(0)
        self.server: Server = serve(self._echo, "127.0.0.1", 0, compression=None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        port = self.server.socket.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _echo(self, ws: ServerConnection) -> None:
        self.opened.release()
        try:
            for message in ws:
                ws.send(message)
        except ConnectionClosed:
            pass  # (a connection cut without a close frame: its code is None)
        self.closes.append(ws.close_code)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@contextmanager
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """One frame as RFC 6455 §5.2 lays it out (masked as a client's must be)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", size)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A WebSocket client on a plain socket: the handshake, then bytes as given."""

    def __init__(self, port: int, path: str = "/ws") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the gateway")
        return data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """The next (unmasked) frame from the server: its opcode and payload."""
        first, second = self._take(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack(">H", self._take(2))[0]
        elif size == 127:
            size = struct.unpack(">Q", self._take(8))[0]
        return first & 0x0F, self._take(size)

    def read_close_code(self) -> int:
        """The code of the close frame that comes next (after any data frames)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x8:
                return int(struct.unpack(">H", payload[:2])[0])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
