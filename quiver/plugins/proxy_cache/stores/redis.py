"""The ``redis`` backend: entries in Redis, shared by every worker and node.

Entry ``<prefix>e:<key>`` holds the serialised entry with a time to live of its
freshness plus ``keep_stale``; the set ``<prefix>p:<path id>`` lists the keys
filed under a path, for invalidation, and lives as long as its longest entry;
``<prefix>l:<key>`` is taken (SET NX, expiring) by the process fetching a key, so
that the others wait for its entry instead of fetching too.
Every call is bounded by the Redis ``timeout``; a failure raises ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from quiver.plugins.counters.redis_url import connect, parse, reason
from quiver.plugins.proxy_cache.entry import Stored, loads
from quiver.plugins.proxy_cache.stores import Store, StoreUnavailable, matches

_SCAN_BATCH = 500


class RedisStore(Store):
    name = "redis"

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.client: Any
        self.client, self._others = connect(parse(url), timeout)

    async def get(self, key: str) -> Stored | None:
        data = await self._call(self.client.get(self.prefix + "e:" + key))
        return loads(data) if data is not None else None

    async def put(self, key: str, value: Stored, ttl: float, path_id: str) -> None:
        milliseconds = max(1, int(ttl * 1000))
        index = self.prefix + "p:" + path_id
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.prefix + "e:" + key, value.dumps(), px=milliseconds)
        pipe.sadd(index, key)
        pipe.pexpire(index, milliseconds, gt=True)
        pipe.pexpire(index, milliseconds, nx=True)
        await self._call(pipe.execute())

    async def lock(self, key: str, ttl: float) -> bool:
        name = self.prefix + "l:" + key
        taken = await self._call(self.client.set(name, b"1", nx=True, px=int(ttl * 1000)))
        return bool(taken)

    async def unlock(self, key: str) -> None:
        await self._call(self.client.delete(self.prefix + "l:" + key))

    async def invalidate(self, path_ids: Iterable[str]) -> int:
        dropped = 0
        for path_id in path_ids:
            index = self.prefix + "p:" + path_id
            keys = await self._call(self.client.smembers(index))
            names = [self.prefix + "e:" + key.decode("latin-1") for key in keys]
            if names:
                dropped += int(await self._call(self.client.delete(*names)))
            await self._call(self.client.delete(index))
        return dropped

    async def purge(
        self, host: str | None = None, path: str | None = None, exact: bool = False
    ) -> int:
        if host is None and path is None:
            return await self._delete_matching(_glob(self.prefix) + "*")
        ids = []
        prefix = self.prefix + "p:"
        async for name in self.client.scan_iter(match=_glob(prefix) + "*", count=_SCAN_BATCH):
            path_id = name.decode("latin-1")[len(prefix) :]
            if matches(path_id, host, path, exact):
                ids.append(path_id)
        return await self.invalidate(ids)

    async def aclose(self) -> None:
        await self.client.aclose()
        for other in self._others:  # (a Sentinel's own connections)
            await other.aclose()

    async def _delete_matching(self, pattern: str) -> int:
        dropped = 0
        batch: list[bytes] = []
        async for name in self.client.scan_iter(match=pattern, count=_SCAN_BATCH):
            if name.startswith((self.prefix + "e:").encode("latin-1")):
                dropped += 1
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                await self._call(self.client.delete(*batch))
                batch = []
        if batch:
            await self._call(self.client.delete(*batch))
        return dropped

    async def _call(self, pending: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(reason(exc)) from exc


def _glob(text: str) -> str:
    """``text`` with Redis glob characters escaped."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
