"""The Redis counter store's pipelining against one EVALSHA per call, same Redis, same run.

    .venv/bin/python bench/redis_counters.py [redis://127.0.0.1:6379/0]

Both sides run the same script for the same keys from ``callers`` concurrent
callers on uvloop: ``pipelined`` is :class:`RedisCounters` (calls made while others
are on the wire share one pipeline); ``per call`` is redis-py's Script object on a
connection pool (EVALSHA per call, a connection per concurrent caller).  Printed:
takes per second of wall time and per CPU-second of this process, and the ratio.
Keys are written under ``bench:`` and deleted at the end.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import redis
import uvloop

from quiver.plugins.counters import Window
from quiver.plugins.counters.redis import RedisCounters
from quiver.plugins.counters.redis_script import SCRIPT, TAKE, window_args
from quiver.plugins.counters.redis_url import connect

WINDOWS = (Window(10**9, 60),)
TAKES = 20_000
PREFIX = "bench:"

Take = Callable[[bytes], Awaitable[object]]


async def measure(take: Take, callers: int) -> tuple[float, float]:
    async def caller(index: int) -> None:
        for _ in range(TAKES // callers):
            await take(b"key-%d" % (index % 50))

    await take(b"warm-up")
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller(index) for index in range(callers)))
    return TAKES / (time.perf_counter() - wall), TAKES / (time.process_time() - cpu)


async def pipelined(url: str, callers: int) -> tuple[float, float]:
    store = RedisCounters(url, timeout=5.0, prefix=PREFIX)
    try:
        return await measure(lambda key: store.take(key, WINDOWS), callers)
    finally:
        await store.aclose()


async def per_call(url: str, callers: int) -> tuple[float, float]:
    store = RedisCounters(url, timeout=5.0, prefix=PREFIX)  # for its key names
    client, _ = connect(store.address, 5.0)
    script = client.register_script(SCRIPT)

    async def take(key: bytes) -> object:
        now = time.time()
        args = [now, 1, TAKE, *window_args(WINDOWS, now)]
        return await asyncio.wait_for(script(keys=store.keys(key, 1), args=args), 5.0)

    try:
        return await measure(take, callers)
    finally:
        await client.aclose()


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    try:
        for callers in (1, 8, 64):
            ours_wall, ours_cpu = uvloop.run(pipelined(url, callers))
            base_wall, base_cpu = uvloop.run(per_call(url, callers))
            print(
                f"{callers:3d} callers: pipelined {ours_wall:7.0f}/s {ours_cpu:7.0f}/CPU-s | "
                f"per call {base_wall:7.0f}/s {base_cpu:7.0f}/CPU-s | "
                f"CPU ratio {ours_cpu / base_cpu:4.2f}"
            )
    finally:
        with redis.Redis.from_url(url) as client:
            keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    main()
