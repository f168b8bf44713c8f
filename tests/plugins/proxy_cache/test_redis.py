"""proxy-cache on the redis backend, against a real Redis; and Redis down."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.plugins.proxy_cache.support import Origin, Reply, cached, fixed, get, status_of
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(60)

REDIS_URL = os.environ.get("QUIVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own, its keys deleted afterwards."""
    if not _reachable(REDIS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI=true: required)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set QUIVER_TEST_REDIS_URL)")
    name = f"quiver-test:{uuid.uuid4().hex[:8]}:"
    yield name
    asyncio.run(_delete(name))


async def _delete(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
    finally:
        await client.aclose()


async def _keys(prefix: str) -> list[bytes]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=prefix + "*")]
    finally:
        await client.aclose()


def redis_settings(prefix: str) -> dict[str, object]:
    return {"backend": "redis", "redis": {"url": REDIS_URL, "prefix": prefix}}


def test_entries_in_redis_are_shared_by_every_proxy(prefix: str) -> None:
    origin = Origin({"/": fixed(cache_control="max-age=60", etag='"a"')})
    routes = [
        {
            "name": "r",
            "paths": ["/"],
            "target": "b",
            "plugins": {"proxy-cache": redis_settings(prefix)},
        }
    ]
    try:
        with (
            RunningProxy(make_config({"b": origin.url}, routes)) as first,
            RunningProxy(make_config({"b": origin.url}, routes)) as second,
        ):
            assert status_of(get(first)) == "MISS"
            wait_for_keys(prefix)
            hit = get(second)
            assert (status_of(hit), hit.body, hit.header("ETag")) == ("HIT", b"hello", '"a"')
            assert status_of(get(first, method="HEAD")) == "HIT"
            assert origin.count() == 1
    finally:
        origin.close()


def wait_for_keys(prefix: str, count: int = 1) -> None:
    """Writes to Redis happen after the response: wait until they are there."""
    import time

    deadline = time.monotonic() + 10
    while len(asyncio.run(_keys(prefix + "cache:e:"))) < count:
        assert time.monotonic() < deadline, "the entry never reached Redis"
        time.sleep(0.01)


def test_redis_keeps_variants_and_invalidates_them(prefix: str) -> None:
    def script(request: Request) -> Reply:
        language = request.header("Accept-Language") or "-"
        if request.method == "DELETE":
            return 204, [], b""
        headers = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]
        return 200, headers, language.encode()

    with cached({"/doc": script}, **redis_settings(prefix)) as (_origin, proxy):
        get(proxy, "/doc", accept_language="en")
        wait_for_keys(prefix)
        get(proxy, "/doc", accept_language="de")
        wait_for_keys(prefix, 2)
        hit = get(proxy, "/doc", accept_language="de")
        assert (status_of(hit), hit.body) == ("HIT", b"de")
        get(proxy, "/doc", "DELETE")
        wait_until_gone(prefix)
        assert status_of(get(proxy, "/doc", accept_language="en")) == "MISS"


def wait_until_gone(prefix: str) -> None:
    import time

    deadline = time.monotonic() + 10
    while asyncio.run(_keys(prefix + "cache:e:")):
        assert time.monotonic() < deadline, "the entries were never invalidated"
        time.sleep(0.01)


def test_redis_entries_expire_after_freshness_plus_keep_stale(prefix: str) -> None:
    import redis

    with cached(
        {"/": fixed(cache_control="max-age=30")}, **redis_settings(prefix), keep_stale=20
    ) as (
        _origin,
        proxy,
    ):
        get(proxy)
        wait_for_keys(prefix)
        client = redis.Redis.from_url(REDIS_URL)
        [key] = client.keys(prefix + "cache:e:*")
        assert 45_000 < client.pttl(key) <= 50_000
        client.close()


def test_redis_down_bypasses_the_cache_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {"backend": "redis", "redis": {"url": f"redis://127.0.0.1:{port}/0"}}
    caplog.set_level(logging.WARNING, logger="quiver.plugins.proxy_cache")
    with cached({"/": fixed(cache_control="max-age=60")}, **settings) as (origin, proxy):
        for _ in range(3):
            response = get(proxy)
            assert (response.status, response.body, status_of(response)) == (
                200,
                b"hello",
                "BYPASS",
            )
        only = get(proxy, cache_control="only-if-cached")
        assert only.status == 504 and only.json()["type"] == "urn:quiver:problem:not-cached"
        assert origin.count() == 3
    warnings = [r for r in caplog.records if r.name == "quiver.plugins.proxy_cache"]
    assert len(warnings) == 1
    assert "requests bypass the cache" in warnings[0].getMessage()


def test_concurrent_misses_on_two_gateways_make_one_node_request(prefix: str) -> None:
    from tests.plugins.proxy_cache.test_coalescing_and_size import in_flight, wait_until

    origin = Origin({"/": fixed(cache_control="max-age=60")})
    origin.gate = threading.Event()  # the node holds its answer until both are in
    plugins = {"proxy-cache": redis_settings(prefix)}
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    request = b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n"
    try:
        with (
            RunningProxy(make_config({"b": origin.url}, routes)) as first,
            RunningProxy(make_config({"b": origin.url}, routes)) as second,
            Client(first.port, timeout=20) as one,
            Client(second.port, timeout=20) as other,
        ):
            one.send(request)
            wait_until(lambda: origin.count() == 1)  # the first fetches (and holds the lock)
            other.send(request)
            wait_until(lambda: in_flight(second) == 1)
            origin.gate.set()
            answers = [one.read_response(), other.read_response()]
    finally:
        origin.close()
    assert [status_of(a) for a in answers] == ["MISS", "HIT"]
    assert all(a.body == b"hello" for a in answers)
    assert origin.count() == 1
