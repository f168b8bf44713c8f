"""Client connection persistence (RFC 9112 §9.3) and pipelined requests answered in order."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.proxy.conftest import StartProxy
from tests.support.proxy import RunningProxy, make_config, serve
from tests.support.streams import Wire
from tests.support.upstream import Conn, Upstream, json_response

pytestmark = pytest.mark.timeout(30)


# ----------------------------------------------------------------------- keep-alive


def test_requests_on_one_client_connection_reuse_one_upstream_connection(
    proxy: RunningProxy, node: Upstream
) -> None:
    with Wire(proxy.port) as wire:
        for index in range(20):
            wire.send(wire.request("GET", f"/n/{index}"))
            response = wire.read_response()
            assert response.status == 200
            assert response.json()["path"] == f"/n/{index}"
            assert response.header("connection") is None
    assert node.accepted == 1


def test_sequential_client_connections_reuse_one_upstream_connection(
    proxy: RunningProxy, node: Upstream
) -> None:
    for index in range(5):
        with Wire(proxy.port) as wire:
            wire.send(wire.request("GET", f"/c/{index}"))
            assert wire.read_response().json()["path"] == f"/c/{index}"
    assert node.accepted == 1


def test_connection_close_from_the_client_ends_the_connection_after_the_response(
    proxy: RunningProxy, node: Upstream
) -> None:
    with Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/bye", [("Connection", "close")]))
        response = wire.read_response()
        assert response.status == 200
        assert response.json()["path"] == "/bye"
        assert response.header("connection") == "close"
        assert wire.closed_by_peer()
    # the client's wish is hop-by-hop: the upstream connection stays pooled
    with Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/again"))
        assert wire.read_response().status == 200
    assert node.accepted == 1


def test_requests_pipelined_after_connection_close_are_not_answered(
    proxy: RunningProxy, node: Upstream
) -> None:
    with Wire(proxy.port) as wire:
        wire.send(
            wire.request("GET", "/first")
            + wire.request("GET", "/last", [("Connection", "close")])
            + wire.request("GET", "/ignored")
        )
        assert wire.read_response().json()["path"] == "/first"
        last = wire.read_response()
        assert last.json()["path"] == "/last"
        assert last.header("connection") == "close"
        assert wire.read_to_eof() == b""
    assert [r.path for r in node.requests] == ["/first", "/last"]


def test_http10_client_without_keep_alive_gets_the_response_then_a_close(
    proxy: RunningProxy,
) -> None:
    with Wire(proxy.port) as wire:
        wire.send(b"GET /old HTTP/1.0\r\nHost: test.local\r\n\r\n")
        response = wire.read_response()
        assert response.status == 200
        assert response.json()["path"] == "/old"
        assert response.header("connection") == "close"
        assert response.header("content-length") == str(len(response.body))
        assert wire.closed_by_peer()


def test_http10_client_without_host_is_served(proxy: RunningProxy) -> None:
    with Wire(proxy.port) as wire:
        wire.send(b"GET /hostless HTTP/1.0\r\n\r\n")
        response = wire.read_response()
    assert response.status == 200
    assert response.json()["path"] == "/hostless"


def test_http10_client_with_keep_alive_stays_connected(proxy: RunningProxy, node: Upstream) -> None:
    with Wire(proxy.port) as wire:
        for index in range(3):
            wire.send(
                f"GET /k/{index} HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n".encode()
            )
            response = wire.read_response()
            assert response.status == 200
            assert response.json()["path"] == f"/k/{index}"
            assert response.header("connection") == "keep-alive"
            assert response.header("content-length") == str(len(response.body))
        # and it ends like any HTTP/1.0 exchange when the keep-alive is left out
        wire.send(b"GET /end HTTP/1.0\r\nHost: t\r\n\r\n")
        last = wire.read_response()
        assert last.json()["path"] == "/end"
        assert last.header("connection") == "close"
        assert wire.closed_by_peer()
    assert node.accepted == 1


def _chunked_node(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n"
            + b"%x\r\n" % len(request.path)
            + request.path.encode()
            + b"\r\n0\r\n\r\n"
        )


@pytest.mark.parametrize("keep_alive", [False, True])
def test_http10_client_gets_a_chunked_response_as_a_close_delimited_body(keep_alive: bool) -> None:
    extra = b"Connection: keep-alive\r\n" if keep_alive else b""
    with serve(_chunked_node) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(b"GET /c HTTP/1.0\r\nHost: t\r\n" + extra + b"\r\n")
        response = wire.read_response()
        assert response.status == 200
        assert response.framing == "close"
        assert response.body == b"hello, world/c"
        assert not response.head.has("transfer-encoding")
        assert response.header("connection") == "close"
        assert response.header("content-type") == "text/plain"


def _close_delimited_node(conn: Conn) -> None:
    request = conn.read_request()
    if request is not None:
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close "
            + request.path.encode()
        )
    conn.close()


@pytest.mark.parametrize("keep_alive", [False, True])
def test_http10_client_gets_a_close_delimited_response_as_it_is(keep_alive: bool) -> None:
    extra = b"Connection: keep-alive\r\n" if keep_alive else b""
    with serve(_close_delimited_node) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(b"GET /d HTTP/1.0\r\nHost: t\r\n" + extra + b"\r\n")
        response = wire.read_response()
        assert response.status == 200
        assert response.framing == "close"
        assert response.body == b"until close /d"
        assert response.header("connection") == "close"


def test_client_half_closing_after_its_requests_gets_every_answer_then_the_close(
    proxy: RunningProxy,
) -> None:
    with Wire(proxy.port, timeout=3) as wire:
        wire.send(b"".join(wire.request("GET", f"/h/{i}") for i in range(3)))
        wire.sock.shutdown(socket.SHUT_WR)  # nothing more to ask
        assert [wire.read_response().json()["path"] for _ in range(3)] == ["/h/0", "/h/1", "/h/2"]
        # the client cannot send another request: the proxy has no reason to keep it
        assert wire.closed_by_peer()


# ----------------------------------------------------------------------- pipelining


def test_pipelined_requests_are_answered_in_order_with_their_bodies(
    proxy: RunningProxy, node: Upstream
) -> None:
    requests = [
        ("GET", "/p/0", b""),
        ("POST", "/p/1", b"first body"),
        ("GET", "/p/2?q=x", b""),
        ("POST", "/p/3", b"x" * 70000),
        ("PUT", "/p/4", b"last"),
    ]
    with Wire(proxy.port) as wire:
        wire.send(b"".join(wire.request(m, p, body=b) for m, p, b in requests))
        for method, path, body in requests:
            report = wire.read_response().json()
            assert (report["method"], report["path"]) == (method, path)
            assert report["body_length"] == len(body)
            assert report["body"] == body[:1000].decode()
        # the connection is still usable afterwards
        wire.send(wire.request("GET", "/after"))
        assert wire.read_response().json()["path"] == "/after"
    assert node.accepted == 1


def test_pipelined_chunked_bodies_are_kept_apart(proxy: RunningProxy) -> None:
    with Wire(proxy.port) as wire:
        wire.send(
            b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        bodies = [(r["path"], r["body"]) for r in (wire.read_response().json() for _ in range(3))]
    assert bodies == [("/a", "abc"), ("/b", "def"), ("/c", "")]


def test_pipelined_requests_stay_in_order_when_the_first_answer_is_slow() -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.path.startswith("/slow"):
                time.sleep(0.3)  # a slow node, not synchronisation
            json_response(conn, request)

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        paths = ["/slow", "/fast/1", "/slow/2", "/fast/3"]
        wire.send(b"".join(wire.request("GET", p) for p in paths))
        assert [wire.read_response().json()["path"] for _ in paths] == paths


def test_pipelined_requests_to_different_targets_stay_in_order() -> None:
    def slow(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            time.sleep(0.2)  # a slow node
            json_response(conn, request, node="slow")

    def fast(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            json_response(conn, request, node="fast")

    with Upstream(slow) as slow_node, Upstream(fast) as fast_node:
        routes = [
            {"name": "slow", "paths": ["/slow"], "target": "slow"},
            {"name": "fast", "paths": ["/fast"], "target": "fast"},
        ]
        config = make_config({"slow": slow_node.url, "fast": fast_node.url}, routes)
        with RunningProxy(config) as proxy, Wire(proxy.port) as wire:
            paths = ["/slow/1", "/fast/2", "/missing", "/slow/3", "/fast/4"]
            wire.send(b"".join(wire.request("GET", p) for p in paths))
            answers = []
            for _ in paths:
                response = wire.read_response()
                answers.append(response.json().get("path", response.status))
    assert answers == ["/slow/1", "/fast/2", 404, "/slow/3", "/fast/4"]


def test_pipelined_head_request_leaves_no_bytes_for_the_next_response() -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            body = json.dumps({"path": request.path}).encode()
            if request.method == "HEAD":
                conn.respond(200, headers=[("Content-Length", str(len(body)))])
            else:
                conn.respond(200, body)

    with serve(handler) as (node, proxy):
        with Wire(proxy.port) as wire:
            wire.send(
                wire.request("GET", "/1") + wire.request("HEAD", "/2") + wire.request("GET", "/3")
            )
            assert wire.read_response().json() == {"path": "/1"}
            head = wire.read_response(head_request=True)
            assert head.status == 200
            assert head.header("content-length") == str(len(b'{"path": "/2"}'))
            # the next bytes on the wire must be the next status line
            assert wire.read_exactly(9) == b"HTTP/1.1 "
            wire.buffer = b"HTTP/1.1 " + wire.buffer
            assert wire.read_response().json() == {"path": "/3"}
        assert node.accepted == 1


def test_many_pipelined_requests_in_one_write(proxy: RunningProxy) -> None:
    count = 200
    with Wire(proxy.port) as wire:
        wire.send(b"".join(wire.request("GET", f"/m/{i}") for i in range(count)))
        paths = [wire.read_response().json()["path"] for _ in range(count)]
    assert paths == [f"/m/{i}" for i in range(count)]


def test_deep_pipelining_counts_only_the_partial_head_against_the_head_limit(
    start_proxy: StartProxy, node: Upstream
) -> None:
    # A read that ends inside a request head: what came before that head in the same
    # read belongs to requests already parsed and must not count against its size.
    proxy = start_proxy(
        {"backend": node.url}, limits={"max_request_line": 256, "max_header_size": 1024}
    )
    count = 150  # far more bytes than twice the head limits
    with Wire(proxy.port) as wire:
        last = wire.request("GET", "/deep/last")
        wire.send(b"".join(wire.request("GET", f"/deep/{i}") for i in range(count)) + last[:20])
        statuses = [wire.read_response().status for _ in range(count)]
        wire.send(last[20:])
        final = wire.read_response()
    assert statuses == [200] * count
    assert (final.status, final.json().get("path")) == (200, "/deep/last")
