"""Request coalescing: one node fetch per key at a time, within a worker (across
processes, a store's ``lock`` does the same: see the redis backend).

The first request that misses a key becomes its *leader* and goes to the node;
the requests for that key that come while it is on its way wait for it, then
take what it stored (or, when it stored nothing, go to the node themselves).
Whatever happens to the leader's exchange, its flight ends: when the entry is
stored, when the response turns out not storable, when the exchange is dropped
at the latest (cut off, failed mid-body), and followers stop waiting after
``coalesce_timeout`` in any case.
"""

from __future__ import annotations

import asyncio

from quiver.plugins.proxy_cache.entry import Entry


class Flights:
    """The keys being fetched in this worker, each with what its followers await."""

    __slots__ = ("loop", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.waiting: dict[str, asyncio.Future[Entry | None]] = {}

    def lead(self, key: str) -> asyncio.Future[Entry | None] | None:
        """Take the lead for ``key``: None when another request has it already (its
        future is then ``waiting[key]``), else the new flight's future."""
        if key in self.waiting:
            return None
        loop = self.loop or asyncio.get_running_loop()
        flight = self.waiting[key] = loop.create_future()
        return flight

    def land(self, key: str, flight: asyncio.Future[Entry | None], entry: Entry | None) -> None:
        """The leader is done: followers get ``entry`` (None: nothing was stored)."""
        if self.waiting.get(key) is flight:
            del self.waiting[key]
        if not flight.done():
            flight.set_result(entry)

    async def follow(self, key: str, timeout: float) -> Entry | None:
        """Wait for the flight of ``key`` (None when it stored nothing or took too long)."""
        flight = self.waiting.get(key)
        if flight is None:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(flight)
        except TimeoutError:
            self.land(key, flight, None)  # the leader is lost: let the next one lead
            return None
