"""Retries: which failures are tried again, where, how often, and what never is."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from quiver.config.resilience import Retries
from quiver.proxy.retry import RetryBudget, RetryPolicy
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answering(status: int, body: bytes) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            conn.respond(status, body + b" " + request.body)

    return handler


def resetting(conn: Conn) -> None:
    conn.read_request()
    conn.reset()


@contextmanager
def through_proxy(
    *nodes: Callable[[Conn], None] | str, **target: Any
) -> Iterator[tuple[list[Upstream], Client]]:
    """Nodes (handlers, or URLs of nothing) behind one target, and a client of the proxy."""
    with ExitStack() as stack:
        upstreams = [stack.enter_context(Upstream(n)) for n in nodes if not isinstance(n, str)]
        running = iter(upstreams)
        urls = [n if isinstance(n, str) else next(running).url for n in nodes]
        spec = {"nodes": [{"url": url} for url in urls], **target}
        proxy = stack.enter_context(RunningProxy(make_config({"backend": spec})))
        yield upstreams, stack.enter_context(Client(proxy.port))


def test_idempotent_requests_never_fail_when_one_of_three_nodes_is_down() -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    with through_proxy(answering(200, b"a"), dead, answering(200, b"b")) as ([a, b], client):
        bodies = [client.request("GET", f"/{i}").body for i in range(30)]
    assert all(body.strip() in (b"a", b"b") for body in bodies)
    assert len(a.requests) + len(b.requests) == 30


def test_a_post_is_not_retried_by_default() -> None:
    with through_proxy(resetting, answering(200, b"ok")) as ([failing, _], client):
        statuses = [client.request("POST", "/", body=b"x").status for _ in range(4)]
    assert 502 in statuses
    assert len(failing.requests) == statuses.count(502)


def test_a_post_with_an_idempotency_key_is_retried() -> None:
    headers = {"Idempotency-Key": "k1"}
    with through_proxy(resetting, answering(200, b"ok")) as (_, client):
        statuses = [client.request("POST", "/", headers=headers, body=b"x").status for _ in "1234"]
    assert statuses == [200] * 4


def test_methods_all_retries_a_post_with_its_whole_body() -> None:
    body = bytes(range(256)) * 40
    all_methods = {"methods": "all"}
    nodes = (resetting, answering(200, b"ok"))
    with through_proxy(*nodes, retries=all_methods) as ([_, good], client):
        responses = [client.request("POST", "/", body=body) for _ in range(4)]
    assert [r.status for r in responses] == [200] * 4
    assert all(r.body == b"ok " + body for r in responses)
    assert all(request.body == body for request in good.requests)


def test_a_chunked_body_is_replayed_on_retry() -> None:
    with through_proxy(resetting, echo, retries={"methods": "all"}) as (_, client):
        for _ in range(3):
            client.send(
                b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            response = client.read_response()
            assert response.status == 200
            assert response.json()["body"] == "hello world"


def test_configured_statuses_are_retried_on_another_node() -> None:
    nodes = (answering(503, b"busy"), answering(200, b"ok"))
    with through_proxy(*nodes, retries={"on": ["503"]}) as ([busy, _], client):
        bodies = [client.request("GET", "/").body.strip() for _ in range(6)]
    assert bodies == [b"ok"] * 6
    assert len(busy.requests) >= 1


def test_statuses_not_configured_are_relayed() -> None:
    with through_proxy(answering(503, b"busy")) as ([busy], client):
        response = client.request("GET", "/")
    assert (response.status, response.body.strip()) == (503, b"busy")
    assert len(busy.requests) == 1


def test_a_retry_never_happens_after_response_bytes_reached_the_client() -> None:
    def half_then_reset(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        conn.reset()

    retries = {"on": ["reset", "connect_error", "502"]}
    with through_proxy(half_then_reset, retries=retries) as ([node], client):
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = client.read_until_close()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.endswith(b"partial")
    assert len(node.requests) == 1


def test_per_try_timeout_moves_on_to_a_node_that_answers() -> None:
    def hanging(conn: Conn) -> None:
        conn.read_request()
        conn.sock.recv(1)  # until the proxy gives up on it

    # (long enough for the answering node's first answer on a loaded machine)
    retries = {"on": ["timeout"], "per_try_timeout": 1.0}
    with through_proxy(hanging, answering(200, b"ok"), retries=retries) as (_, client):
        bodies = [client.request("GET", "/").body.strip() for _ in range(4)]
    assert bodies == [b"ok"] * 4


def test_attempts_bound_the_tries_and_the_last_error_is_answered() -> None:
    with through_proxy(resetting, resetting, retries={"attempts": 4}) as ([a, b], client):
        response = client.request("GET", "/")
    assert response.status == 502
    assert len(a.requests) + len(b.requests) == 4


def test_retries_null_turns_them_off() -> None:
    with through_proxy(resetting, answering(200, b"ok"), retries=None) as ([a, _], client):
        statuses = [client.request("GET", "/").status for _ in range(4)]
    assert statuses.count(502) == 2
    assert len(a.requests) == 2


def test_a_route_can_override_the_target_retries() -> None:
    with Upstream(resetting) as a, Upstream(answering(200, b"ok")) as b:
        spec = {"nodes": [{"url": a.url}, {"url": b.url}], "retries": None}
        routes: list[dict[str, Any]] = [
            {"name": "safe", "paths": ["/safe"], "target": "backend", "retries": {}},
            {"name": "rest", "paths": ["/"], "target": "backend"},
        ]
        with (
            RunningProxy(make_config({"backend": spec}, routes)) as proxy,
            Client(proxy.port) as client,
        ):
            safe = [client.request("GET", "/safe").status for _ in range(4)]
            rest = [client.request("GET", "/other").status for _ in range(4)]
    assert safe == [200] * 4
    assert 502 in rest


# -- the policy and the budget on their own ------------------------------------------


def test_backoff_is_full_jitter_below_the_exponential_cap() -> None:
    settings = Retries(backoff=0.1, backoff_max=0.35)
    policy = RetryPolicy(settings, RetryBudget(0.2, 10), random.Random(7))
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.35), (6, 0.35)):
        delays = [policy.delay(retry) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # spread over the whole range, not a fixed step


def test_the_budget_keeps_retries_to_a_share_of_requests() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0)
    budget.roll(100.0)
    budget.requests += 100
    allowed = sum(budget.allow() for _ in range(100))
    assert allowed == 20


def test_the_budget_floor_allows_retries_when_traffic_is_light() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=1)
    budget.roll(100.0)
    budget.requests += 1
    assert sum(budget.allow() for _ in range(50)) == 10  # 1 a second over 10 seconds


def test_the_budget_forgets_requests_older_than_ten_seconds() -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0)
    budget.roll(100.0)
    budget.requests += 100
    budget.roll(111.0)
    assert not budget.allow()


@pytest.mark.parametrize("kind", ["connect_error", "reset"])
def test_default_retries_cover_connection_failures_only(kind: str) -> None:
    assert kind in Retries().on
    assert "timeout" not in Retries().on
