"""Nodes whose behaviour changes while they run, and load to send through the proxy.

A ``ScriptedNode`` answers ``200`` with its name as the body, so a client can tell
which node served it.  Tests switch ``mode`` and ``health`` at any time, hold
requests until ``release``, ``kill`` the node (listener gone, open connections
reset) and ``start`` it again on the same port.  Every request it reads is logged
with the time it arrived, health probes apart from the rest::

    with ScriptedNode("a") as a, ScriptedNode("b", delay=0.05) as b:
        ...                        # a target with nodes [a.url, b.url]
        a.mode = "reset"           # from now on a resets every connection
        wait_until(lambda: len(a.hits()) >= 3, "three requests reach a")
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from quiver.proxy.health import PassiveHealth
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Request

Mode = Literal["ok", "reset", "500", "hold"]
HOLD_PREFIX = "/hold"  # requests for these paths wait for ``release`` whatever the mode
LINGER_ZERO = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, not FIN
_WAIT = 5.0


def wait_until(predicate: Callable[[], object], what: str, timeout: float = _WAIT) -> None:
    """Poll ``predicate`` until it holds; fail the test if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.002)


def send_until(
    client: Client, done: Callable[[], object], what: str, timeout: float = _WAIT
) -> list[int]:
    """GET ``/`` on ``client`` one request after another until ``done()`` holds
    (bounded like ``wait_until``); the statuses the client got."""
    statuses: list[int] = []
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s sending requests until {what}")
        statuses.append(client.request("GET", "/").status)
    return statuses


@dataclass(frozen=True)
class Hit:
    """One request a node read."""

    at: float  # time.monotonic() when it was read
    path: str
    probe: bool  # a health probe (the node's health path)
    status: int | None  # what the node answered, None when it reset or was killed


class ScriptedNode:
    """A threaded HTTP/1.1 node on 127.0.0.1; see the module docstring.

    ``mode``: ``ok`` answers 200 with the name, ``500`` answers 500, ``reset`` reads
    the request and resets the connection, ``hold`` waits for ``release`` first.
    ``delay`` slows every answer; ``health`` is the status of ``health_path``.
    """

    def __init__(
        self, name: str, *, delay: float = 0.0, health_path: str = "/health", port: int = 0
    ) -> None:
        self.name = name
        self.mode: Mode = "ok"
        self.delay = delay
        self.health = 200
        self.health_path = health_path
        self.requests: list[Request] = []  # filled by Conn.read_request
        self.accepted = 0  # connections accepted, over every start
        self.log: list[Hit] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._conns: set[socket.socket] = set()
        self._generation = 0  # bumped by kill: requests read before it never get answered
        self.port = port
        self.listener: socket.socket | None = None
        self._stalled: list[socket.socket] = []
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self) -> list[Hit]:
        """Requests that were not health probes, oldest first."""
        with self._lock:
            return [hit for hit in self.log if not hit.probe]

    def probes(self) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.log if hit.probe]

    def events(self) -> list[Hit]:
        with self._lock:
            return list(self.log)

    def release(self) -> None:
        """Let held requests (and every later one) be answered."""
        self._released.set()

    def start(self) -> None:
        """Listen again, on the same port once it had one."""
        self._unstall()
        listener = socket.create_server(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def kill(self) -> None:
        """Stop listening and reset every open connection, as a crashed process would."""
        with self._lock:
            self._generation += 1
            listener, self.listener = self.listener, None
            conns = list(self._conns)
        if listener is not None:
            # shutdown wakes the thread blocked in accept; close alone would not
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
                sock.shutdown(socket.SHUT_RD)  # the reader wakes up and closes: RST
        self._unstall()

    def stall(self) -> None:
        """Kill the node but keep its port with a full accept queue: a new connection
        hangs in the handshake (the kernel drops its SYN) until ``start`` or ``kill``."""
        self.kill()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(0)  # room for one connection, never accepted
        filler = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        self._stalled = [listener, filler]

    def _unstall(self) -> None:
        for sock in self._stalled:
            sock.close()
        self._stalled = []

    def __enter__(self) -> ScriptedNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.kill()

    # -- serving ----------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.add(sock)
                generation = self._generation
            threading.Thread(target=self._serve, args=(sock, generation), daemon=True).start()

    def _serve(self, sock: socket.socket, generation: int) -> None:
        conn = Conn(sock, self)
        try:
            while (request := conn.read_request()) is not None:
                if not self._answer(conn, request, generation):
                    break
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _answer(self, conn: Conn, request: Request, generation: int) -> bool:
        """Answer one request; False when the connection is done."""
        path = request.path
        if path.split("?", 1)[0] == self.health_path:
            status = self.health
            self._record(path, probe=True, status=status)
            conn.respond(status, b"health", [("Connection", "close")])
            return False
        mode = self.mode
        if mode == "reset":
            self._record(path, probe=False, status=None)
            conn.reset()
            return False
        hit = self._record(path, probe=False, status=200 if mode != "500" else 500)
        if mode == "hold" or path.startswith(HOLD_PREFIX):
            self._released.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self._generation != generation:  # killed meanwhile: the answer never comes
            self._forget(hit)
            conn.reset()
            return False
        conn.respond(hit.status or 200, self.name.encode())
        return request.keep_alive

    def _record(self, path: str, *, probe: bool, status: int | None) -> Hit:
        hit = Hit(time.monotonic(), path, probe, status)
        with self._lock:
            self.log.append(hit)
        return hit

    def _forget(self, hit: Hit) -> None:
        with self._lock:
            index = self.log.index(hit)
            self.log[index] = Hit(hit.at, hit.path, hit.probe, None)


# -- clients ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes


def fetch(
    port: int,
    path: str = "/",
    headers: dict[str, str] | None = None,
    *,
    source: str = "127.0.0.1",
) -> Reply:
    """GET ``path`` on a new connection from the address ``source`` (any 127.x.y.z)."""
    lines = [f"GET {path} HTTP/1.1", "Host: test.local", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"no response: {data[:80]!r}")
    return Reply(int(head[9:12]), body)


@dataclass
class Load:
    """Threads sending GETs through the proxy until ``stop``: some on keep-alive
    connections, some on a new connection each.  Every outcome is kept."""

    port: int
    keep_alive: int = 2
    fresh: int = 2
    replies: list[Reply] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(kept,), daemon=True)
            for kept in [True] * self.keep_alive + [False] * self.fresh
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def count(self) -> int:
        with self._lock:
            return len(self.replies) + len(self.errors)

    def failures(self) -> list[str]:
        """Every request that did not end in a 200, described."""
        with self._lock:
            bad = [f"{r.status}: {r.body[:200]!r}" for r in self.replies if r.status != 200]
            return bad + self.errors

    def _run(self, keep_alive: bool) -> None:
        client: Client | None = None
        n = 0
        while not self._stop.is_set():
            n += 1
            path = f"/load/{n}"
            try:
                if keep_alive:
                    if client is None:
                        client = Client(self.port)
                    response = client.request("GET", path)
                    reply = Reply(response.status, response.body)
                else:
                    reply = fetch(self.port, path)
            except OSError as exc:
                with self._lock:
                    self.errors.append(f"GET {path}: {exc!r}")
                if client is not None:
                    client.close()
                    client = None
                continue
            with self._lock:
                self.replies.append(reply)
        if client is not None:
            client.close()


# -- the proxy's view -------------------------------------------------------------------


def revives_at(proxy: RunningProxy, node: ScriptedNode, target: str = "backend") -> float | None:
    """When (``time.monotonic``) the proxy's passive ejection of ``node`` ends; None if
    ``node`` is not ejected.  For timing checks only: behaviour is asserted on sockets."""

    def read() -> float | None:
        assert proxy.server is not None
        for candidate in proxy.server.state.snapshot.targets[target].nodes:
            if candidate.address[1] == node.port:
                passive: PassiveHealth = candidate.health.passive
                if not passive.ejected:
                    return None
                assert passive.revives_at is not None, "an ejection ends at a set time"
                return passive.revives_at - proxy.loop.time()
        raise LookupError(f"{node.url} is not a node of {target}")

    remaining = proxy.call(read)
    return None if remaining is None else time.monotonic() + remaining
