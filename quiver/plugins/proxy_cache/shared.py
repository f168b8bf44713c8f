"""What the routes of a worker share for one backend: the store, the flights of
coalescing, the writes in progress and the throttle of failure warnings.

Kept in the worker's stores, so a config reload keeps the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Hashable
from typing import Any

from quiver.plugins.proxy_cache.coalesce import Flights
from quiver.plugins.proxy_cache.config import ProxyCacheConfig
from quiver.plugins.proxy_cache.stores import Store, StoreUnavailable, open_store
from quiver.plugins.stores import Stores

logger = logging.getLogger("quiver.plugins.proxy_cache")

#: a failing backend is reported at most once per this many seconds
WARN_INTERVAL = 60.0


class Backend:
    """A store with the worker-wide state that goes with it."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop | None) -> None:
        self.store = store
        self.flights = Flights(loop)
        self.loop = loop
        self.tasks: set[asyncio.Task[Any]] = set()
        self.warned_at = -WARN_INTERVAL
        self.closed = False

    def unavailable(self, exc: StoreUnavailable) -> None:
        """The backend failed a request (it bypasses the cache): say so, not too often."""
        now = time.monotonic()
        if now - self.warned_at >= WARN_INTERVAL:
            self.warned_at = now
            logger.warning(
                "proxy-cache: the %s backend failed (%s); requests bypass the cache "
                "(reported at most once a minute)",
                self.store.name,
                exc,
            )

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background (a write, an invalidation), kept referenced;
        once the worker stops, nothing more is started."""
        if self.closed:
            work.close()
            return
        loop = self.loop or asyncio.get_running_loop()
        task = loop.create_task(self._guarded(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        # a task cancelled before its first step never awaits ``work``: close it then
        # (a no-op for one that ran), or Python warns that it was never awaited
        task.add_done_callback(lambda _task: work.close())

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except StoreUnavailable as exc:
            self.unavailable(exc)

    async def aclose(self) -> None:
        self.closed = True
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.aclose()


def backend_for(config: ProxyCacheConfig, stores: Stores) -> Backend:
    """The worker's backend for ``config``: one per memory size, or per Redis URL and
    prefix; a memory store joins the purge watcher of the run directory."""
    key: Hashable
    if config.backend == "memory":
        key = ("proxy-cache", "memory", config.memory_size)
    else:
        key = ("proxy-cache", "redis", config.redis)

    def make() -> Backend:
        backend = Backend(open_store(config), stores.loop)
        if backend.store.immediate:
            from quiver.plugins.proxy_cache.purge import PurgeWatcher

            watcher = stores.keep(
                ("proxy-cache", "purge"), lambda: PurgeWatcher(stores.loop, stores.run_dir)
            )
            watcher.add(backend.store)
        return backend

    return stores.keep(key, make)
