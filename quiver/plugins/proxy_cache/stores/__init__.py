"""Where entries live: one small interface, one class per backend, a registry.

A store keeps ``Entry`` and ``Variants`` values under string keys, each with a
time to live, and indexes them by *path id* (``"<host> <path>"``) so that an
unsafe request can invalidate what it changed without a scan.  ``immediate``
stores (memory) answer without waiting: the plugin calls their ``*_now``
methods on the hot path; the others are awaited.  A store that cannot be
reached raises ``StoreUnavailable``: the request then bypasses the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from quiver.plugins.proxy_cache.config import ProxyCacheConfig
from quiver.plugins.proxy_cache.entry import Stored


class StoreUnavailable(Exception):
    """The backend did not answer (Redis down, too slow)."""


class Store:
    """Base of the backends; ``name`` is the config's ``backend`` value."""

    name: ClassVar[str]
    immediate: ClassVar[bool] = False

    async def get(self, key: str) -> Stored | None:
        raise NotImplementedError

    async def put(self, key: str, value: Stored, ttl: float, path_id: str) -> None:
        raise NotImplementedError

    async def invalidate(self, path_ids: Iterable[str]) -> int:
        """Drop every entry filed under these path ids; how many went."""
        raise NotImplementedError

    async def purge(
        self, host: str | None = None, path: str | None = None, exact: bool = False
    ) -> int:
        """Drop entries: all of them, or those whose host is ``host`` and/or whose path
        is ``path`` (``exact``) or under it; how many went."""
        raise NotImplementedError

    async def lock(self, key: str, ttl: float) -> bool:
        """Take the fetch of ``key`` for this process for up to ``ttl`` seconds; False
        when another process has it.  Stores not shared between processes need none."""
        return True

    async def unlock(self, key: str) -> None:
        return None

    def get_now(self, key: str) -> Stored | None:
        raise NotImplementedError

    def put_now(self, key: str, value: Stored, ttl: float, path_id: str) -> None:
        raise NotImplementedError

    def invalidate_now(self, path_ids: Iterable[str]) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def matches(path_id: str, host: str | None, path: str | None, exact: bool = False) -> bool:
    """Whether the entry at ``path_id`` falls under a purge of ``host`` and ``path``:
    that path (``exact``), or it and what is under it on segment boundaries."""
    entry_host, _, entry_path = path_id.partition(" ")
    if host is not None and entry_host not in (host, ""):
        return False
    if path is None or entry_path == path:
        return True
    return not exact and entry_path.startswith(path.rstrip("/") + "/")


def cache_prefix(config: ProxyCacheConfig) -> str:
    """Where the cache's keys go in its Redis (apart from the limits' counters)."""
    assert config.redis is not None
    return config.redis.prefix + "cache:"


def open_store(config: ProxyCacheConfig) -> Store:
    """A new store for ``config`` from the registry."""
    return STORES[config.backend](config)


def _memory(config: ProxyCacheConfig) -> Store:
    from quiver.plugins.proxy_cache.stores.memory import MemoryStore

    return MemoryStore(config.memory_size)


def _redis(config: ProxyCacheConfig) -> Store:
    from quiver.plugins.proxy_cache.stores.redis import RedisStore

    assert config.redis is not None
    return RedisStore(config.redis.url, cache_prefix(config), config.redis.timeout)


#: backends by name: how to open one for a config
STORES: dict[str, Callable[[ProxyCacheConfig], Store]] = {"memory": _memory, "redis": _redis}
