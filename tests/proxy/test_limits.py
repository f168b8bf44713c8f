"""Client-side limits: sizes of the request line, head and body, and the client timeouts.

Each limit is set small in ``limits:`` and crossed through a real socket; the
answer is the documented status as a problem document, the connection is closed
after it, and nothing incomplete is passed on to the target.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.proxy.conftest import StartProxy, StartUpstream
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Upstream, echo, silent_until_closed

HOST = b"Host: example.test\r\n"


def limited(start_proxy: StartProxy, upstream: Upstream, **limits: Any) -> RunningProxy:
    return start_proxy({"backend": upstream.url}, None, limits=limits)


def assert_refused(client: Client, status: int) -> dict[str, Any]:
    response = client.read_response()
    problem = assert_problem(response, status)
    assert response.header("Connection") == "close"
    client.wait_closed(timeout=5)
    return problem


def assert_serves(proxy: RunningProxy) -> None:
    with Client(proxy.port, timeout=5) as client:
        assert client.request("GET", "/still-serving").status == 200


def head_with(*fields: bytes, method: bytes = b"GET", target: bytes = b"/") -> bytes:
    lines = b"".join(field + b"\r\n" for field in fields)
    return method + b" " + target + b" HTTP/1.1\r\n" + HOST + lines + b"\r\n"


# -- sizes ------------------------------------------------------------------------------


def test_request_target_within_max_request_line_is_served(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_request_line=256)
    path = "/" + "a" * 200
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", path)
        assert response.status == 200
        assert json.loads(response.body)["path"] == path


def test_request_line_over_max_request_line_gets_414(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_request_line=256)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(target=b"/" + b"a" * 400))
        assert_refused(client, 414)
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_request_target_sent_in_pieces_over_the_limit_gets_414(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_request_line=256)
    with Client(proxy.port, timeout=5) as client:
        client.send(b"GET /")
        for _ in range(4):
            client.send(b"b" * 100)
        client.send(b" HTTP/1.1\r\n" + HOST + b"\r\n")
        assert_refused(client, 414)
    assert echo_upstream.accepted == 0


def test_header_block_within_max_header_size_is_served(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_header_size=1024)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/", headers={f"X-Field-{i}": "v" * 50 for i in range(5)})
        assert response.status == 200


def test_header_block_over_max_header_size_gets_431(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_header_size=1024)
    fields = [b"X-Field-%d: %s" % (i, b"v" * 80) for i in range(20)]
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(*fields))
        assert_refused(client, 431)
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_header_count_at_max_headers_is_served(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_headers=10)
    fields = [b"X-Field-%d: v" % i for i in range(9)]  # and Host: ten in all
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(*fields))
        assert client.read_response().status == 200


def test_more_header_fields_than_max_headers_gets_431(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_headers=10)
    fields = [b"X-Field-%d: v" % i for i in range(15)]
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(*fields))
        assert_refused(client, 431)
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_endless_header_value_gets_431_after_a_bounded_number_of_bytes(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    # One field that never ends, arriving over many writes: the proxy must answer
    # once the head is clearly too large instead of holding everything sent.
    proxy = limited(start_proxy, echo_upstream, max_request_line=256, max_header_size=1024)
    budget = 64 * 1024
    sent = 0
    with Client(proxy.port, timeout=5) as client:
        client.send(b"GET / HTTP/1.1\r\n" + HOST + b"X-Endless: ")
        while sent < budget:
            client.send(b"x" * 512)
            sent += 512
            if not client.stays_open(0.02):
                break
        assert sent < 16 * 1024, f"no answer after {sent} bytes of one header value"
        assert_refused(client, 431)
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_body_within_max_body_size_is_served(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("POST", "/", body=b"b" * 100)
        assert response.status == 200
        assert json.loads(response.body)["body_length"] == 100


@pytest.mark.parametrize(
    "body", [b"", b"b" * 1000], ids=["before-the-body-is-sent", "with-the-body"]
)
def test_content_length_over_max_body_size_gets_413(
    body: bytes, start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 1000", method=b"POST") + body)
        assert_refused(client, 413)
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_expect_continue_over_max_body_size_gets_413_instead_of_100(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 1000", b"Expect: 100-continue", method=b"POST"))
        assert_refused(client, 413)
    assert echo_upstream.accepted == 0


def test_expect_continue_within_max_body_size_gets_100_then_the_answer(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 10", b"Expect: 100-continue", method=b"POST"))
        assert client.read_response().status == 100
        client.send(b"0123456789")
        response = client.read_response()
        assert response.status == 200
        assert json.loads(response.body)["body"] == "0123456789"
    assert "Expect" not in {name for name, _ in echo_upstream.requests[0].headers}


def test_chunked_body_growing_over_max_body_size_gets_413(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    # The head and the first chunk may already be on their way to the target; the
    # response has not started, so the client gets a 413 and the target never
    # receives a complete request.
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Transfer-Encoding: chunked", method=b"POST"))
        client.send(b"3c\r\n" + b"a" * 60 + b"\r\n")
        assert client.stays_open(0.1), "60 bytes are within the limit"
        client.send(b"3c\r\n" + b"b" * 60 + b"\r\n")
        assert_refused(client, 413)
    assert echo_upstream.requests == []
    assert_serves(proxy)


def test_chunked_body_over_max_body_size_in_one_write_gets_413(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, max_body_size=100)
    body = b"64\r\n" + b"a" * 100 + b"\r\n1\r\nb\r\n0\r\n\r\n"
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Transfer-Encoding: chunked", method=b"POST") + body)
        assert_refused(client, 413)
    assert echo_upstream.requests == []
    assert_serves(proxy)


# -- timeouts ---------------------------------------------------------------------------


def test_head_sent_slower_than_header_timeout_gets_408(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, header_timeout=0.3)
    head = head_with(b"X-Slow: " + b"s" * 100)
    started = time.monotonic()
    with Client(proxy.port, timeout=5) as client:
        for byte in head:
            try:
                client.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if not client.stays_open(0.02):  # paces the client and notices an answer
                break
        else:
            pytest.fail("the whole head trickled in without a timeout")
        elapsed = time.monotonic() - started
        assert_refused(client, 408)
    assert 0.25 <= elapsed < 3, elapsed
    assert echo_upstream.accepted == 0
    assert_serves(proxy)


def test_connection_that_never_sends_is_closed_after_header_timeout(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, header_timeout=0.3)
    with Client(proxy.port, timeout=5) as client:
        started = time.monotonic()
        assert client.wait_closed(timeout=3) == b""
        assert time.monotonic() - started >= 0.25


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, idle_timeout=0.4)
    with Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/")
        assert response.status == 200
        assert response.header("Connection") != "close"
        assert client.stays_open(0.1), "closed before idle_timeout"
        assert client.wait_closed(timeout=3) == b"", "an idle close sends no bytes"


def test_keep_alive_connection_used_within_idle_timeout_stays_open(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, idle_timeout=0.4)
    with Client(proxy.port, timeout=5) as client:
        for _ in range(4):
            assert client.request("GET", "/").status == 200
            assert client.stays_open(0.2)


def test_body_stalling_longer_than_body_timeout_gets_408(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, body_timeout=0.3)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 10", method=b"POST") + b"abc")
        started = time.monotonic()
        assert_refused(client, 408)
        assert time.monotonic() - started >= 0.25
    assert echo_upstream.requests == []
    assert_serves(proxy)


def test_chunked_body_stalling_longer_than_body_timeout_gets_408(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    proxy = limited(start_proxy, echo_upstream, body_timeout=0.3)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Transfer-Encoding: chunked", method=b"POST") + b"3\r\nabc\r\n")
        assert_refused(client, 408)
    assert echo_upstream.requests == []
    assert_serves(proxy)


def test_body_trickled_below_min_body_rate_gets_408(
    start_proxy: StartProxy, echo_upstream: Upstream
) -> None:
    # every pause is shorter than body_timeout: only the rate catches this client
    proxy = limited(start_proxy, echo_upstream, body_timeout=0.5, min_body_rate=100)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 1000", method=b"POST") + b"a")
        sent = 1
        while sent < 25 and client.stays_open(0.2):
            client.send(b"a")
            sent += 1
        assert sent < 25, "the trickle was never refused"
        problem = assert_refused(client, 408)
        assert "limits.min_body_rate" in problem["detail"]
    assert echo_upstream.requests == []
    assert_serves(proxy)


def test_body_held_back_by_a_slow_node_is_not_timed_out(
    start_proxy: StartProxy, start_upstream: StartUpstream
) -> None:
    def slow_reader(conn: Conn) -> None:
        time.sleep(2.5)  # a node that takes its time before reading the body
        echo(conn)

    upstream = start_upstream(slow_reader)
    # (the node holds the body back more than twice body_timeout; body_timeout itself
    # leaves a loaded machine room to schedule the client between two of its sends)
    proxy = limited(start_proxy, upstream, body_timeout=1.0, min_body_rate=1 << 20)
    size = 32 << 20  # more than the socket buffers hold, so the proxy stops reading
    with Client(proxy.port, timeout=10) as client:
        response = client.request("POST", "/upload", body=b"x" * size)
        assert response.status == 200, response.body[:300]
        assert response.json()["body_length"] == size


def answer_before_the_body(conn: Conn) -> None:
    """Answers as soon as the head is in, with a response body it never finishes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.sock.recv(65536)
        if not chunk:
            return
        data += chunk
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    silent_until_closed(conn)


def test_body_stalling_after_the_response_started_cuts_the_connection(
    start_proxy: StartProxy, start_upstream: StartUpstream
) -> None:
    upstream = start_upstream(answer_before_the_body)
    proxy = limited(start_proxy, upstream, body_timeout=0.3, min_body_rate=1 << 20)
    with Client(proxy.port, timeout=5) as client:
        client.send(head_with(b"Content-Length: 10", method=b"POST") + b"abc")
        response = client.read_response()
        assert response.status == 200
        assert response.body == b"hello"
        assert not response.complete, "a cut response must not look complete"
        assert client.closed
