"""The Redis counter store against real Redis: exact under concurrency, key layout and
expiry, and what it does when Redis is slow, gone, or back."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from quiver.plugins.counters import StoreUnavailable, Verdict, Window, resolved
from quiver.plugins.counters.redis import RedisCounters
from quiver.plugins.counters.redis_script import EXPIRY_MARGIN_MS
from quiver.plugins.stores import Stores
from tests.support.redis_nodes import RedisServer, require_redis_server

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_040.0
KEY = b"rl|route:r\x1fconsumer:alice"


async def take_many(counters: list[RedisCounters], count: int, window: Window) -> list[Verdict]:
    calls = [counters[i % len(counters)].take(KEY, (window,)) for i in range(count)]
    return list(await asyncio.gather(*calls))


@pytest.mark.parametrize("nodes", [1, 2])
def test_two_thousand_concurrent_takes_let_exactly_the_limit_through(
    redis_prefix: tuple[str, str], nodes: int
) -> None:
    url, prefix = redis_prefix
    window = Window(100, 60)

    async def run() -> list[Verdict]:
        counters = [RedisCounters(url, timeout=5.0, prefix=prefix) for _ in range(nodes)]
        try:
            return await take_many(counters, 2000, window)
        finally:
            for store in counters:
                await store.aclose()

    verdicts = asyncio.run(run())
    assert sum(v.allowed for v in verdicts) == 100
    assert all(v.retry_after > 0 for v in verdicts if not v.allowed)


def test_the_windows_of_a_key_share_a_cluster_slot_and_expire(
    redis_prefix: tuple[str, str],
) -> None:
    url, prefix = redis_prefix
    now = T0 + 3.5
    windows = (Window(5, 10), Window(100, 3600), Window(9, 10, "token_bucket"))

    async def run() -> list[bytes]:
        store = RedisCounters(url, timeout=2.0, prefix=prefix, clock=lambda: now)
        try:
            assert (await store.take(KEY, windows, 3)).allowed
            return store.keys(KEY, len(windows))
        finally:
            await store.aclose()

    keys = asyncio.run(run())
    assert len({key_slot(key) for key in keys}) == 1
    assert all(key.startswith(prefix.encode() + b"{") for key in keys)
    assert b"alice" not in b"".join(keys)  # a digest: no consumer names in Redis
    with redis.Redis.from_url(url) as client:
        ttls = [client.pttl(key) for key in keys]
        assert [len(client.get(key) or b"") for key in keys] == [32, 32, 32]
    # sliding: two windows from the start of the current one; token bucket: refilled
    hour = T0 // 3600 * 3600
    expected = [(T0 + 20 - now) * 1000, (hour + 7200 - now) * 1000, 3 / 9 * 10 * 1000]
    for ttl, seconds in zip(ttls, expected, strict=True):
        assert seconds + EXPIRY_MARGIN_MS - 1000 < ttl <= seconds + EXPIRY_MARGIN_MS + 1


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_redis_that_forgot_the_script_gets_it_again(own_redis: RedisServer) -> None:
    async def run() -> None:
        store = RedisCounters(own_redis.url, timeout=2.0)
        window = (Window(12, 60),)
        try:
            assert (await store.take(KEY, window)).allowed
            with own_redis.client() as client:
                client.script_flush()
            assert (await store.take(KEY, window)).allowed  # alone
            with own_redis.client() as client:
                client.script_flush()
            verdicts = await asyncio.gather(*(store.take(KEY, window) for _ in range(12)))
            assert [v.allowed for v in verdicts] == [True] * 10 + [False] * 2  # in a pipeline
        finally:
            await store.aclose()

    asyncio.run(run())


def test_a_stopped_redis_fails_fast_and_a_restarted_one_counts_again(
    own_redis: RedisServer,
) -> None:
    ticks = [100.0]  # the back-off's clock
    window = (Window(2, 60),)

    async def run() -> None:
        store = RedisCounters(own_redis.url, timeout=0.5, monotonic=lambda: ticks[0])
        try:
            assert (await store.take(KEY, window)).allowed
            own_redis.stop()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=f"redis at {own_redis.url}"):
                await store.take(KEY, window)
            assert time.monotonic() - started < 0.5 + 0.4
            # backing off: refused at once, without an awaitable or a connection attempt
            with pytest.raises(StoreUnavailable, match=r"retrying in 0\.5 s"):
                store.take(KEY, window)
            ticks[0] += 0.6  # the back-off is over: it tries again, and fails again
            with pytest.raises(StoreUnavailable):
                await store.take(KEY, window)
            with pytest.raises(StoreUnavailable):
                store.take(KEY, window)
            own_redis.start()  # same port, empty
            ticks[0] += 0.6
            assert (await store.take(KEY, window)).allowed
            assert (await store.take(KEY, window)).allowed
            assert not (await store.take(KEY, window)).allowed
        finally:
            await store.aclose()

    asyncio.run(run())


def test_a_redis_that_never_answers_costs_at_most_the_timeout() -> None:
    with socket.socket() as silent:  # accepts (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]

        async def run() -> float:
            store = RedisCounters(f"redis://127.0.0.1:{port}/0", timeout=0.2)
            started = time.monotonic()
            try:
                results = await asyncio.gather(
                    *(store.take(KEY, (Window(5, 1),)) for _ in range(50)),
                    return_exceptions=True,
                )
            finally:
                await store.aclose()
            assert all(isinstance(result, StoreUnavailable) for result in results), results
            assert "no answer within 0.2 s" in str(results[0])
            return time.monotonic() - started

        assert asyncio.run(run()) < 0.2 + 0.5


def test_errors_never_show_the_password(tmp_path: Path) -> None:
    require_redis_server()
    server = RedisServer(tmp_path / "redis", args=["--requirepass", "hunter2"]).start()
    window = (Window(5, 1),)

    async def failures(password: str, stop: bool) -> list[str]:
        store = RedisCounters(f"redis://:{password}@127.0.0.1:{server.port}/0")
        try:
            if stop:
                assert (await store.take(KEY, window)).allowed
                server.stop()
            with pytest.raises(StoreUnavailable) as refused:
                await store.take(KEY, window)
            with pytest.raises(StoreUnavailable) as backing_off:
                store.take(KEY, window)
        finally:
            await store.aclose()
        return [str(refused.value), str(backing_off.value)]

    try:
        messages = asyncio.run(failures("wrong-hunter2", stop=False))
        messages += asyncio.run(failures("hunter2", stop=True))
    finally:
        server.stop()
    assert "AuthenticationError" in messages[0]
    assert all(f"redis://:***@127.0.0.1:{server.port}/0" in text for text in messages), messages
    assert not any("hunter2" in text for text in messages), messages


def test_closing_fails_what_is_pending_and_what_comes_after(
    redis_prefix: tuple[str, str],
) -> None:
    url, prefix = redis_prefix

    async def run() -> None:
        store = RedisCounters(url, timeout=2.0, prefix=prefix)
        assert (await store.take(KEY, (Window(5, 1),))).allowed
        pending = [store.take(KEY, (Window(5, 1),)) for _ in range(3)]
        await store.aclose()
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(result, StoreUnavailable) for result in results), results
        with pytest.raises(StoreUnavailable, match="closed"):
            store.take(KEY, (Window(5, 1),))

    asyncio.run(run())


def test_a_workers_stores_share_and_close_their_redis_clients(
    redis_prefix: tuple[str, str],
) -> None:
    url, prefix = redis_prefix

    async def run() -> None:
        stores = Stores()
        counters = stores.redis_counters(url, timeout=1.0, prefix=prefix)
        assert stores.redis_counters(url, timeout=1.0, prefix=prefix) is counters
        assert stores.redis_counters(url, timeout=1.0, prefix=prefix + "x") is not counters
        assert (await resolved(counters.take(KEY, (Window(5, 1),)))).allowed
        await stores.aclose()
        with pytest.raises(StoreUnavailable, match="closed"):
            counters.take(KEY, (Window(5, 1),))

    asyncio.run(run())
