"""How long a worker's event loop stalls: the time it could not answer anything.

A timer due every ``INTERVAL`` seconds notes how late it runs; the lateness is how
long the loop was busy with something else (a reload's compiling step, a collection
of the garbage collector, a plugin's slow call).  The worker's status document
(:mod:`quiver.proxy.status`) shows the longest stall of the last interval and the
longest since the worker started, in milliseconds, under ``loop``.
"""

from __future__ import annotations

import asyncio

INTERVAL = 0.01


class LoopLag:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = INTERVAL) -> None:
        self.loop = loop
        self.interval = interval
        #: longest stall since start, and since the last ``take_recent()`` (seconds)
        self.longest = 0.0
        self.recent = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._due = self.loop.time() + self.interval
        self._handle = self.loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def take_recent(self) -> float:
        """The longest stall since the last call (seconds)."""
        recent, self.recent = self.recent, 0.0
        return recent

    def document(self) -> dict[str, float]:
        """What the status document shows: the longest stall since the last one was
        written, and since start, in milliseconds."""
        return {
            "stall_ms": round(self.take_recent() * 1000, 1),
            "longest_stall_ms": round(self.longest * 1000, 1),
        }

    def _tick(self) -> None:
        now = self.loop.time()
        late = now - self._due
        if late > self.recent:
            self.recent = late
            if late > self.longest:
                self.longest = late
        self._due = now + self.interval
        self._handle = self.loop.call_at(self._due, self._tick)
