"""Peak-EWMA: the node with the lowest expected latency, as in Finagle and Linkerd.

Each node keeps an exponentially weighted moving average of its response times
(``Node.ewma``, in seconds) that decays with a time constant of 10 s: a sample
taken ``dt`` seconds after the previous one weighs ``1 - exp(-dt / 10)``.  "Peak"
means a sample above the average replaces it at once, so a node that slows down
is avoided on its first slow answer and earns its way back gradually.

A pick is a power of two choices over the cost ``ewma * (in_flight + 1) / weight``,
with the average decayed to the moment of the pick so that a node once slow and
since left alone is tried again.  A node never measured costs 0 when idle, so it
is measured soon; while its first requests are still running it costs a penalty,
so an unknown (possibly hanging) node does not soak up traffic::

    record_latency(a, 0.010, now=loop.time())    # a answered in 10 ms
    record_latency(b, 0.200, now=loop.time())    # b in 200 ms
    PeakEwma(nodes, clock=loop.time).pick(request)  # a, until a has ~20 in flight
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from math import exp
from typing import TYPE_CHECKING

from quiver.proxy.balancing.p2c import PowerOfTwoChoices

if TYPE_CHECKING:
    from quiver.config.resilience import Balance
    from quiver.proxy.upstream import Node

DECAY = 10.0  # seconds: the time constant of the moving average
_PENALTY = 1e6  # cost of an unmeasured node with requests in flight (Finagle's idea)
_FLOOR = 1e-6  # a measured node never averages exactly 0 (0 means "unmeasured")


def record_latency(node: Node, seconds: float, now: float, tau: float = DECAY) -> None:
    """Fold one response time into ``node``'s peak-EWMA; ``now`` is the pick clock."""
    seconds = max(seconds, _FLOOR)
    average = node.ewma
    if seconds >= average:
        node.ewma = seconds  # peak: a slower answer counts in full at once
    else:
        elapsed = now - node.ewma_at
        keep = exp(-elapsed / tau) if elapsed > 0 else 1.0
        node.ewma = average * keep + seconds * (1.0 - keep)
    node.ewma_at = now


def cost(node: Node, now: float, tau: float = DECAY) -> float:
    """Expected wait at ``node``: its decayed average times the queue it would join."""
    average = node.ewma
    if not average:
        return _PENALTY + node.in_flight / node.weight if node.in_flight else 0.0
    elapsed = now - node.ewma_at
    if elapsed > 0:
        average *= exp(-elapsed / tau)
    return average * (node.in_flight + 1) / node.weight


class PeakEwma(PowerOfTwoChoices):
    """Picks the cheaper of two random nodes by peak-EWMA latency."""

    __slots__ = ("_clock",)

    def __init__(
        self,
        nodes: Sequence[Node],
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(nodes, rng)
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Balance,
        nodes: Sequence[Node],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> PeakEwma:
        return cls(nodes, rng, clock)

    def _choose(self, a: Node, b: Node) -> Node:
        now = self._clock()
        return a if cost(a, now) <= cost(b, now) else b
