"""When a failed request may be sent again, and how long to wait first.

A retry needs all of: an attempt left; a failure kind the route retries on; no
response byte sent to the client yet; a request body that can be sent again (none,
or all of it still held); an idempotent method unless the route says ``methods:
all`` (RFC 9110 §9.2.2; an ``Idempotency-Key`` header counts as idempotent); time
left before the deadline; and room in the target's retry budget, which keeps
retries to a share of requests so a failing target is not hit with a storm.

The wait is exponential backoff with full jitter: a random time between zero and
``min(backoff_max, backoff * 2**(retry - 1))``.
"""

from __future__ import annotations

import random
from collections import deque

from quiver.config.resilience import Retries
from quiver.proxy.plain import plain

_WINDOW_SECONDS = 10


class RetryBudget:
    """Retries allowed per target: ``ratio`` of the requests of the last 10 seconds,
    and never fewer than ``min_per_second`` a second.

    Requests are counted in one-second buckets rolled by ``roll`` (called from the
    worker's timer), so counting a request on the hot path is one addition.
    """

    def __init__(self, ratio: float, min_per_second: int) -> None:
        self.ratio = ratio
        self.floor = min_per_second * _WINDOW_SECONDS
        self.requests = 0  # this second
        self.retries = 0  # this second
        self.past: deque[tuple[int, int]] = deque(maxlen=_WINDOW_SECONDS - 1)
        self._second: int | None = None

    def roll(self, now: float) -> None:
        second = int(now)
        if self._second is None:
            self._second = second  # the first second in progress
        if second == self._second:
            return
        for _ in range(min(second - self._second, _WINDOW_SECONDS)):
            self.past.append((self.requests, self.retries))
            self.requests = self.retries = 0
        self._second = second

    def allow(self) -> bool:
        requests = self.requests + sum(r for r, _ in self.past)
        retries = self.retries + sum(r for _, r in self.past)
        if retries >= max(self.floor, self.ratio * requests):
            return False
        self.retries += 1
        return True


class RetryPolicy:
    """The retry settings of a route, compiled once."""

    __slots__ = (
        "all_methods",
        "attempts",
        "backoff",
        "backoff_max",
        "budget",
        "deadline",
        "kinds",
        "per_try_timeout",
        "random",
        "statuses",
    )

    def __init__(self, settings: Retries, budget: RetryBudget, rng: random.Random) -> None:
        settings = plain(settings)
        self.attempts = settings.attempts
        self.kinds = frozenset(settings.on)
        self.statuses = frozenset(int(kind) for kind in settings.on if kind.isdigit())
        self.all_methods = settings.methods == "all"
        self.per_try_timeout = settings.per_try_timeout
        self.deadline = settings.deadline
        self.backoff = settings.backoff
        self.backoff_max = settings.backoff_max
        self.budget = budget
        self.random = rng

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.backoff_max, self.backoff * 2 ** (retry - 1))
        return self.random.uniform(0.0, ceiling)
