"""concurrency-limit: its config, and slots held and given back through the running
proxy, with a node that holds requests until the test lets them go."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pydantic
import pytest

from quiver.plugins.base import PluginContext
from quiver.plugins.concurrency_limit import ConcurrencyLimit
from quiver.plugins.concurrency_limit.queue import QUEUED
from quiver.plugins.consumers import Consumers
from quiver.plugins.stores import Stores
from tests.support.holding import HoldingNode
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)

KEY = b"cc|route:api\x1f\x1froute"  # the key of `by: route` on route "api"
ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n"


@pytest.mark.parametrize(
    "settings",
    [
        {"limit": 1},
        {"limit": 10, "by": "consumer"},
        {"limit": 10, "by": ["consumer", "path"], "status": 503, "retry_after": "5s"},
        {"limit": 10, "queue": 20},
        {"limit": 10, "queue": 20, "queue_timeout": "250ms"},
        {"limit": 65535, "by": "ip", "trusted_proxies": ["10.0.0.0/8"]},
    ],
)
def test_valid_concurrency_limit_configs(settings: dict[str, Any]) -> None:
    ConcurrencyLimit.Config.model_validate(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "limit"),
        ({"limit": 0}, "greater than or equal to 1"),
        ({"limit": 70000}, "less than or equal to 65535"),
        ({"limit": 1, "queue": -1}, "greater than or equal to 0"),
        ({"limit": 1, "queue_timeout": 2}, "queue_timeout applies with a queue"),
        ({"limit": 1, "queue": 1, "queue_timeout": 0}, "queue_timeout must be above 0"),
        ({"limit": 1, "status": 500}, "429 or 503"),
        ({"limit": 1, "retry_after": 0}, "retry_after 0s: at least 1 second"),
        ({"limit": 1, "retry_after": "500ms"}, "retry_after 0.5s: at least 1 second"),
        ({"limit": 1, "by": "user"}, "use consumer, credential"),
        ({"limit": 1, "store": "redis"}, "Extra inputs"),
    ],
)
def test_invalid_concurrency_limit_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ConcurrencyLimit.Config.model_validate(settings)


def config(url: str, plugin: str, *, key_auth: bool = False) -> str:
    auth = "      key-auth: {}\n" if key_auth else ""
    return f"""\
listen: 127.0.0.1:0
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE}}}]}}
  - name: bob
    credentials: {{key-auth: [{{key: {BOB}}}]}}
targets:
  - name: backend
    url: {url}
routes:
  - name: api
    paths: ["/"]
    target: backend
    plugins:
{auth}      concurrency-limit: {plugin}
"""


@pytest.fixture
def holding() -> Iterator[tuple[HoldingNode, Upstream]]:
    node = HoldingNode()
    with Upstream(node) as upstream:
        yield node, upstream
        node.release()


def send(port: int, headers: str = "") -> Client:
    """A client whose request is sent (its answer read later)."""
    client = Client(port)
    client.send(f"GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    return client


def reset(client: Client) -> None:
    """Leave as a client that gives up: the connection reset."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    client.sock.close()


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) for state the proxy shows no other way, e.g. a queued request."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def count(proxy: RunningProxy, stores: Stores, key: bytes) -> int:
    return proxy.call(stores.in_flight().in_flight, key)


def test_requests_over_the_limit_are_refused_while_the_others_are_held(
    holding: tuple[HoldingNode, Upstream],
) -> None:
    node, upstream = holding
    with RunningProxy(config(upstream.url, "{limit: 2}")) as proxy:
        held = [send(proxy.port), send(proxy.port)]
        assert node.wait_arrived(2) == 2
        with Client(proxy.port) as third:
            refused = third.request("GET", "/")
        problem = assert_problem(refused, 429)
        assert problem["type"] == "urn:quiver:problem:rate-limited"
        assert problem["detail"] == "2 requests are in flight already"
        assert refused.header("retry-after") == "1"
        node.release()
        assert [client.read_response().status for client in held] == [200, 200]
        with Client(proxy.port) as later:  # both slots came back
            assert [later.request("GET", "/").status for _ in range(3)] == [200] * 3
        for client in held:
            client.close()
    assert node.arrived == 5


def test_a_refusal_can_be_a_503(holding: tuple[HoldingNode, Upstream]) -> None:
    node, upstream = holding
    plugin = "{limit: 1, status: 503, retry_after: 3}"
    with RunningProxy(config(upstream.url, plugin)) as proxy, send(proxy.port):
        node.wait_arrived(1)
        with Client(proxy.port) as other:
            refused = other.request("GET", "/")
        problem = assert_problem(refused, 503)
        assert problem["type"] == "urn:quiver:problem:overloaded"
        assert refused.header("retry-after") == "3"


def test_each_consumer_has_slots_of_its_own(holding: tuple[HoldingNode, Upstream]) -> None:
    node, upstream = holding
    text = config(upstream.url, "{limit: 1, by: consumer}", key_auth=True)
    with RunningProxy(text) as proxy, send(proxy.port, f"apikey: {ALICE}\r\n"):
        node.wait_arrived(1)
        with Client(proxy.port) as other:
            assert other.request("GET", "/", headers={"apikey": ALICE}).status == 429
        with send(proxy.port, f"apikey: {BOB}\r\n"):
            assert node.wait_arrived(2) == 2


def test_a_client_that_leaves_gives_its_slot_back() -> None:
    arrived = threading.Event()
    gone = threading.Event()

    def hold_until_gone(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if request.path == "/hold":
                arrived.set()
                with contextlib.suppress(OSError):  # (a reset, or a close)
                    conn.sock.recv(1)
                gone.set()  # the proxy let go of this connection
                return
            conn.respond(200, b"ok")

    with Upstream(hold_until_gone) as upstream:
        stores = Stores()
        with RunningProxy(config(upstream.url, "{limit: 1}"), stores=stores) as proxy:
            leaving = Client(proxy.port)
            leaving.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
            until(lambda: count(proxy, stores, KEY) == 1)
            # (the node has the request: a client leaving before it is sent leaves
            # an unused connection in the pool, which the node would wait on)
            assert arrived.wait(10)
            reset(leaving)
            assert gone.wait(10), "the proxy kept the node's connection"
            until(lambda: count(proxy, stores, KEY) == 0)
            with Client(proxy.port) as client:
                assert client.request("GET", "/").status == 200


def test_a_failed_node_gives_the_slot_back() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with RunningProxy(config(url, "{limit: 1}")) as proxy, Client(proxy.port) as client:
        assert [client.request("GET", "/").status for _ in range(3)] == [502] * 3
    closed.close()


def test_an_upgraded_request_holds_its_slot_until_the_tunnel_closes() -> None:
    def tunnel(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None and request.header("upgrade"):
            conn.send(SWITCHING)
            while conn.sock.recv(65536):
                pass
        elif request is not None:
            conn.respond(200, b"ok")

    stores = Stores()
    with Upstream(tunnel) as upstream:
        text = config(upstream.url, "{limit: 1}")
        with RunningProxy(text, stores=stores) as proxy, Client(proxy.port) as ws:
            ws.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n")
            assert ws.read_response().status == 101
            assert count(proxy, stores, KEY) == 1
            with Client(proxy.port) as client:
                assert client.request("GET", "/").status == 429
            ws.close()
            until(lambda: count(proxy, stores, KEY) == 0)
            with Client(proxy.port) as client:
                assert client.request("GET", "/").status == 200


def test_a_queued_request_gets_the_slot_a_local_request_frees(
    holding: tuple[HoldingNode, Upstream],
) -> None:
    node, upstream = holding
    stores = Stores()
    plugin = "{limit: 1, queue: 1, queue_timeout: 20}"
    with RunningProxy(config(upstream.url, plugin), stores=stores) as proxy:
        first = send(proxy.port)
        node.wait_arrived(1)
        queued = send(proxy.port)
        until(lambda: count(proxy, stores, KEY + QUEUED) == 1)
        with Client(proxy.port) as third:
            refused = third.request("GET", "/")
        assert refused.status == 429
        assert refused.json()["detail"] == (
            "1 requests are in flight already and the queue is full"
        )
        node.release()
        assert first.read_response().status == 200
        assert queued.read_response().status == 200
        first.close()
        queued.close()
    assert node.arrived == 2


def test_a_queued_request_is_refused_when_no_slot_comes_in_time(
    holding: tuple[HoldingNode, Upstream],
) -> None:
    node, upstream = holding
    plugin = "{limit: 1, queue: 1, queue_timeout: 100ms}"
    with RunningProxy(config(upstream.url, plugin)) as proxy, send(proxy.port):
        node.wait_arrived(1)
        with Client(proxy.port) as late:
            refused = late.request("GET", "/")
        assert refused.status == 429
        assert refused.json()["detail"].endswith("and no slot came free in time")
        assert node.arrived == 1


def test_a_queued_client_that_leaves_leaves_the_queue(
    holding: tuple[HoldingNode, Upstream],
) -> None:
    node, upstream = holding
    stores = Stores()
    plugin = "{limit: 1, queue: 1, queue_timeout: 20}"
    with (
        RunningProxy(config(upstream.url, plugin), stores=stores) as proxy,
        send(proxy.port) as first,
    ):
        node.wait_arrived(1)
        leaving = send(proxy.port)
        until(lambda: count(proxy, stores, KEY + QUEUED) == 1)
        reset(leaving)
        until(lambda: count(proxy, stores, KEY + QUEUED) == 0)
        with send(proxy.port) as next_in_line:  # the place is free again
            until(lambda: count(proxy, stores, KEY + QUEUED) == 1)
            node.release()
            assert first.read_response().status == 200
            assert next_in_line.read_response().status == 200
    assert node.arrived == 2


def test_a_slot_freed_by_another_worker_reaches_a_queued_request(
    tmp_path: Path, holding: tuple[HoldingNode, Upstream]
) -> None:
    node, upstream = holding
    text = config(upstream.url, "{limit: 1, queue: 1, queue_timeout: 20}")
    one = Stores(tmp_path, worker=0, instance=4242)  # two workers of one gateway
    two = Stores(tmp_path, worker=1, instance=4242)
    with RunningProxy(text, stores=one) as first, RunningProxy(text, stores=two) as second:
        held = send(first.port)
        node.wait_arrived(1)
        queued = send(second.port)
        until(lambda: count(second, two, KEY + QUEUED) == 1)
        node.release()  # the first worker frees the slot; the second finds it
        assert held.read_response().status == 200
        assert queued.read_response().status == 200
        held.close()
        queued.close()


def test_the_log_phase_gives_a_slot_back_once() -> None:
    stores = Stores()
    context = PluginContext(Consumers(()), stores=stores)
    plugin = ConcurrencyLimit(ConcurrencyLimit.Config.model_validate({"limit": 2}), context)
    first: Any = SimpleNamespace(ctx={})
    second: Any = SimpleNamespace(ctx={})
    plugin.access(first)
    plugin.access(second)
    plugin.log(first)
    plugin.log(first)  # (run again, it gives nothing more back)
    assert stores.in_flight().in_flight(b"cc|global\x1f\x1froute") == 1


def test_a_request_a_later_plugin_refuses_gives_its_slot_back(
    holding: tuple[HoldingNode, Upstream],
) -> None:
    node, upstream = holding
    node.release()
    stores = Stores()
    text = config(upstream.url, "{limit: 1}\n      quota: {limit: 1, period: day, by: ip}")
    with RunningProxy(text, stores=stores) as proxy, Client(proxy.port) as client:
        assert [client.request("GET", "/").status for _ in range(3)] == [200, 429, 429]
        refused = client.request("GET", "/")
        assert refused.json()["detail"] == "quota of 1 requests per day is spent"
        assert count(proxy, stores, KEY) == 0
