"""State plugins keep beyond one request: counters shared by the node's workers,
connections to shared stores, and whatever else should outlive a config.

Each worker has one :class:`Stores`, made when it starts and kept across reloads
(a new config's plugins find the counts the old one's left), and hands it to
plugins in ``PluginContext.stores``::

    def __init__(self, config: MyLimitConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.counters = context.stores.counters()

Tables are opened on first use, so a config without traffic-control plugins opens
none.  Without a run directory (a gateway inside a test, ``quiver check``) they live
in this process's memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from quiver.plugins.counters import Counters
from quiver.plugins.counters.inflight import InFlight
from quiver.plugins.counters.local import LocalCounters
from quiver.system import process_alive

if TYPE_CHECKING:
    from quiver.plugins.counters.redis import RedisCounters

T = TypeVar("T")

COUNTERS_FILE = "counters.table"  # rate limits: the node's workers share it
QUOTAS_FILE = "quotas.table"  # kept across restarts, apart so that busy limits never evict it


def in_flight_file(instance: int) -> str:
    """The in-flight table of the gateway whose master process is ``instance``."""
    return f"in-flight.{instance}.table"


class Stores:
    """The stores of one worker: ``run_dir`` holds the node's shared tables; ``worker``
    is the worker's index and ``instance`` the pid of the gateway's master process
    (the worker's own when it runs alone); ``loop`` the worker's event loop (set by
    the server that adopts the stores; None where nothing is served).

    Besides counters, a plugin may keep anything else that should outlive a config
    (a response cache, a client) with ``keep``; it is closed when the worker stops::

        store = context.stores.keep(("my-plugin", size), lambda: Store(size))
    """

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        worker: int = 0,
        instance: int | None = None,
        clock: Callable[[], float] = time.time,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.loop = loop
        self.worker = worker
        self.instance = instance if instance is not None else os.getpid()
        self.clock = clock
        self._counters: LocalCounters | None = None
        self._quotas: LocalCounters | None = None
        self._in_flight: InFlight | None = None
        self._redis: dict[tuple[str, float, str], RedisCounters] = {}
        self._kept: dict[Hashable, Any] = {}

    def _path(self, name: str) -> Path | None:
        return self.run_dir / name if self.run_dir is not None else None

    def counters(self) -> LocalCounters:
        """The node's counters for rate limits."""
        if self._counters is None:
            self._counters = LocalCounters(self._path(COUNTERS_FILE), clock=self.clock)
        return self._counters

    def quotas(self) -> LocalCounters:
        """The node's counters for quotas, kept in the run directory across restarts."""
        if self._quotas is None:
            self._quotas = LocalCounters(self._path(QUOTAS_FILE), clock=self.clock)
        return self._quotas

    def in_flight(self) -> InFlight:
        """Requests in flight on the node, by key."""
        if self._in_flight is None:
            self._in_flight = InFlight(self._path(in_flight_file(self.instance)), self.worker)
        return self._in_flight

    def keep(self, key: Hashable, factory: Callable[[], T]) -> T:
        """What is kept under ``key``, made by ``factory`` the first time."""
        try:
            item: T = self._kept[key]
        except KeyError:
            item = self._kept[key] = factory()
        return item

    def redis_counters(self, url: str, *, timeout: float, prefix: str) -> Counters:
        """Counters in the Redis at ``url``, one client per URL for the worker."""
        key = (url, timeout, prefix)
        counters = self._redis.get(key)
        if counters is None:
            from quiver.plugins.counters.redis import RedisCounters  # (redis-py: an extra)

            counters = self._redis[key] = RedisCounters(
                url, timeout=timeout, prefix=prefix, clock=self.clock
            )
        return counters

    def close(self) -> None:
        """Write the tables back and let them go (the worker is stopping)."""
        for table in (self._counters, self._quotas):
            if table is not None:
                table.table.flush()
                table.close()
        if self._in_flight is not None:
            self._in_flight.close()
        self._counters = self._quotas = self._in_flight = None

    async def aclose(self) -> None:
        """Close the connections to shared stores, and what plugins kept (the worker
        is stopping; each item's ``aclose()`` or ``close()``, awaited when it returns
        an awaitable)."""
        redis, self._redis = list(self._redis.values()), {}
        for counters in redis:
            await counters.aclose()
        kept, self._kept = list(self._kept.values()), {}
        for item in kept:
            with contextlib.suppress(Exception):
                closing = getattr(item, "aclose", None) or getattr(item, "close", None)
                result = closing() if closing is not None else None
                if isinstance(result, Awaitable):
                    await result


def remove_in_flight_tables(run_dir: Path, ended: int | None = None) -> None:
    """Remove the in-flight tables of gateways that are gone, and that of ``ended``
    (the pid of a gateway that is stopping)."""
    for path in run_dir.glob("in-flight.*.table"):
        pid_text = path.name.split(".")[1]
        if not pid_text.isdigit():
            continue
        if int(pid_text) != ended and process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
