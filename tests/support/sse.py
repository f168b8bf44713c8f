"""Server-sent event streams over real sockets: a node that sends events one at a
time, and a client that reads a stream as it arrives."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import httptools

from tests.support.upstream import Conn

STEP_TIMEOUT = 10.0


@dataclass
class EventNode:
    """Sends ``events`` one by one, each only once ``ack`` says the client has the
    one before (so a stream held anywhere on the way stalls instead of passing).

    ``framing``: "chunked" or "close" (no length: the body ends when the node closes).
    ``pause_before``: index of an event before which the node waits for ``resume``.
    ``split_at``: with ``pause_before``, that event is sent in two pieces around the
    wait, cut at this offset (so the stream pauses inside an event).
    """

    events: list[bytes]
    framing: str = "chunked"
    pause_before: int | None = None
    split_at: int = 0
    acks: list[threading.Event] = field(default_factory=list)
    resume: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    last_event_ids: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.acks = [threading.Event() for _ in self.events]

    def __call__(self, conn: Conn) -> None:
        request = conn.read_request()
        if request is None:
            return
        self.last_event_ids.append(request.header("last-event-id"))
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        head += b"Transfer-Encoding: chunked\r\n\r\n" if self.framing == "chunked" else b"\r\n"
        conn.send(head)
        for index, event in enumerate(self.events):
            if index == self.pause_before:
                if self.split_at:
                    self._send(conn, event[: self.split_at])
                    event = event[self.split_at :]
                self.paused.set()
                if not self.resume.wait(STEP_TIMEOUT):
                    return
            self._send(conn, event)
            if not self.acks[index].wait(STEP_TIMEOUT):
                return  # the client never got it: the test fails on its side
        if self.framing == "chunked":
            conn.send(b"0\r\n\r\n")
            conn.read_request()  # keep-alive: the proxy may reuse or close it
        conn.close()

    def _send(self, conn: Conn, data: bytes) -> None:
        conn.send(b"%x\r\n%s\r\n" % (len(data), data) if self.framing == "chunked" else data)


class StreamClient:
    """One request whose response body is read as it comes (decoded from its framing)."""

    def __init__(self, port: int, path: str = "/events", headers: dict[str, str] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(STEP_TIMEOUT)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""  # everything decoded so far
        self.read = 0  # how much of ``body`` was handed out
        self.complete = False
        self._parser = httptools.HttpResponseParser(self)
        fields = {"Host": "t", "Accept": "text/event-stream", **(headers or {})}
        lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the proxy closed the stream")
        self._parser.feed_data(data)

    def until(self, marker: bytes) -> bytes:
        """The body from where the last call stopped up to and including ``marker``."""
        while True:
            end = self.body.find(marker, self.read)
            if end >= 0:
                piece = self.body[self.read : end + len(marker)]
                self.read = end + len(marker)
                return piece
            self._fill()

    def next_event(self) -> bytes:
        """The next piece of the stream ending in a blank line (an event or a comment)."""
        return self.until(b"\n\n")

    def finish(self) -> None:
        while not self.complete:
            self._fill()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
