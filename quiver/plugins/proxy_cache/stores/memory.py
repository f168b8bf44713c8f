"""The ``memory`` backend: an LRU bounded in bytes, one per worker process.

Each worker keeps its own entries (nothing is shared between processes), so a
response may be fetched once per worker.  Entries also expire on their time to
live, checked when they are looked up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from quiver.plugins.proxy_cache.entry import Stored
from quiver.plugins.proxy_cache.stores import Store, matches


class MemoryStore(Store):
    name = "memory"
    immediate = True

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.used = 0
        self.clock = clock
        # key -> (value, expires at, path id); most recently used last
        self.items: OrderedDict[str, tuple[Stored, float, str]] = OrderedDict()
        self.by_path: dict[str, set[str]] = {}

    def get_now(self, key: str) -> Stored | None:
        item = self.items.get(key)
        if item is None:
            return None
        if item[1] <= self.clock():
            self._drop(key)
            return None
        self.items.move_to_end(key)
        return item[0]

    def put_now(self, key: str, value: Stored, ttl: float, path_id: str) -> None:
        size = value.size
        if size > self.limit or ttl <= 0:
            return
        if key in self.items:
            self._drop(key)
        while self.used + size > self.limit and self.items:
            self._drop(next(iter(self.items)))  # the least recently used
        self.items[key] = (value, self.clock() + ttl, path_id)
        self.used += size
        self.by_path.setdefault(path_id, set()).add(key)

    def invalidate_now(self, path_ids: Iterable[str]) -> int:
        dropped = 0
        for path_id in path_ids:
            for key in list(self.by_path.get(path_id, ())):
                self._drop(key)
                dropped += 1
        return dropped

    def purge_now(
        self, host: str | None = None, path: str | None = None, exact: bool = False
    ) -> int:
        """Drop the entries a purge names (all when neither is given)."""
        if host is None and path is None:
            dropped = len(self.items)
            self.items.clear()
            self.by_path.clear()
            self.used = 0
            return dropped
        ids = [path_id for path_id in self.by_path if matches(path_id, host, path, exact)]
        return self.invalidate_now(ids)

    async def get(self, key: str) -> Stored | None:
        return self.get_now(key)

    async def put(self, key: str, value: Stored, ttl: float, path_id: str) -> None:
        self.put_now(key, value, ttl, path_id)

    async def invalidate(self, path_ids: Iterable[str]) -> int:
        return self.invalidate_now(path_ids)

    async def purge(
        self, host: str | None = None, path: str | None = None, exact: bool = False
    ) -> int:
        return self.purge_now(host, path, exact)

    def _drop(self, key: str) -> None:
        value, _, path_id = self.items.pop(key)
        self.used -= value.size
        keys = self.by_path.get(path_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_path[path_id]
