"""The outbound client: the gateway's own requests over the upstream pools, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
import uvloop

from quiver.errors import (
    BadGateway,
    GatewayTimeout,
    HTTPError,
    ServiceUnavailable,
    UpstreamConnectError,
)
from quiver.proxy.outbound import OutboundClient
from quiver.proxy.snapshot import TargetRuntime, compile_snapshot
from quiver.proxy.sweeper import Sweeper
from tests.support.proxy import make_config
from tests.support.upstream import (
    Conn,
    Upstream,
    echo,
    json_response,
    silent,
    silent_until_closed,
)

pytestmark = pytest.mark.timeout(20)

T = TypeVar("T")


def run(main: Callable[[OutboundClient], Coroutine[Any, Any, T]], **settings: Any) -> T:
    async def with_client() -> T:
        loop = asyncio.get_running_loop()
        sweeper = Sweeper(loop, interval=0.02)
        sweeper.start()
        client = OutboundClient(loop, sweeper, **settings)
        try:
            return await main(client)
        finally:
            client.close()
            sweeper.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(with_client())


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused while it is held."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_requests_to_one_origin_reuse_a_kept_alive_connection() -> None:
    async def main(client: OutboundClient) -> list[Any]:
        answers = []
        for path in ("/a", "/b?x=1", "/c"):
            response = await client.request("GET", server.url + path, headers={"X-Test": "1"})
            assert response.status == 200
            assert response.header("content-type") == "application/json"
            answers.append(json.loads(await response.read()))
        return answers

    with Upstream(echo) as server:
        answers = run(main)
        assert server.accepted == 1
    assert [answer["path"] for answer in answers] == ["/a", "/b?x=1", "/c"]
    headers = dict(answers[0]["headers"])
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["X-Test"] == "1" and headers["User-Agent"] == "quiver"


def test_a_post_body_goes_with_its_length() -> None:
    async def main(client: OutboundClient) -> Any:
        response = await client.request("POST", server.url + "/form", body=b"token=abc")
        return json.loads(await response.read())

    with Upstream(echo) as server:
        answer = run(main)
    assert answer["method"] == "POST" and answer["body"] == "token=abc"
    assert dict(answer["headers"])["Content-Length"] == "9"


@pytest.mark.parametrize(
    "raw, body",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
    ids=["content-length", "chunked", "interim-response", "no-content"],
)
def test_framed_bodies_are_read_and_the_connection_kept(raw: bytes, body: bytes) -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(raw)

    async def main(client: OutboundClient) -> list[bytes]:
        return [await (await client.request("GET", server.url)).read() for _ in range(2)]

    with Upstream(handler) as server:
        assert run(main) == [body, body]
        assert server.accepted == 1


def test_a_body_ended_by_closing_is_read_and_its_connection_dropped() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        conn.close()

    async def main(client: OutboundClient) -> list[bytes]:
        return [await (await client.request("GET", server.url)).read() for _ in range(2)]

    with Upstream(handler) as server:
        assert run(main) == [b"all of it", b"all of it"]
        assert server.accepted == 2


def test_a_body_streams_as_it_arrives() -> None:
    second = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        second.wait(5)
        conn.send(b"6\r\nsecond\r\n0\r\n\r\n")

    async def main(client: OutboundClient) -> list[bytes]:
        chunks = []
        async with await client.request("GET", server.url) as response:
            async for chunk in response.stream():
                chunks.append(chunk)
                second.set()  # the rest is sent only once the first piece arrived
        return chunks

    with Upstream(handler) as server:
        assert run(main) == [b"first", b"second"]


def test_a_large_body_is_relayed_with_the_node_paused_in_between() -> None:
    size = 4 << 20

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.respond(200, b"x" * size)

    async def main(client: OutboundClient) -> int:
        response = await client.request("GET", server.url)
        await asyncio.sleep(0.05)  # let the node fill the buffer: reading pauses
        assert response.buffered <= 1 << 19
        total = 0
        async for chunk in response.stream():
            total += len(chunk)
        return total

    with Upstream(handler) as server:
        assert run(main) == size


def partial_answers(conn: Conn) -> None:
    """Answers each request with 20 bytes of a 100-byte body, and waits."""
    while conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 20)


def test_reading_past_the_limit_fails_and_drops_the_connection() -> None:
    async def main(client: OutboundClient) -> None:
        for _ in range(2):
            response = await client.request("GET", server.url)
            with pytest.raises(BadGateway, match="more than 10 bytes"):
                await response.read(limit=10)

    with Upstream(partial_answers) as server:
        run(main)
        assert server.accepted == 2


def test_a_response_closed_before_its_end_drops_the_connection() -> None:
    async def main(client: OutboundClient) -> None:
        for _ in range(2):
            async with await client.request("GET", server.url) as response:
                assert response.status == 200

    with Upstream(partial_answers) as server:
        run(main)
        assert server.accepted == 2


def test_a_silent_server_times_out() -> None:
    async def main(client: OutboundClient) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(GatewayTimeout, match=r"did not answer within 0\.2s"):
            await client.request("GET", server.url, timeout=0.2)
        assert loop.time() - started < 1.0

    with Upstream(silent) as server:
        run(main)


def test_the_timeout_covers_the_body_too() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        conn.read_request()  # holds the connection until the client goes

    async def main(client: OutboundClient) -> None:
        response = await client.request("GET", server.url, timeout=0.2)
        with pytest.raises(GatewayTimeout):
            await response.read()

    with Upstream(handler) as server:
        run(main)


def test_a_refused_connection_is_an_upstream_connect_error() -> None:
    async def main(client: OutboundClient) -> None:
        with pytest.raises(UpstreamConnectError, match="refused"):
            await client.request("GET", f"http://127.0.0.1:{port}/")

    with refusing_port() as port:
        run(main)


def test_a_node_closing_without_an_answer_is_a_bad_gateway() -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.close()

    async def main(client: OutboundClient) -> None:
        with pytest.raises(BadGateway, match="closed the connection"):
            await client.request("POST", server.url, body=b"x")

    with Upstream(handler) as server:
        run(main)


def test_fields_that_would_break_the_head_are_refused() -> None:
    async def main(client: OutboundClient) -> None:
        with pytest.raises(ValueError, match="line break"):
            await client.request("GET", server.url, headers={"X-A": "1\r\nX-B: 2"})
        with pytest.raises(ValueError, match="cannot be sent"):
            await client.request("GET", server.url, headers={"Content-Length": "1"})
        with pytest.raises(ValueError, match="not an http"):
            await client.request("GET", "ftp://127.0.0.1/")

    with Upstream(echo) as server:
        run(main)
        assert server.requests == []


def test_origin_pools_are_bounded() -> None:
    async def main(client: OutboundClient) -> None:
        for server in (first, second, first):
            await (await client.request("GET", server.url)).read()
        assert len(client.origins) == 1

    with Upstream(echo) as first, Upstream(echo) as second:
        run(main, max_origins=1)
        assert (first.accepted, second.accepted) == (2, 1)


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_https_is_verified_against_a_ca_file(ca: trustme.CA, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def main(client: OutboundClient) -> None:
        with pytest.raises(BadGateway, match=r"TLS certificate of the upstream rejected"):
            await client.request("GET", server.url)
        for _ in range(2):
            response = await client.request("GET", server.url + "/tls", ca_file=str(ca_file))
            assert json.loads(await response.read())["path"] == "/tls"

    with Upstream(echo, tls=context) as server:
        run(main)
        assert server.accepted == 2  # the refused handshake, then one kept connection


# -- targets --------------------------------------------------------------------------


def test_a_target_name_goes_through_its_balancer_and_skips_a_dead_node() -> None:
    async def main(client: OutboundClient) -> list[str]:
        config = make_config(
            {
                "pair": {"nodes": [{"url": first.url + "/base"}, {"url": second.url + "/base"}]},
                "half": {"nodes": [{"url": f"http://127.0.0.1:{dead}"}, {"url": first.url}]},
            }
        )
        loop = asyncio.get_running_loop()
        snapshot = compile_snapshot(config, loop, client.sweeper, outbound=client)
        client.targets = lambda: snapshot.targets
        try:
            paths = []
            for _ in range(4):
                response = await client.request("GET", "target://pair/items?page=2")
                paths.append(json.loads(await response.read())["path"])
            for _ in range(2):
                response = await client.request("GET", "target://half/")
                assert response.status == 200
                await response.read()
            with pytest.raises(ValueError, match="no target named 'nowhere'"):
                await client.request("GET", "target://nowhere/")
            return paths
        finally:
            snapshot.close()

    with Upstream(echo) as first, Upstream(echo) as second, refusing_port() as dead:
        assert run(main) == ["/base/items?page=2"] * 4
        assert len(second.requests) == 2  # round robin: two each
        assert len(first.requests) == 2 + 2


def answers(*statuses: int) -> Callable[[Conn], None]:
    """Answers the server's n-th request with the n-th status, then 200s."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            n = len(conn.server.requests)
            status = statuses[n - 1] if n <= len(statuses) else 200
            conn.respond(status, request.path.encode())

    return handler


@contextlib.asynccontextmanager
async def target(client: OutboundClient, url: str, **settings: Any) -> AsyncIterator[TargetRuntime]:
    """Target "t" of one node at ``url``, live for ``client`` while the block runs."""
    config = make_config({"t": {"url": url, **settings}})
    snapshot = compile_snapshot(config, asyncio.get_running_loop(), client.sweeper)
    client.targets = lambda: snapshot.targets
    try:
        yield snapshot.targets["t"]
    finally:
        snapshot.close()


def test_a_target_whose_nodes_health_checks_ejected_is_tried_anyway() -> None:
    async def main(client: OutboundClient) -> list[int]:
        passive = {"failures": 1, "cooldown": 60}
        async with target(client, server.url, health_check={"passive": passive}) as t:
            statuses = []
            for _ in range(2):
                response = await client.request("GET", "target://t/")
                await response.read()
                statuses.append(response.status)
                assert not t.nodes[0].up  # ejected by the first answer, and stays out
            return statuses

    with Upstream(answers(503)) as server:
        # as for proxied requests, a wrong verdict costs a try, not an outage
        assert run(main) == [503, 200]


def test_a_target_whose_breaker_is_open_is_unavailable() -> None:
    async def main(client: OutboundClient) -> None:
        breaker = {"min_requests": 1, "open_for": 60}
        async with target(client, server.url, circuit_breaker=breaker) as t:
            await (await client.request("GET", "target://t/")).read()
            assert t.nodes[0].breaker.state == "open"
            with pytest.raises(ServiceUnavailable, match="no healthy node"):
                await client.request("GET", "target://t/")

    with Upstream(answers(503)) as server:
        run(main)
        assert len(server.requests) == 1


def fails_once_then(second: Callable[[Conn], None]) -> Callable[[Conn], None]:
    """Answers the first request 503, hands the second to ``second`` (which ends its
    connection), and answers 200 ``ok`` from then on."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            n = len(conn.server.requests)
            if n == 1:
                conn.respond(503)
            elif n == 2:
                second(conn)
                return
            else:
                conn.respond(200, b"ok")

    return handler


@contextlib.asynccontextmanager
async def half_open(client: OutboundClient, url: str, probes: int) -> AsyncIterator[Any]:
    """The breaker of target ``t``'s one node at ``url``, opened by a first request
    that fails (the node answers it 503), turned half-open now."""
    settings = {"min_requests": 1, "open_for": 60, "half_open_probes": probes}
    async with target(client, url, circuit_breaker=settings) as t:
        await (await client.request("GET", "target://t/")).read()
        breaker = t.nodes[0].breaker
        assert breaker.state == "open"
        breaker.poll(breaker.reopens_at)  # open_for has passed, as far as it knows
        assert breaker.state == "half_open"
        yield breaker


def test_a_body_breaking_after_a_counted_success_does_not_reopen_the_breaker() -> None:
    def second(conn: Conn) -> None:  # a good head, then the body breaks off
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 20)
        conn.close()

    async def main(client: OutboundClient) -> None:
        async with half_open(client, server.url, probes=2) as breaker:
            response = await client.request("GET", "target://t/")
            assert response.status == 200  # the first trial's success is counted
            with pytest.raises(BadGateway, match="closed mid-response"):
                await response.read()
            assert breaker.state == "half_open"  # one outcome per try: not a failure too
            await (await client.request("GET", "target://t/")).read()
            assert breaker.state == "closed"  # the second trial succeeds: both did

    with Upstream(fails_once_then(second)) as server:
        run(main)


def test_a_request_refused_before_it_is_sent_gives_the_admission_back() -> None:
    async def main(client: OutboundClient) -> None:
        async with half_open(client, server.url, probes=1) as breaker:
            with pytest.raises(ValueError, match="line break"):
                await client.request("GET", "target://t/", headers={"X-A": "1\r\nX-B: 2"})
            for method in ("G\u00cbT", "GET / HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET"):
                with pytest.raises(ValueError, match="not an HTTP method"):
                    await client.request(method, "target://t/")
            with pytest.raises(ValueError, match="printable"):
                await client.request("GET", "target://t/a\x00b")
            assert breaker.snapshot(0)["trials"] == 0
            response = await client.request("GET", "target://t/")  # the trial slot is free
            assert response.status == 200 and await response.read() == b"/"
            assert breaker.state == "closed"

    with Upstream(answers(503)) as server:
        run(main)
        assert len(server.requests) == 2


def test_a_request_cancelled_before_its_head_gives_the_admission_back() -> None:
    def second(conn: Conn) -> None:
        arrived[0]()
        silent_until_closed(conn)

    async def main(client: OutboundClient) -> None:
        async with half_open(client, server.url, probes=1) as breaker:
            loop, event = asyncio.get_running_loop(), asyncio.Event()
            arrived.append(lambda: loop.call_soon_threadsafe(event.set))
            request = asyncio.ensure_future(client.request("GET", "target://t/"))
            await event.wait()
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            assert breaker.snapshot(0)["trials"] == 0 and breaker.state == "half_open"
            assert await (await client.request("GET", "target://t/")).read() == b"ok"
            assert breaker.state == "closed"

    arrived: list[Callable[[], object]] = []  # tells the test the request is in
    with Upstream(fails_once_then(second)) as server:
        run(main)


def test_a_target_node_that_fails_is_ejected_by_its_passive_health_check() -> None:
    def failing(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(503, b"down")

    async def main(client: OutboundClient) -> list[int]:
        passive = {"failures": 2, "cooldown": 60}
        config = make_config(
            {
                "t": {
                    "nodes": [{"url": bad.url}, {"url": good.url}],
                    "health_check": {"passive": passive},
                }
            }
        )
        snapshot = compile_snapshot(config, asyncio.get_running_loop(), client.sweeper)
        client.targets = lambda: snapshot.targets
        try:
            statuses = []
            for _ in range(8):
                response = await client.request("GET", "target://t/")
                await response.read()
                statuses.append(response.status)
            assert not snapshot.targets["t"].nodes[0].up
            return statuses
        finally:
            snapshot.close()

    with Upstream(failing) as bad, Upstream(echo) as good:
        statuses = run(main)
        assert len(bad.requests) == 2  # then ejected: every request goes to the good node
    assert statuses.count(503) == 2 and statuses.count(200) == 6


def test_a_node_switching_protocols_unasked_is_a_bad_gateway() -> None:
    def switching(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n")
        conn.read_request()  # until the client drops the connection

    async def main(client: OutboundClient) -> None:
        with pytest.raises(BadGateway, match="switched protocols"):
            await client.request("GET", server.url)
        for node in client.origins.values():
            assert node.pool is not None and not node.pool.idle

    with Upstream(switching) as server:
        run(main)


def answers_once_then_drops_the_next() -> Callable[[Conn], None]:
    """The first connection answers one request and closes on reading the next one,
    as a server does that times an idle connection out just as it is reused."""
    connections: list[Conn] = []

    def handler(conn: Conn) -> None:
        connections.append(conn)
        first = len(connections) == 1
        while (request := conn.read_request()) is not None:
            if first and len(conn.server.requests) > 1:
                conn.close()
                return
            json_response(conn, request)

    return handler


@pytest.mark.parametrize(
    "method, idempotent, sent_again",
    [("GET", None, True), ("POST", None, False), ("POST", True, True), ("PUT", False, False)],
)
def test_a_request_meeting_a_closed_pooled_connection_is_sent_again_if_idempotent(
    method: str, idempotent: bool | None, sent_again: bool
) -> None:
    async def main(client: OutboundClient) -> None:
        await (await client.request("GET", server.url)).read()
        if sent_again:
            response = await client.request(method, server.url, idempotent=idempotent)
            assert json.loads(await response.read())["method"] == method
        else:
            with pytest.raises(BadGateway, match="closed the connection"):
                await client.request(method, server.url, idempotent=idempotent)

    with Upstream(answers_once_then_drops_the_next()) as server:
        run(main)
        assert server.accepted == (2 if sent_again else 1)


def test_a_retry_after_a_closed_pooled_connection_takes_a_fresh_one() -> None:
    opened = itertools.count(1)

    def handler(conn: Conn) -> None:
        # the first two connections answer once, then close on the next request, as
        # a server does that times idle connections out just as they are reused
        left = 1 if next(opened) <= 2 else None  # requests it still answers
        while (request := conn.read_request()) is not None:
            if left == 0:
                conn.close()
                return
            json_response(conn, request)
            left = left - 1 if left is not None else None

    async def main(client: OutboundClient) -> Any:
        pair = await asyncio.gather(*(client.request("GET", server.url + p) for p in ("/1", "/2")))
        for response in pair:
            await response.read()
        (pool,) = [node.pool for node in client.origins.values()]
        assert pool is not None and len(pool.idle) == 2  # both kept, both to be closed
        response = await client.request("GET", server.url + "/3")
        return json.loads(await response.read())

    with Upstream(handler) as server:
        assert run(main)["path"] == "/3"
        assert server.accepted == 3  # not a second stale pooled connection


@pytest.mark.parametrize("to_target", [False, True], ids=["origin", "target"])
def test_errors_name_no_node_address_but_log_it(to_target: bool) -> None:
    async def main(client: OutboundClient) -> list[HTTPError]:
        errors = []
        async with target(client, server.url):
            url = "target://t/" if to_target else server.url
            response = await client.request("GET", url)
            with pytest.raises(HTTPError) as read:
                await response.read(limit=10)
            errors.append(read.value)
            with pytest.raises(HTTPError) as wait:
                await (await client.request("GET", url, timeout=0.1)).read()
            errors.append(wait.value)
        return errors

    with Upstream(partial_answers) as server:
        errors = run(main)
    address = f"127.0.0.1:{server.port}"
    name = "target 't'" if to_target else "the upstream"
    assert [error.detail for error in errors] == [
        f"{name} answered more than 10 bytes",
        f"{name} did not answer within 0.1s",
    ]
    assert all(error.internal and address in error.internal for error in errors)
