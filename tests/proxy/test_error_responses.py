"""Errors the proxy answers itself: no route, and targets that refuse, break or stall.

Each is an RFC 9457 problem document carrying the request id (also in
``X-Request-ID``), never a traceback or an HTML page; a response already under
way is cut rather than finished with an error; and the proxy keeps serving.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.proxy.conftest import StartProxy, StartUpstream
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import (
    Conn,
    Upstream,
    reset_after_request,
    silent,
    silent_until_closed,
)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxy_with(
    start_proxy: StartProxy, echo: Upstream, failing: str | dict[str, object]
) -> RunningProxy:
    """``/failing`` goes to the ``failing`` target, everything else to ``echo``."""
    return start_proxy(
        {"backend": echo.url, "failing": failing},
        [
            {"name": "failing", "paths": ["/failing"], "target": "failing"},
            {"name": "rest", "paths": ["/"], "target": "backend"},
        ],
    )


def proxy_with_api_route_only(start_proxy: StartProxy, echo: Upstream) -> RunningProxy:
    """Only ``/api`` has a route, to ``echo``."""
    return start_proxy(
        {"backend": echo.url}, [{"name": "api", "paths": ["/api"], "target": "backend"}]
    )


def proxy_with_refusing_target(start_proxy: StartProxy, echo: Upstream) -> RunningProxy:
    """``/failing`` goes to a port nothing listens on, ``/ok`` to ``echo``; no other routes."""
    return start_proxy(
        {"backend": echo.url, "failing": f"http://127.0.0.1:{closed_port()}"},
        [
            {"name": "failing", "paths": ["/failing"], "target": "failing"},
            {"name": "ok", "paths": ["/ok"], "target": "backend"},
        ],
    )


def assert_still_serving(client: Client) -> None:
    response = client.request("GET", "/ok")
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/ok"


def assert_new_connection_served(proxy: RunningProxy) -> None:
    with Client(proxy.port, timeout=5) as client:
        assert_still_serving(client)


# -- 404 --------------------------------------------------------------------------------


def test_unmatched_path_gets_404_problem_and_the_connection_stays_usable(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with_api_route_only(start_proxy, echo_upstream)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/nothing/here")
        problem = assert_problem(response, 404)
        assert problem["title"] == "Not Found"
        assert "/nothing/here" in problem["detail"]
        assert response.header("Connection") != "close"
        again = client.request("GET", "/api/items")
        assert again.status == 200
        second = assert_problem(client.request("GET", "/elsewhere"), 404)
        assert second["request_id"] != problem["request_id"]
    assert [r.path for r in echo_upstream.requests] == ["/api/items"]


def test_unmatched_post_with_body_gets_404_and_the_body_is_not_taken_for_a_request(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with_api_route_only(start_proxy, echo_upstream)
    body = b"GET /api/smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
    with Client(proxy.port, timeout=5) as client:
        response = client.request("POST", "/nothing", body=body)
        assert_problem(response, 404)
        if response.header("Connection") == "close":
            assert client.wait_closed(timeout=5) == b""
        else:
            assert client.request("GET", "/api/next").status == 200
    with Client(proxy.port, timeout=5) as client:
        assert client.request("GET", "/api/after").status == 200
    assert "/api/smuggled" not in [r.path for r in echo_upstream.requests]


# -- 502 --------------------------------------------------------------------------------


def test_target_refusing_connections_gets_502(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with(start_proxy, echo_upstream, f"http://127.0.0.1:{closed_port()}")
    with Client(proxy.port, timeout=5) as client:
        problem = assert_problem(client.request("GET", "/failing/x"), 502)
        assert problem["title"] == "Bad Gateway"
        assert_still_serving(client)


def test_target_resetting_before_answering_gets_502(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    resetting = start_upstream(reset_after_request)
    proxy = proxy_with(start_proxy, echo_upstream, resetting.url)
    with Client(proxy.port, timeout=5) as client:
        assert_problem(client.request("GET", "/failing/x"), 502)
        assert_still_serving(client)
    # an idempotent request is tried three times (the default retries) before the 502
    assert [r.path for r in resetting.requests] == ["/failing/x"] * 3


def close_without_answer(conn: Conn) -> None:
    conn.read_request()
    conn.close()


def test_target_closing_without_a_byte_gets_502(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    closing = start_upstream(close_without_answer)
    proxy = proxy_with(start_proxy, echo_upstream, closing.url)
    with Client(proxy.port, timeout=5) as client:
        assert_problem(client.request("POST", "/failing/x", body=b"once"), 502)
        assert_still_serving(client)
    assert len(closing.requests) == 1, "a POST is never sent twice"


def answer_then_reset_on_second_request(conn: Conn) -> None:
    if conn.read_request() is None:
        return
    conn.respond(200, b"first")
    if conn.read_request() is not None:
        conn.reset()


def test_post_on_a_pooled_connection_reset_by_the_target_is_not_sent_again(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    flaky = start_upstream(answer_then_reset_on_second_request)
    proxy = proxy_with(start_proxy, echo_upstream, flaky.url)
    with Client(proxy.port, timeout=5) as client:
        assert client.request("GET", "/failing/warm").status == 200
        assert_problem(client.request("POST", "/failing/once", body=b"payload"), 502)
        assert_still_serving(client)
    assert [r.path for r in flaky.requests] == ["/failing/warm", "/failing/once"]


GARBAGE = {
    "not-http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "binary": b"\x00\x01\x02\x03\xff\xfe",
    "bad-status-code": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
    "content-length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "unsupported-transfer-coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_target_answering_garbage_gets_502(
    garbage: bytes,
    start_proxy: StartProxy,
    start_upstream: StartUpstream,
    echo_upstream: Upstream,
) -> None:
    def answer_garbage(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(garbage)
            silent_until_closed(conn)

    babbling = start_upstream(answer_garbage)
    proxy = proxy_with(start_proxy, echo_upstream, babbling.url)
    with Client(proxy.port, timeout=5) as client:
        problem = assert_problem(client.request("GET", "/failing/x"), 502)
        assert "Traceback" not in problem["detail"]
        assert_still_serving(client)


CUT_RESPONSES = {
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
}


@pytest.mark.parametrize("partial", CUT_RESPONSES.values(), ids=CUT_RESPONSES.keys())
def test_target_closing_mid_body_cuts_the_client_connection(
    partial: bytes,
    start_proxy: StartProxy,
    start_upstream: StartUpstream,
    echo_upstream: Upstream,
) -> None:
    def close_mid_body(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(partial)
            conn.close()

    cutting = start_upstream(close_mid_body)
    proxy = proxy_with(start_proxy, echo_upstream, cutting.url)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/failing/x")
        assert response.status == 200
        assert response.body == b"0123456789"
        assert not response.complete, "a truncated response must not look complete"
        assert client.closed
    assert_new_connection_served(proxy)


# -- 503 --------------------------------------------------------------------------------


class Gate:
    """An upstream handler holding each answer until ``release`` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            self.arrived.set()
            self.release.wait(10)
            conn.respond(200, request.path.encode())


def test_node_at_its_connection_limit_gets_503_and_serves_once_free(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    gate = Gate()
    gated = start_upstream(gate)
    proxy = proxy_with(
        start_proxy, echo_upstream, {"url": gated.url, "pool": {"max_connections": 1}}
    )
    with Client(proxy.port, timeout=5) as first, Client(proxy.port, timeout=5) as second:
        first.send(b"GET /failing/first HTTP/1.1\r\nHost: example.test\r\n\r\n")
        assert gate.arrived.wait(5)
        problem = assert_problem(second.request("GET", "/failing/second"), 503)
        assert problem["title"] == "Service Unavailable"
        gate.release.set()
        assert first.read_response().body == b"/failing/first"
        again = second.request("GET", "/failing/second")
        assert again.status == 200
        assert again.body == b"/failing/second"
    assert gated.accepted == 1


# -- 504 --------------------------------------------------------------------------------


def test_target_never_answering_gets_504_after_its_read_timeout(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    mute = start_upstream(silent)
    proxy = proxy_with(start_proxy, echo_upstream, {"url": mute.url, "timeouts": {"read": 0.3}})
    with Client(proxy.port, timeout=5) as client:
        started = time.monotonic()
        problem = assert_problem(client.request("GET", "/failing/x"), 504)
        assert time.monotonic() - started >= 0.25
        assert problem["title"] == "Gateway Timeout"
        assert_still_serving(client)


def stall_mid_body(conn: Conn) -> None:
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        silent_until_closed(conn)


def test_target_stalling_mid_body_past_its_read_timeout_cuts_the_client_connection(
    start_proxy: StartProxy, start_upstream: StartUpstream, echo_upstream: Upstream
) -> None:
    staller = start_upstream(stall_mid_body)
    proxy = proxy_with(start_proxy, echo_upstream, {"url": staller.url, "timeouts": {"read": 0.3}})
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/failing/x")
        assert response.status == 200
        assert response.body == b"0123456789"
        assert not response.complete
        assert client.closed
    assert_new_connection_served(proxy)


# -- HEAD, request ids ------------------------------------------------------------------


@pytest.mark.parametrize("path,status", [("/nothing", 404), ("/failing/x", 502)])
def test_error_answer_to_head_has_no_body(
    path: str, status: int, start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with_refusing_target(start_proxy, echo_upstream)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("HEAD", path)
        assert_problem(response, status, head=True)
        assert client.stays_open(0.2), "bytes after the head of a HEAD answer"
        assert_still_serving(client)


@pytest.mark.parametrize("path,status", [("/nothing", 404), ("/failing/x", 502)])
def test_client_request_id_is_echoed_in_errors(
    path: str, status: int, start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with_refusing_target(start_proxy, echo_upstream)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", path, headers={"X-Request-ID": "client-chosen-42"})
        problem = assert_problem(response, status)
        assert problem["request_id"] == "client-chosen-42"
        assert response.header("X-Request-ID") == "client-chosen-42"


@pytest.mark.parametrize(
    "unusable", ["has space", "x" * 201, ""], ids=["space", "too-long", "empty"]
)
def test_unusable_client_request_id_is_replaced_in_errors(
    unusable: str, start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = proxy_with_api_route_only(start_proxy, echo_upstream)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/nothing", headers={"X-Request-ID": unusable})
        problem = assert_problem(response, 404)
        assert problem["request_id"] not in ("", unusable)
        assert response.header("X-Request-ID") == problem["request_id"]
