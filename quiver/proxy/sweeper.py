"""One timer for every deadline of a worker.

Connections set a ``deadline`` attribute (loop time, 0.0 for none) as they move
between phases; the sweeper wakes a few times a second and calls ``on_deadline``
on those past due.  Setting a float is far cheaper on the hot path than creating
and cancelling a timer handle for every phase of every request.

A worker holding many connections (ten thousand WebSockets are twenty thousand
members) is swept in slices of ``SLICE`` members, each in a callback of its own, so
that a sweep never holds the event loop for long: reading the deadline of every
member touches memory spread over the whole heap, several milliseconds at that size.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

#: members whose deadlines one callback reads
SLICE = 500


class HasDeadline(Protocol):
    deadline: float

    def on_deadline(self, now: float) -> None: ...


class Sweeper:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.members: set[HasDeadline] = set()
        self._handle: asyncio.Handle | None = None

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
        members = self.members
        if len(members) <= SLICE:  # the usual case: one pass
            now = self.loop.time()
            due = [m for m in members if 0.0 < m.deadline <= now]
            for member in due:
                member.on_deadline(now)
            self._handle = self.loop.call_later(self.interval, self._tick)
        else:
            self._sweep(list(members), 0)

    def _sweep(self, members: list[HasDeadline], start: int) -> None:
        """One slice of a sweep over ``members`` (as they were when it began); the next
        slice runs after what the loop has ready meanwhile."""
        now = self.loop.time()
        end = start + SLICE
        due = [m for m in members[start:end] if 0.0 < m.deadline <= now]
        current = self.members
        for member in due:
            if member in current:  # (not one that left since the sweep began)
                member.on_deadline(now)
        if end < len(members):
            self._handle = self.loop.call_soon(self._sweep, members, end)
        else:
            self._handle = self.loop.call_later(self.interval, self._tick)
