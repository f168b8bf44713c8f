"""The loop-lag timer: how late it fires is the stall; it ticks often only while
clients are connected."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from quiver.proxy.lag import IDLE_INTERVAL, INTERVAL, LoopLag


class FakeLoop:
    """A loop whose clock the test moves; timers are kept, not run."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any) -> asyncio.TimerHandle:
        self.timers.append((when, callback))
        return cast(asyncio.TimerHandle, None)

    def fire(self, at: float) -> None:
        """Run the last timer set, with the clock at ``at``."""
        _, callback = self.timers[-1]
        self.now = at
        callback()


def test_a_late_tick_is_a_stall_and_the_longest_is_kept() -> None:
    loop = FakeLoop()
    lag = LoopLag(cast(asyncio.AbstractEventLoop, loop), serving=lambda: True)
    lag.start()
    due = loop.timers[-1][0]
    assert due == 100.0 + INTERVAL
    loop.fire(due + 0.250)  # the loop was busy for a quarter of a second
    loop.fire(loop.timers[-1][0] + 0.040)
    assert lag.document() == {"stall_ms": 250.0, "longest_stall_ms": 250.0}
    loop.fire(loop.timers[-1][0] + 0.030)
    assert lag.document() == {"stall_ms": 30.0, "longest_stall_ms": 250.0}


def test_without_clients_the_timer_ticks_once_a_second_and_speeds_up_for_one() -> None:
    loop = FakeLoop()
    connections: set[object] = set()
    lag = LoopLag(cast(asyncio.AbstractEventLoop, loop), serving=lambda: bool(connections))
    lag.start()
    loop.fire(loop.timers[-1][0])
    assert loop.timers[-1][0] == loop.now + IDLE_INTERVAL  # nobody waits: one wake a second
    loop.fire(loop.timers[-1][0] + 0.002)
    assert loop.timers[-1][0] == loop.now + IDLE_INTERVAL
    connections.add(object())  # a client connects
    loop.fire(loop.timers[-1][0])
    assert loop.timers[-1][0] == loop.now + INTERVAL
    loop.fire(loop.timers[-1][0] + 0.120)  # a stall while it is connected is seen
    assert abs(lag.longest - 0.120) < 1e-9
    connections.clear()
    loop.fire(loop.timers[-1][0])
    assert loop.timers[-1][0] == loop.now + IDLE_INTERVAL
