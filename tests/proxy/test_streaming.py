"""Bodies through the proxy: framing in both directions, interim responses, large streams
and flow control (a slow reader on either side slows the other side down instead of
making the proxy buffer)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading

import pytest

from tests.support.proxy import RunningProxy, make_config, serve
from tests.support.streams import (
    BodyReader,
    MiB,
    Payload,
    Progress,
    Wire,
    chunked,
    proxy_buffered_bytes,
    send_counted,
    wait_until_stalled,
)
from tests.support.upstream import Conn, Handler, Upstream

pytestmark = pytest.mark.timeout(60)

BIG = 64 * MiB
# What the proxy may hold in user space for one connection while a side is stalled:
# a few socket reads and the transports' high-water marks, far below the body size.
USER_SPACE_BOUND = 4 * MiB


# ----------------------------------------------------------------------- request bodies


def test_expect_100_continue_is_answered_before_the_body_is_sent(
    proxy: RunningProxy, node: Upstream
) -> None:
    with Wire(proxy.port) as wire:
        wire.send(
            b"POST /upload HTTP/1.1\r\nHost: t\r\n"
            b"Expect: 100-continue\r\nContent-Length: 11\r\n\r\n"
        )
        assert wire.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        wire.send(b"hello world")
        response = wire.read_response()
        assert response.status == 200
        report = response.json()
    assert report["body"] == "hello world"
    assert "expect" not in [n.lower() for n, _ in report["headers"]]


def test_expect_100_continue_with_a_chunked_body(proxy: RunningProxy) -> None:
    with Wire(proxy.port) as wire:
        wire.send(
            b"PUT /up HTTP/1.1\r\nHost: t\r\n"
            b"Expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert wire.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        wire.send(b"4\r\nabcd\r\n0\r\n\r\n")
        report = wire.read_response().json()
    assert report["body"] == "abcd"
    assert "expect" not in [n.lower() for n, _ in report["headers"]]


def test_expect_100_continue_for_an_unroutable_request_gets_the_final_answer(
    node: Upstream,
) -> None:
    routes = [{"name": "api", "paths": ["/api"], "target": "backend"}]
    with (
        RunningProxy(make_config({"backend": node.url}, routes)) as proxy,
        Wire(proxy.port) as wire,
    ):
        wire.send(
            b"POST /nowhere HTTP/1.1\r\nHost: t\r\n"
            b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        response = wire.read_response(interim=True)
    assert response.status == 404
    assert node.requests == []


def test_expect_100_continue_from_an_http10_client_is_ignored(proxy: RunningProxy) -> None:
    # RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored,
    # and an HTTP/1.0 client must never be sent a 1xx response (§15.2).
    with Wire(proxy.port, timeout=3) as wire:
        wire.send(b"POST /old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        response = wire.read_response(interim=True)
    assert response.status == 200
    assert response.json()["body"] == "hi"


def test_chunked_request_body_arrives_intact_and_chunked(proxy: RunningProxy) -> None:
    body = bytes(range(256)) * 40
    parts = [body[:1], body[1:4000], body[4000:4001], body[4001:]]
    framed = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts[:2])
    framed += b"%x;name=value\r\n" % len(parts[2]) + parts[2] + b"\r\n"
    framed += b"%X\r\n" % len(parts[3]) + parts[3] + b"\r\n0\r\n\r\n"

    received: list[bytes] = []

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            received.append(request.body)
            conn.respond(200, json.dumps({"headers": request.headers}).encode())

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + framed)
        response = wire.read_response()
        # and the connection is in step for the next request
        wire.send(wire.request("POST", "/d", body=b"next"))
        assert wire.read_response().status == 200
    headers = {n.lower(): v for n, v in response.json()["headers"]}
    assert received == [body, b"next"]
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers


def test_chunked_request_body_with_trailer_fields_is_accepted(proxy: RunningProxy) -> None:
    # RFC 9112 §7.1.2: a trailer section may follow the last chunk; the proxy may drop
    # it, but the request itself is valid and must be forwarded.
    with Wire(proxy.port) as wire:
        wire.send(
            b"POST /t HTTP/1.1\r\nHost: t\r\n"
            b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Checksum: 900150983cd24fb0\r\n\r\n"
        )
        response = wire.read_response()
        assert response.status == 200, response.body
        assert response.json()["body"] == "abc"
        wire.send(wire.request("GET", "/after"))
        assert wire.read_response().json()["path"] == "/after"


def test_content_length_request_body_arrives_intact(proxy: RunningProxy) -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            digest = hashlib.sha256(request.body).hexdigest()
            conn.respond(200, json.dumps({"sha256": digest, "headers": request.headers}).encode())

    body = Payload(3 * MiB + 17, block_size=MiB // 2)
    data = b"".join(body.pieces())
    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("POST", "/cl", body=data))
        report = wire.read_response().json()
    assert report["sha256"] == body.sha256
    headers = {n.lower(): v for n, v in report["headers"]}
    assert headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in headers


# ----------------------------------------------------------------------- response framing


def test_chunked_response_is_relayed_chunked_to_an_http11_client() -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
                b"5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
            )

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        for _ in range(2):
            wire.send(wire.request())
            response = wire.read_response()
            assert response.framing == "chunked"
            assert response.body == b"hello world"
            assert not response.head.has("content-length")
        assert node.accepted == 1


def test_close_delimited_response_reaches_an_http11_client_chunked_and_complete() -> None:
    body = Payload(2 * MiB + 3, block_size=65536)

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        for piece in body.pieces():
            conn.send(piece)
        conn.close()

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        for _ in range(2):  # the client connection survives the node's close
            wire.send(wire.request())
            response = wire.read_response()
            assert response.status == 200
            assert response.framing == "chunked"
            assert hashlib.sha256(response.body).hexdigest() == body.sha256
            assert response.header("connection") is None
        assert node.accepted == 2


def test_empty_close_delimited_response_is_an_empty_chunked_body() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\n")
        conn.close()

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request())
        response = wire.read_response()
    assert response.framing == "chunked"
    assert response.body == b""


@pytest.mark.parametrize(
    "framing",
    [("Content-Length", "1234"), ("Transfer-Encoding", "chunked")],
    ids=["content-length", "chunked"],
)
def test_head_response_carries_no_body_and_keeps_the_connection_in_step(
    framing: tuple[str, str],
) -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.method == "HEAD":
                conn.respond(200, headers=[framing, ("ETag", '"v1"')])
            else:
                conn.respond(200, b"full body")

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("HEAD", "/doc"))
        head = wire.read_response(head_request=True)
        assert head.status == 200
        assert head.header(framing[0]) == framing[1]
        assert head.header("etag") == '"v1"'
        wire.send(wire.request("GET", "/doc"))
        # nothing may sit between the HEAD response and the next status line
        assert wire.read_exactly(12) == b"HTTP/1.1 200"
        wire.buffer = b"HTTP/1.1 200" + wire.buffer
        assert wire.read_response().body == b"full body"
        assert node.accepted == 1


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_and_not_modified_never_carry_a_body(status: int) -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.path == "/empty":
                headers = [("ETag", '"x"')]
                if status == 304:
                    headers.append(("Content-Length", "500"))  # size of the cached representation
                conn.send(
                    f"HTTP/1.1 {status} Whatever\r\n".encode()
                    + "".join(f"{n}: {v}\r\n" for n, v in headers).encode()
                    + b"\r\n"
                )
            else:
                conn.respond(200, b"after")

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/empty") + wire.request("GET", "/next"))
        first = wire.read_head()
        assert first.status == status
        assert not first.has("transfer-encoding")
        assert wire.read_exactly(12) == b"HTTP/1.1 200"
        wire.buffer = b"HTTP/1.1 200" + wire.buffer
        assert wire.read_response().body == b"after"
        assert node.accepted == 1


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "two-writes"])
@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
    ],
    ids=["100", "103"],
)
def test_upstream_interim_response_is_not_taken_for_the_final_one(
    interim: bytes, split: bool
) -> None:
    final = b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nLocation: /x/1\r\n\r\ndone"

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if split:
                conn.send(interim)
                conn.send(final)
            else:
                conn.send(interim + final)

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        for _ in range(2):
            wire.send(wire.request("POST", "/x", body=b"data"))
            response = wire.read_response()  # any relayed 1xx is skipped here
            assert response.status == 201
            assert response.body == b"done"
            assert response.header("location") == "/x/1"
        assert node.accepted == 1


def test_response_framed_both_by_length_and_chunked_is_refused() -> None:
    # RFC 9112 §6.3: such a message is a smuggling risk; it must not reach the client
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n"
            )

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request())
        response = wire.read_response()
    assert response.status == 502
    assert response.json()["status"] == 502


# ----------------------------------------------------------------------- large bodies


def _digesting_node(conn: Conn) -> None:
    """Reads one request body without keeping it and answers with its digest."""
    while True:
        reader = BodyReader(conn)
        try:
            reader.read()
        except ConnectionError:
            return
        answer = {
            "sha256": reader.digest.hexdigest(),
            "received": reader.received,
            "transfer-encoding": reader.header("transfer-encoding"),
            "content-length": reader.header("content-length"),
        }
        conn.respond(200, json.dumps(answer).encode())


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_large_upload_passes_through_intact(framing: str) -> None:
    payload = Payload(BIG)
    with serve(_digesting_node) as (_, proxy), Wire(proxy.port) as wire:
        if framing == "chunked":
            head = wire.request("POST", "/up", [("Transfer-Encoding", "chunked")])
            body = chunked(payload.pieces())
        else:
            head = wire.request("POST", "/up", [("Content-Length", str(BIG))])
            body = payload.pieces()
        progress = Progress()
        wire.send(head)
        sender = threading.Thread(target=send_counted, args=(wire.sock, body, progress))
        sender.start()
        response = wire.read_response()
        sender.join(10)
    assert progress.error is None
    report = response.json()
    assert report["received"] == BIG
    assert report["sha256"] == payload.sha256
    if framing == "chunked":
        assert report["transfer-encoding"] == "chunked"
    else:
        assert report["content-length"] == str(BIG)


def _download_node(payload: Payload, framing: str, progress: Progress) -> Handler:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        if framing == "content-length":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % payload.size)
            pieces = payload.pieces()
        elif framing == "chunked":
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            pieces = chunked(payload.pieces())
        else:
            conn.send(b"HTTP/1.1 200 OK\r\n\r\n")
            pieces = payload.pieces()
        send_counted(conn.sock, pieces, progress)
        if framing == "close":
            conn.close()
        else:
            conn.read_request()

    return handler


@pytest.mark.parametrize("framing", ["content-length", "chunked", "close"])
def test_large_download_passes_through_intact(framing: str) -> None:
    payload = Payload(BIG)
    progress = Progress()
    with serve(_download_node(payload, framing, progress)) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request())
        head = wire.read_head()
        digest = hashlib.sha256()
        received = 0
        for piece in wire.body_pieces(head):
            digest.update(piece)
            received += len(piece)
    assert head.status == 200
    assert received == BIG
    assert digest.hexdigest() == payload.sha256
    assert progress.error is None


@pytest.mark.parametrize("framing", ["content-length", "chunked", "close"])
def test_slow_client_slows_the_upstream_down_instead_of_being_buffered(framing: str) -> None:
    payload = Payload(BIG)
    progress = Progress()
    with serve(_download_node(payload, framing, progress)) as (_, proxy):
        with Wire(proxy.port, rcvbuf=65536) as wire:
            wire.send(wire.request())
            head = wire.read_head()
            body = wire.body_pieces(head)
            digest = hashlib.sha256()
            received = 0
            for piece in body:  # read a little, then stop reading
                digest.update(piece)
                received += len(piece)
                if received >= 65536:
                    break

            assert wait_until_stalled(progress), "the node sent the whole body to a paused client"
            assert not progress.done.is_set()
            assert progress.count < BIG // 2
            assert proxy_buffered_bytes(proxy) < USER_SPACE_BOUND

            for piece in body:  # reading again lets the node finish
                digest.update(piece)
                received += len(piece)
        assert received == BIG
        assert digest.hexdigest() == payload.sha256
        assert progress.done.wait(10)
        assert progress.error is None


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_slow_upstream_slows_the_client_upload_down_instead_of_being_buffered(framing: str) -> None:
    payload = Payload(BIG)
    release = threading.Event()
    readers: list[BodyReader] = []

    def handler(conn: Conn) -> None:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        reader = BodyReader(conn, pause=release, pause_after=65536)
        readers.append(reader)
        reader.read()
        conn.respond(
            200,
            json.dumps({"sha256": reader.digest.hexdigest(), "received": reader.received}).encode(),
        )

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        if framing == "chunked":
            head = wire.request("POST", "/up", [("Transfer-Encoding", "chunked")])
            body = chunked(payload.pieces())
        else:
            head = wire.request("POST", "/up", [("Content-Length", str(BIG))])
            body = payload.pieces()
        progress = Progress()
        wire.send(head)
        sender = threading.Thread(
            target=send_counted, args=(wire.sock, body, progress), daemon=True
        )
        sender.start()
        try:
            assert wait_until_stalled(progress), "the proxy took the whole body from the client"
            assert not progress.done.is_set()
            assert progress.count < BIG // 2
            assert readers and readers[0].received <= 65536 + 65536
            assert proxy_buffered_bytes(proxy) < USER_SPACE_BOUND
        finally:
            release.set()
        response = wire.read_response()
        sender.join(10)
    report = response.json()
    assert report["received"] == BIG
    assert report["sha256"] == payload.sha256
    assert progress.error is None
