"""One timer for every deadline of a worker.

Connections set a ``deadline`` attribute (loop time, 0.0 for none) as they move
between phases; the sweeper wakes a few times a second and calls ``on_deadline``
on those past due.  Setting a float is far cheaper on the hot path than creating
and cancelling a timer handle for every phase of every request.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class HasDeadline(Protocol):
    deadline: float

    def on_deadline(self, now: float) -> None: ...


class Sweeper:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.members: set[HasDeadline] = set()
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = self.loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def add(self, member: HasDeadline) -> None:
        self.members.add(member)

    def discard(self, member: HasDeadline) -> None:
        self.members.discard(member)

    def _tick(self) -> None:
        now = self.loop.time()
        due = [m for m in self.members if 0.0 < m.deadline <= now]
        for member in due:
            member.on_deadline(now)
        self._handle = self.loop.call_later(self.interval, self._tick)
