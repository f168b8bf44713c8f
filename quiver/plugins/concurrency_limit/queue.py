"""Requests waiting for a slot of a concurrency limit.

The node-wide in-flight table holds the counts, and also how many requests wait
for each key (a second record, ``key + QUEUED``), so ``queue`` bounds the waiting
on the whole node, and a worker that dies gives its places back like its slots.

A slot freed by a request of this worker wakes the first of its waiters for that
key at once.  A slot freed in another worker cannot wake anyone here: the table is
shared memory under ``flock``, which has no way to notify.  So each waiter also
looks at the table every ``RECHECK`` seconds: a slot freed elsewhere is taken
within that much, at the cost of a lock and a lookup (microseconds) per waiter per
check, and a waiter sleeps in between.  Waiters of one worker are served in order
of arrival; across workers, whoever looks first gets the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from quiver.plugins.counters.inflight import InFlight

RECHECK = 0.015
QUEUED = b"\x00queued"


class Waiters:
    """The requests of this worker waiting for one of ``limit`` slots, by key."""

    def __init__(self, table: InFlight, limit: int, queue: int, timeout: float) -> None:
        self.table = table
        self.limit = limit
        self.queue = queue
        self.timeout = timeout
        self.lines: dict[bytes, deque[asyncio.Future[None]]] = {}

    def waiting(self, key: bytes) -> bool:
        """Whether requests of this worker wait for ``key`` (a newcomer goes behind)."""
        return key in self.lines

    def wake(self, key: bytes) -> None:
        """A request of this worker for ``key`` ended: its first waiter tries now."""
        line = self.lines.get(key)
        while line:
            future = line.popleft()
            if not future.done():
                future.set_result(None)
                return

    async def take(self, key: bytes) -> str:
        """Wait for a slot for ``key`` and take it: "taken", else why not: "full"
        (the queue is) or "timeout"."""
        table = self.table
        if not table.enter(key + QUEUED, self.queue)[0]:
            return "full"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        line = self.lines.setdefault(key, deque())
        future: asyncio.Future[None] = loop.create_future()
        line.append(future)
        taken = False
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    return "timeout"
                await asyncio.wait((future,), timeout=min(RECHECK, left))
                taken = table.enter(key, self.limit)[0]
                if taken:
                    return "taken"
                if future.done():  # woken, but another worker's request took the slot
                    future = loop.create_future()
                    # (back at the front; the line may have emptied and gone meanwhile)
                    self.lines.setdefault(key, line).appendleft(future)
        finally:
            self._leave(key, future, taken=taken)

    def _leave(self, key: bytes, future: asyncio.Future[None], *, taken: bool) -> None:
        """Out of the line, with a slot or without (timed out, or its client left)."""
        self.table.leave(key + QUEUED)
        line = self.lines.get(key)
        if not future.done():
            future.cancel()
            if line is not None:
                with contextlib.suppress(ValueError):
                    line.remove(future)
        elif not taken:
            self.wake(key)  # woken for a slot it does not take: pass it on
        if line is not None and not line:
            del self.lines[key]
