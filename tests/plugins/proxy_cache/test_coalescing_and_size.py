"""proxy-cache: concurrent misses make one node request; large responses stream
through uncached; the memory LRU stays within its size."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from quiver.plugins.proxy_cache.entry import Entry
from quiver.plugins.proxy_cache.stores.memory import MemoryStore
from tests.plugins.proxy_cache.support import Reply, cached, fixed, get, status_of
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(60)


def in_flight(proxy: RunningProxy) -> int:
    """Requests the proxy holds (read, not answered yet)."""
    assert proxy.server is not None
    state = proxy.server.state
    return proxy.call(lambda: sum(1 for c in state.connections if c.current is not None))


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_hundred_concurrent_misses_make_one_node_request() -> None:
    with cached({"/hot": fixed(cache_control="max-age=60")}) as (origin, proxy):
        origin.gate = threading.Event()  # the node holds its answer until all are in
        clients = [Client(proxy.port, timeout=20) for _ in range(100)]
        try:
            for client in clients:
                client.send(b"GET /hot HTTP/1.1\r\nHost: test.local\r\n\r\n")
            # the leader's fetch may still be on its way to the node when the hundredth
            # request is counted in flight: wait for both, then check nothing else went
            wait_until(lambda: in_flight(proxy) == 100 and origin.count() >= 1)
            assert origin.count() == 1
            origin.gate.set()
            responses = [client.read_response() for client in clients]
        finally:
            for client in clients:
                client.close()
        assert origin.count("/hot") == 1
        assert all(r.status == 200 and r.body == b"hello" for r in responses)
        labels = sorted(str(status_of(r)) for r in responses)
        assert labels == ["HIT"] * 99 + ["MISS"]


def test_waiting_requests_go_to_the_node_when_the_response_is_not_storable() -> None:
    with cached({"/": fixed(cache_control="no-store")}) as (origin, proxy):
        origin.gate = threading.Event()
        clients = [Client(proxy.port, timeout=20) for _ in range(5)]
        try:
            for client in clients:
                client.send(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
            wait_until(lambda: in_flight(proxy) == 5)
            origin.gate.set()
            responses = [client.read_response() for client in clients]
        finally:
            for client in clients:
                client.close()
        assert all(r.body == b"hello" for r in responses)
        assert origin.count() == 5


def chunked(body: bytes, piece: int = 1000) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece])
        for i in range(0, len(body), piece)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_response_over_max_entry_size_streams_through_uncached(framing: str) -> None:
    big = bytes(range(256)) * 41  # 10,496 bytes: over 10k
    small = b"x" * 100

    def script(request: Request) -> Reply:
        body = big if request.path == "/big" else small
        if framing == "chunked":
            headers = [("Cache-Control", "max-age=60"), ("Transfer-Encoding", "chunked")]
            return 200, headers, chunked(body)
        return 200, [("Cache-Control", "max-age=60")], body

    with cached({"/big": script, "/small": script}, max_entry_size="10k") as (origin, proxy):
        for _ in range(2):
            response = get(proxy, "/big")
            assert (response.status, response.body, status_of(response)) == (200, big, "MISS")
        get(proxy, "/small")
        hit = get(proxy, "/small")
        assert (status_of(hit), hit.body) == ("HIT", small)
        assert origin.count() == 3


def test_a_chunked_body_is_stored_whole_and_answered_with_its_length() -> None:
    body = b"abc" * 1000
    headers = [("Cache-Control", "max-age=60"), ("Transfer-Encoding", "chunked")]
    with cached({"/": lambda request: (200, headers, chunked(body))}) as (_origin, proxy):
        assert get(proxy).body == body
        hit = get(proxy)
        assert (status_of(hit), hit.body) == ("HIT", body)
        assert hit.header("Content-Length") == str(len(body))
        assert hit.header("Transfer-Encoding") is None


def entry(size: int) -> Entry:
    return Entry(200, [], b"x" * size, stored_at=0.0, initial_age=0.0, lifetime=60.0)


def test_the_memory_store_evicts_the_least_recently_used_within_its_size() -> None:
    now = [0.0]
    store = MemoryStore(limit=3000, clock=lambda: now[0])
    for name in "abc":
        store.put_now(name, entry(700), ttl=60, path_id="h /" + name)
    assert store.get_now("a") is not None  # a is now the most recently used
    store.put_now("d", entry(700), ttl=60, path_id="h /d")
    assert store.get_now("b") is None and store.get_now("a") is not None
    assert store.used <= store.limit
    store.put_now("huge", entry(5000), ttl=60, path_id="h /huge")  # never fits
    assert store.get_now("huge") is None
    now[0] = 61.0
    assert store.get_now("a") is None  # its time to live is over
    assert store.invalidate_now(["h /c"]) == 1 and store.get_now("c") is None
    assert store.purge_now() == 1 and store.used == 0


def test_waiting_requests_go_on_when_the_fetching_client_leaves() -> None:
    script = {"/": fixed(cache_control="max-age=60")}
    with cached(script, coalesce_timeout=60) as (origin, proxy):
        origin.gate = threading.Event()
        leader, follower = Client(proxy.port, timeout=20), Client(proxy.port, timeout=20)
        try:
            leader.send(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
            wait_until(lambda: origin.count() == 1)
            follower.send(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
            wait_until(lambda: in_flight(proxy) == 2)
            # the client resets its connection: its exchange ends, nothing is stored
            leader.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            leader.close()
            wait_until(lambda: origin.count() == 2, timeout=10)  # not after 60 s
            origin.gate.set()
            response = follower.read_response()
        finally:
            origin.gate.set()
            leader.close()
            follower.close()
        assert (response.status, response.body) == (200, b"hello")
