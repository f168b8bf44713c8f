"""Counters that limits keep: how many units a key has used in a window.

Traffic-control plugins (``rate-limit``, ``quota``; later AI token budgets) do not
count for themselves: they ask a :class:`Counters` store to *take* units for a key
under one or more :class:`Window`\\ s, and the store decides atomically.  A request
under ``limits: [{limit: 10, window: 1s}, {limit: 1000, window: 1h}]`` takes one unit
under both windows or, when either is spent, under neither, so a refused request
never uses up the longer allowance.  Nothing is checked first and counted later:
two requests racing for the last unit cannot both get it, whatever worker or node
they reach.

A caller that learns the real cost only afterwards (tokens of a model's answer)
reserves an estimate with ``take`` and corrects it with ``settle``::

    verdict = counters.take(key, windows, cost=estimate)
    ...
    counters.settle(key, windows, actual - estimate)

Stores: ``local`` (:mod:`quiver.plugins.counters.local`, exact across the workers
of one node) and ``redis`` (:mod:`quiver.plugins.counters.redis`, exact across every
node sharing a Redis).  ``take`` and ``settle`` of the local store return plain
values; the Redis store returns awaitables (see :func:`resolved`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

Algorithm = Literal["sliding_window", "token_bucket", "fixed_window"]
ALGORITHMS: tuple[Algorithm, ...] = ("sliding_window", "token_bucket", "fixed_window")

Period = Callable[[float], tuple[float, float]]
"""The fixed window holding a time: ``period(now) -> (start, end)`` in Unix seconds."""


def aligned(seconds: float) -> Period:
    """Fixed windows of ``seconds`` each, aligned on the Unix epoch."""

    def period(now: float) -> tuple[float, float]:
        start = math.floor(now / seconds) * seconds
        return start, start + seconds

    return period


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` units per ``seconds``, counted by ``algorithm``:

    - ``sliding_window``: the count of the current fixed window plus the previous
      window's count weighted by how much of it the sliding window still covers;
    - ``token_bucket``: a bucket of ``burst`` tokens (``limit`` when 0) refilled at
      ``limit / seconds`` per second;
    - ``fixed_window``: the count since the start of ``period(now)``, forgotten at its
      end (calendar days and months for quotas).
    """

    limit: int
    seconds: float
    algorithm: Algorithm = "sliding_window"
    burst: int = 0
    period: Period | None = None  # fixed_window only; epoch-aligned when None

    @property
    def capacity(self) -> int:
        """The most units a key can take at once."""
        if self.algorithm == "token_bucket":
            return self.burst or self.limit
        return self.limit

    def bounds(self, now: float) -> tuple[float, float]:
        """The fixed window holding ``now``."""
        if self.period is not None:
            return self.period(now)
        start = math.floor(now / self.seconds) * self.seconds
        return start, start + self.seconds


class Usage(NamedTuple):
    """Where a key stands under one window after a decision."""

    limit: int
    remaining: int  # units still available now
    reset: float  # seconds until the whole allowance is available again


class Verdict(NamedTuple):
    """A store's answer to ``take``: whether the units were taken, and the usage
    under every window (in the order given)."""

    allowed: bool
    usage: tuple[Usage, ...]
    retry_after: float = 0.0  # refused: seconds until the same take could succeed


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time."""


class Counters(Protocol):
    """A counter store shared by everything that enforces the same limits."""

    def take(
        self, key: bytes, windows: Sequence[Window], cost: int = 1
    ) -> Verdict | Awaitable[Verdict]:
        """Take ``cost`` units for ``key`` under every window at once, or none of them
        when any window has fewer left.  Raises (or the awaitable raises)
        :class:`StoreUnavailable` when the store cannot answer."""
        ...

    def settle(self, key: bytes, windows: Sequence[Window], delta: int) -> Awaitable[None] | None:
        """Add ``delta`` units (negative: give some back) under every window, without
        a check: the correction of an earlier ``take`` once the real cost is known."""
        ...


async def resolved(value: Verdict | Awaitable[Verdict]) -> Verdict:
    """The verdict, whether the store answered at once or has to be awaited."""
    if isinstance(value, Verdict):
        return value
    return await value
