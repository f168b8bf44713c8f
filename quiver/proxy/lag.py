"""How long a worker's event loop stalls: the time it could not answer anything.

A timer due every ``INTERVAL`` seconds notes how late it runs; the lateness is how
long the loop was busy with something else (a reload's compiling step, a collection
of the garbage collector, a plugin's slow call).  The worker's status document
(:mod:`quiver.proxy.status`) shows the longest stall of the last interval and the
longest since the worker started, in milliseconds, under ``loop``.

A stall matters to the clients it keeps waiting.  While the worker has none
connected, the timer is due every ``IDLE_INTERVAL`` instead: an idle gateway is
woken once a second by it, not a hundred times (each wake of an idle core costs
far more than the tick itself; with 100 a second, an idle worker used about 1% of
a core), and it takes up the short interval at the first tick that finds a
client connected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

INTERVAL = 0.01
IDLE_INTERVAL = 1.0


class LoopLag:
    """``serving``: whether any client is connected (the timer's interval follows it)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        serving: Callable[[], bool],
        interval: float = INTERVAL,
        idle_interval: float = IDLE_INTERVAL,
    ) -> None:
        self.loop = loop
        self.serving = serving
        self.interval = interval
        self.idle_interval = idle_interval
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
        self._due = now + (self.interval if self.serving() else self.idle_interval)
        self._handle = self.loop.call_at(self._due, self._tick)
