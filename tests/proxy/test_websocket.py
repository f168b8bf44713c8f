"""Upgrade tunnels (RFC 9110 §7.8): the handshake is forwarded, then bytes pass untouched."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time

import pytest

from tests.support.proxy import RunningProxy, make_config, serve
from tests.support.streams import (
    MiB,
    Payload,
    Progress,
    Wire,
    proxy_buffered_bytes,
    send_counted,
    wait_until_stalled,
)
from tests.support.upstream import Conn, Request, Upstream, json_response

pytestmark = pytest.mark.timeout(30)

HANDSHAKE = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", "chat"),
]
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n\r\n"
)


class EchoNode:
    """Accepts the upgrade, then echoes raw bytes until the peer closes."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.requests: list[Request] = []
        self.peer_closed = threading.Event()
        self.conns: list[Conn] = []

    def __call__(self, conn: Conn) -> None:
        request = conn.read_request()
        if request is not None:
            self.tunnel(conn, request)

    def tunnel(self, conn: Conn, request: Request) -> None:
        self.requests.append(request)
        self.conns.append(conn)
        conn.send(SWITCHING + self.greeting)
        if conn.upgraded_rest:
            conn.send(conn.upgraded_rest)
        while True:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.peer_closed.set()
                return
            conn.send(data)


def open_tunnel(wire: Wire, early: bytes = b"") -> None:
    wire.send(wire.request("GET", "/chat?room=1", HANDSHAKE) + early)
    response = wire.read_response()
    assert response.status == 101, response.body


def test_upgrade_request_is_forwarded_with_its_handshake_headers() -> None:
    echo_node = EchoNode()
    with serve(echo_node) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire)
    request = echo_node.requests[0]
    assert (request.method, request.path) == ("GET", "/chat?room=1")
    assert request.header("upgrade") == "websocket"
    assert "upgrade" in (request.header("connection") or "").lower()
    assert request.header("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert request.header("sec-websocket-version") == "13"
    assert request.header("sec-websocket-protocol") == "chat"


def test_switching_protocols_response_reaches_the_client_with_its_headers() -> None:
    with serve(EchoNode()) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/chat", HANDSHAKE))
        response = wire.read_response()
    assert response.status == 101
    assert response.header("upgrade") == "websocket"
    assert "upgrade" in (response.header("connection") or "").lower()
    assert response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert response.header("sec-websocket-protocol") == "chat"
    assert not response.head.has("content-length")
    assert not response.head.has("transfer-encoding")


def test_bytes_pass_both_ways_through_the_tunnel() -> None:
    with serve(EchoNode()) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire)
        for size in (1, 2, 125, 126, 65535, 65536, 300_000):
            message = os.urandom(size)
            wire.send(message)
            assert wire.read_exactly(size) == message
        # bytes that look like HTTP are just bytes now
        fake = b"GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n"
        wire.send(fake)
        assert wire.read_exactly(len(fake)) == fake


def test_many_megabytes_pass_through_the_tunnel_intact() -> None:
    payload = Payload(16 * MiB, block_size=MiB)
    with serve(EchoNode()) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire)
        progress = Progress()
        sender = threading.Thread(target=send_counted, args=(wire.sock, payload.pieces(), progress))
        sender.start()
        digest = hashlib.sha256()
        for piece in wire.pieces(payload.size):
            digest.update(piece)
        sender.join(10)
    assert progress.error is None
    assert digest.hexdigest() == payload.sha256


def test_bytes_sent_with_the_handshake_and_with_the_101_are_not_lost() -> None:
    with serve(EchoNode(greeting=b"hello from node")) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire, early=b"early client bytes")
        assert wire.read_exactly(len(b"hello from node")) == b"hello from node"
        assert wire.read_exactly(len(b"early client bytes")) == b"early client bytes"
        wire.send(b"ping")
        assert wire.read_exactly(4) == b"ping"


def test_client_closing_the_tunnel_closes_the_upstream_side() -> None:
    echo_node = EchoNode()
    with serve(echo_node) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire)
        wire.send(b"bye")
        assert wire.read_exactly(3) == b"bye"
        wire.sock.close()
        assert echo_node.peer_closed.wait(5), "the node never saw the tunnel close"


def test_node_closing_the_tunnel_closes_the_client_side_after_its_last_bytes() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(SWITCHING)
        data = conn.sock.recv(100)
        conn.send(b"last words: " + data)
        conn.close()

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        open_tunnel(wire)
        wire.send(b"quit")
        assert wire.read_to_eof() == b"last words: quit"


def test_slow_client_slows_the_node_down_inside_the_tunnel() -> None:
    payload = Payload(48 * MiB)
    progress = Progress()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.send(SWITCHING)
        send_counted(conn.sock, payload.pieces(), progress)
        conn.close()

    with serve(handler) as (_, proxy), Wire(proxy.port, rcvbuf=65536) as wire:
        open_tunnel(wire)
        stream = wire.pieces(payload.size)
        digest = hashlib.sha256()
        digest.update(next(stream))
        assert wait_until_stalled(progress), (
            "the node sent everything to a client that is not reading"
        )
        assert progress.count < payload.size // 2
        assert proxy_buffered_bytes(proxy) < 4 * MiB
        for piece in stream:
            digest.update(piece)
    assert digest.hexdigest() == payload.sha256
    assert progress.error is None


def test_node_refusing_the_upgrade_has_its_answer_relayed_then_the_connection_closes() -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(400, b"websocket not allowed here", [("Content-Type", "text/plain")])

    with serve(handler) as (_, proxy), Wire(proxy.port, timeout=3) as wire:
        wire.send(wire.request("GET", "/chat", HANDSHAKE))
        response = wire.read_response()
        assert response.status == 400
        assert response.body == b"websocket not allowed here"
        assert response.header("connection") == "close"
        assert wire.closed_by_peer()


def test_node_refusing_the_upgrade_does_not_forward_bytes_sent_after_the_handshake() -> None:
    seen: list[bytes] = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(403, b"no")
        conn.sock.settimeout(2)
        try:
            while data := conn.sock.recv(65536):
                seen.append(data)
        except OSError:
            pass

    with serve(handler) as (node, proxy), Wire(proxy.port, timeout=3) as wire:
        wire.send(
            wire.request("GET", "/chat", HANDSHAKE) + b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = wire.read_response()
        assert response.status == 403
        assert wire.closed_by_peer()
    assert b"smuggled" not in b"".join(seen)
    assert [r.path for r in node.requests] == ["/chat"]


def test_switching_protocols_without_an_upgrade_request_is_a_bad_gateway() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(SWITCHING)

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/plain"))
        response = wire.read_response()
    assert response.status == 502
    assert response.json()["status"] == 502


def test_upgrade_to_an_unknown_route_is_404_and_nothing_is_tunnelled() -> None:
    with Upstream(EchoNode()) as node:
        routes = [{"name": "api", "paths": ["/api"], "target": "backend"}]
        with (
            RunningProxy(make_config({"backend": node.url}, routes)) as proxy,
            Wire(proxy.port, timeout=3) as wire,
        ):
            wire.send(wire.request("GET", "/chat", HANDSHAKE))
            response = wire.read_response()
            assert response.status == 404
            # bytes sent after an upgrade request cannot be trusted as HTTP: the connection ends
            assert wire.closed_by_peer()
    assert node.accepted == 0


def test_plain_requests_before_an_upgrade_on_the_same_connection() -> None:
    echo_node = EchoNode()

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.header("upgrade"):
                echo_node.tunnel(conn, request)
                return
            json_response(conn, request)

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/first"))
        assert wire.read_response().json()["path"] == "/first"
        open_tunnel(wire)
        wire.send(b"after upgrade")
        assert wire.read_exactly(13) == b"after upgrade"


# ----------------------------------------------------------------------- idle tunnels


class SilentNode:
    """Accepts the upgrade, then reads what the client sends and never answers."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.peer_closed = threading.Event()

    def __call__(self, conn: Conn) -> None:
        conn.read_request()
        conn.send(SWITCHING)
        while True:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.peer_closed.set()
                return
            self.received += data


def test_a_quiet_tunnel_outlives_the_read_timeout() -> None:
    with (
        serve(EchoNode(), timeouts={"read": 0.2}) as (_, proxy),
        Wire(proxy.port, timeout=5) as wire,
    ):
        open_tunnel(wire)
        wire.sock.settimeout(1.0)  # five read timeouts of silence
        with pytest.raises(TimeoutError):
            wire.sock.recv(1)
        wire.sock.settimeout(5)
        wire.send(b"still here")
        assert wire.read_exactly(10) == b"still here"


def test_client_traffic_alone_keeps_a_tunnel_open_until_it_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = SilentNode()
    caplog.set_level(logging.INFO, logger="quiver.tunnel")
    with (
        serve(node, timeouts={"tunnel_idle": 0.5}) as (_, proxy),
        Wire(proxy.port, timeout=5) as wire,
    ):
        open_tunnel(wire)
        for _ in range(8):  # 1.6 s of client bytes, each pause well below the idle timeout
            wire.send(b".")
            time.sleep(0.2)  # pacing the traffic, not waiting for the proxy
        assert not node.peer_closed.is_set()
        started = time.monotonic()
        assert wire.read_to_eof() == b""  # then silence: closed, not reset
        assert time.monotonic() - started < 3
        assert node.peer_closed.wait(5)
    assert bytes(node.received) == b"." * 8
    messages = [r.getMessage() for r in caplog.records if r.name == "quiver.tunnel"]
    assert any("timeouts.tunnel_idle" in message for message in messages), messages


def test_a_node_that_stops_reading_ends_the_tunnel_after_the_write_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished = threading.Event()

    def deaf(conn: Conn) -> None:
        conn.read_request()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        conn.send(SWITCHING)
        finished.wait(10)  # reads nothing more until the test is over

    caplog.set_level(logging.INFO, logger="quiver.tunnel")
    progress = Progress()
    with (
        serve(deaf, timeouts={"write": 0.3}) as (_, proxy),
        Wire(proxy.port, timeout=5) as wire,
    ):
        open_tunnel(wire)
        sender = threading.Thread(
            target=send_counted, args=(wire.sock, Payload(256 * MiB).pieces(), progress)
        )
        sender.start()
        try:
            assert progress.done.wait(10), "the client could send without end"
        finally:
            finished.set()
        sender.join(5)
    assert progress.error is not None  # the proxy cut the client off
    messages = [r.getMessage() for r in caplog.records if r.name == "quiver.tunnel"]
    assert any("timeouts.write" in message for message in messages), messages
