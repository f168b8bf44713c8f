"""Upstream keep-alive pool: reuse, retirement, stale connections, retries and timeouts."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from tests.support.proxy import RunningProxy, make_config, serve
from tests.support.streams import (
    MiB,
    Payload,
    Progress,
    Wire,
    WireResponse,
    idle_upstream_connections,
    send_counted,
    wait_for,
)
from tests.support.upstream import Conn, Handler, Request, Upstream, echo, json_response

pytestmark = pytest.mark.timeout(30)


def get(
    wire: Wire,
    path: str = "/",
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> WireResponse:
    wire.send(wire.request(method, path, headers, body))
    return wire.read_response()


def echo_rest(conn: Conn, request: Request | None) -> None:
    """Answer ``request`` and whatever follows like the ``echo`` node."""
    while request is not None:
        json_response(conn, request)
        request = conn.read_request()


def proxy_has_exchange_upstream(proxy: RunningProxy) -> bool:
    """Whether some client connection's request is attached to an upstream connection."""

    def check() -> bool:
        assert proxy.server is not None
        return any(
            getattr(getattr(c, "current", None), "upstream", None) is not None
            for c in proxy.server.state.connections
        )

    return bool(proxy.call(check))


class PerConnection:
    """Numbers each accepted connection and records the paths it served."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served: list[list[str]] = []

    def open(self) -> list[str]:
        with self.lock:
            paths: list[str] = []
            self.served.append(paths)
            return paths

    def echo(self, conn: Conn) -> None:
        """A handler answering like ``echo`` and recording the paths of its connection."""
        paths = self.open()
        while (request := conn.read_request()) is not None:
            paths.append(request.path)
            json_response(conn, request)


# ----------------------------------------------------------------------- reuse and retirement


def answer_once_then_close(conn: Conn) -> None:
    """Answers one request like ``echo`` (no "Connection: close"), then closes."""
    request = conn.read_request()
    if request is not None:
        json_response(conn, request)
    conn.close()


def test_connection_the_node_closes_after_answering_is_not_reused() -> None:
    with serve(answer_once_then_close) as (node, proxy), Wire(proxy.port) as wire:
        for index in range(20):
            response = get(wire, f"/s/{index}")
            assert response.status == 200, response.body
            assert response.json()["path"] == f"/s/{index}"
    assert node.accepted == 20


def test_non_idempotent_request_after_an_idle_close_goes_on_a_new_connection() -> None:
    with serve(answer_once_then_close) as (node, proxy), Wire(proxy.port) as wire:
        for index in range(3):
            response = get(wire, f"/p/{index}", "POST", b"body")
            assert response.status == 200, response.body
            # the proxy has seen the close: the pool holds nothing
            assert wait_for(lambda: idle_upstream_connections(proxy, "backend") == 0)
    assert [r.method for r in node.requests] == ["POST"] * 3
    assert node.accepted == 3


def _answers_once_then_drops(how: str) -> tuple[Handler, PerConnection]:
    """The first connection answers one request, then drops the next one unanswered."""
    record = PerConnection()

    def handler(conn: Conn) -> None:
        paths = record.open()
        first_connection = len(record.served) == 1
        while (request := conn.read_request()) is not None:
            paths.append(request.path)
            if first_connection and len(paths) == 2:
                if how == "reset":
                    conn.reset()
                else:
                    conn.close()
                return
            json_response(conn, request)

    return handler, record


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_idempotent_request_dropped_on_a_reused_connection_is_retried(
    how: str, method: str
) -> None:
    handler, record = _answers_once_then_drops(how)
    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        assert get(wire, "/warm").status == 200
        wire.send(wire.request(method, "/again"))
        response = wire.read_response(head_request=method == "HEAD")
        assert response.status == 200
        if method != "HEAD":
            assert response.json()["path"] == "/again"
        assert get(wire, "/later").status == 200  # the client connection is fine
    assert record.served[0] == ["/warm", "/again"]
    assert record.served[1][0] == "/again"
    assert node.accepted == 2


@pytest.mark.parametrize("how", ["close", "reset"])
def test_post_dropped_on_a_reused_connection_is_not_retried(how: str) -> None:
    handler, record = _answers_once_then_drops(how)
    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        assert get(wire, "/warm").status == 200
        response = get(wire, "/order", "POST", b'{"qty": 1}')
        assert response.status == 502
        assert response.header("content-type") == "application/problem+json"
        assert response.json()["status"] == 502
        # the gateway error does not cost the client its connection
        assert get(wire, "/after").status == 200
    assert [path for paths in record.served for path in paths].count("/order") == 1


def test_bodiless_post_without_idempotency_key_is_not_retried() -> None:
    handler, record = _answers_once_then_drops("close")
    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        assert get(wire, "/warm").status == 200
        assert get(wire, "/trigger", "POST").status == 502
    assert [path for paths in record.served for path in paths].count("/trigger") == 1


def test_post_with_an_idempotency_key_and_no_body_is_retried() -> None:
    handler, record = _answers_once_then_drops("close")
    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        assert get(wire, "/warm").status == 200
        response = get(wire, "/charge", "POST", headers=[("Idempotency-Key", "k-1")])
        assert response.status == 200
    assert record.served[1][0] == "/charge"


def test_node_closing_a_fresh_connection_without_answering_is_502() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.close()

    with (
        Upstream(handler) as node,
        RunningProxy(make_config({"backend": {"url": node.url, "retries": None}})) as proxy,
        Wire(proxy.port) as wire,
    ):
        response = get(wire, "/x")
        assert response.status == 502
        assert response.json()["status"] == 502
    # with retries off, a fresh connection is not tried again: the node may have acted
    assert node.accepted == 1


def test_connection_close_from_the_node_means_the_connection_is_not_reused() -> None:
    record = PerConnection()
    closed_by_proxy = threading.Semaphore(0)

    def handler(conn: Conn) -> None:
        paths = record.open()
        while (request := conn.read_request()) is not None:
            paths.append(request.path)
            conn.respond(200, request.path.encode(), [("Connection", "close")])
            # and the node keeps its side open: only the proxy can end it
        closed_by_proxy.release()

    with serve(handler) as (node, proxy), Wire(proxy.port) as wire:
        for index in range(3):
            response = get(wire, f"/c/{index}")
            assert response.status == 200
            assert response.body == f"/c/{index}".encode()
            assert response.header("connection") is None  # hop-by-hop, not the client's business
        for _ in range(3):
            assert closed_by_proxy.acquire(timeout=5)
    assert record.served == [["/c/0"], ["/c/1"], ["/c/2"]]
    assert node.accepted == 3


def test_http10_node_without_keep_alive_is_not_reused() -> None:
    record = PerConnection()

    def handler(conn: Conn) -> None:
        paths = record.open()
        while (request := conn.read_request()) is not None:
            paths.append(request.path)
            conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        for index in range(3):
            assert get(wire, f"/h/{index}").body == b"ok"
    assert record.served == [["/h/0"], ["/h/1"], ["/h/2"]]


def test_max_requests_retires_a_connection_after_that_many_requests() -> None:
    record = PerConnection()
    with serve(record.echo, pool={"max_requests": 2}) as (node, proxy), Wire(proxy.port) as wire:
        for index in range(5):
            assert get(wire, f"/r/{index}").status == 200
    assert record.served == [["/r/0", "/r/1"], ["/r/2", "/r/3"], ["/r/4"]]
    assert node.accepted == 3


def test_target_pool_settings_override_the_global_ones() -> None:
    record = PerConnection()
    with Upstream(record.echo) as node:
        config = make_config({"backend": node.url}, pool={"max_requests": 100})
        data = config.model_dump()
        data["targets"][0]["pool"] = {"max_requests": 1}
        with RunningProxy(type(config).model_validate(data)) as proxy, Wire(proxy.port) as wire:
            for index in range(3):
                assert get(wire, f"/t/{index}").status == 200
    assert record.served == [["/t/0"], ["/t/1"], ["/t/2"]]


def test_max_idle_zero_keeps_no_connection() -> None:
    with serve(echo, pool={"max_idle": 0}) as (node, proxy), Wire(proxy.port) as wire:
        for index in range(3):
            assert get(wire, f"/i/{index}").status == 200
    assert node.accepted == 3


def test_idle_pooled_connection_is_closed_after_the_pool_idle_timeout() -> None:
    gone = threading.Event()

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            json_response(conn, request)
        gone.set()

    with serve(handler, pool={"idle_timeout": 0.2}) as (node, proxy), Wire(proxy.port) as wire:
        assert get(wire, "/once").status == 200
        assert gone.wait(5), "the pooled connection was never closed"
        assert idle_upstream_connections(proxy, "backend") == 0
        assert get(wire, "/twice").status == 200
    assert node.accepted == 2


def test_max_connections_refuses_beyond_the_limit_with_503() -> None:
    release = threading.Event()

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.path == "/hold":
                release.wait(10)
            json_response(conn, request)

    with (
        serve(handler, pool={"max_connections": 1}) as (node, proxy),
        Wire(proxy.port) as first,
        Wire(proxy.port) as second,
    ):
        first.send(first.request("GET", "/hold"))
        assert wait_for(lambda: len(node.requests) == 1)
        response = get(second, "/other")
        assert response.status == 503
        assert response.json()["status"] == 503
        release.set()
        assert first.read_response().json()["path"] == "/hold"
        # the connection is free again
        assert get(second, "/other").status == 200
    assert node.accepted == 1


def test_response_abandoned_by_the_client_does_not_return_its_connection_to_the_pool() -> None:
    progress = Progress()
    size = 32 * MiB

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None and request.path == "/big":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            send_counted(conn.sock, Payload(size).pieces(), progress)
            return
        echo_rest(conn, request)

    with serve(handler) as (node, proxy):
        with Wire(proxy.port) as wire:
            wire.send(wire.request("GET", "/big"))
            assert wire.read_head().status == 200
            wire.read_exactly(1000)
        # the node learns that nobody wants the rest
        assert progress.done.wait(10)
        assert progress.error is not None
        assert progress.count < size
        with Wire(proxy.port) as wire:
            response = get(wire, "/next")
            assert response.json()["path"] == "/next"
    assert node.accepted == 2


def test_client_aborting_before_the_answer_closes_the_upstream_request() -> None:
    upstream_gone = threading.Event()

    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.sock.settimeout(10)
            try:
                data = conn.sock.recv(1)  # the proxy must not leave this hanging
            except OSError:
                data = b""
            if not data:
                upstream_gone.set()

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request("GET", "/wait"))
        assert wait_for(lambda: proxy_has_exchange_upstream(proxy))
        # an abortive close: a FIN alone could be a half-close still waiting for its answer
        wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wire.sock.close()
        assert upstream_gone.wait(5), "the upstream connection outlived its client"


# ----------------------------------------------------------------------- failures


def test_node_that_does_not_answer_in_time_gives_504() -> None:
    release = threading.Event()

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.path == "/slow":
                release.wait(10)
                return
            json_response(conn, request)

    try:
        with serve(handler, timeouts={"read": 0.3}) as (_, proxy), Wire(proxy.port) as wire:
            response = get(wire, "/slow")
            assert response.status == 504
            problem = response.json()
            assert problem["status"] == 504
            assert problem["request_id"] == response.header("x-request-id")
            assert get(wire, "/fast").status == 200  # same client connection
    finally:
        release.set()


def test_node_that_stalls_mid_body_cuts_the_client_off() -> None:
    release = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        release.wait(10)

    try:
        with serve(handler, timeouts={"read": 0.3}) as (_, proxy), Wire(proxy.port) as wire:
            wire.send(wire.request())
            head = wire.read_head()
            assert head.status == 200
            # the response cannot be completed: the client must see the connection end
            # short of the promised 100 bytes, never a different, complete message
            assert len(wire.read_to_eof()) < 100
    finally:
        release.set()


def test_node_closing_mid_body_cuts_the_client_off() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        conn.close()

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        wire.send(wire.request())
        assert wire.read_head().status == 200
        assert len(wire.read_to_eof()) < 100


def test_node_refusing_connections_gives_502() -> None:
    placeholder = socket.create_server(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()
    with (
        RunningProxy(make_config({"backend": f"http://127.0.0.1:{port}"})) as proxy,
        Wire(proxy.port) as wire,
    ):
        response = get(wire, "/")
        assert response.status == 502
        assert response.header("content-type") == "application/problem+json"
        assert get(wire, "/").status == 502  # still answering on the same connection


def test_invalid_response_from_the_node_gives_502() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"this is not HTTP\r\n\r\n")

    with serve(handler) as (_, proxy), Wire(proxy.port) as wire:
        response = get(wire, "/")
        assert response.status == 502
        assert response.json()["status"] == 502
