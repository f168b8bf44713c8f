"""A circuit breaker per node: stop sending where most requests fail, then probe.

::

            failure rate >= failure_rate          open_for elapsed
    closed ────────────────────────────► open ───────────────────► half_open
      ▲     (over min_requests or more)   ▲                            │
      │                                   └──── any trial fails ───────┤
      └───────── half_open_probes trials succeed (window cleared) ─────┘

The breaker is plain logic: every call takes ``now`` (loop time, as from
``loop.time()``) and nothing here schedules anything.  An open breaker keeps its
node out of the balancers, so no request will ever come to move it on; whoever
owns the loop (``quiver.proxy.health.NodeHealth``) calls ``poll`` at ``reopens_at``.

``available`` is the breaker's part of a node's ``up`` flag: the node may take a
request when the breaker is closed, or half-open with a trial slot free.  The
``on_change`` callback runs whenever ``available`` may have changed, so the owner
can recompute ``up`` without polling.

Every request that ``admit`` let through must end in ``record`` (it says something
about the node) or ``release`` (it does not, e.g. the client went away), or a
half-open breaker would wait for trials that never report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypedDict

from quiver.config.resilience import CircuitBreaker as BreakerSettings

log = logging.getLogger("quiver.breaker")

BreakerState = Literal["closed", "open", "half_open"]

#: The sliding window is kept as this many buckets: recording is O(1), and a
#: failure leaves the window between 90 % and 100 % of ``window`` after it happened.
BUCKETS = 10


class BreakerSnapshot(TypedDict):
    state: BreakerState
    failures: int  # failed requests in the window
    requests: int  # requests in the window
    opened_at: float | None  # loop time it last opened, while open or half-open
    trials: int  # half-open: trial requests in flight


class CircuitBreaker:
    """Opens on the failure rate of one node's requests over a sliding window."""

    __slots__ = (
        "_failed",
        "_failures",
        "_head",
        "_probe_successes",
        "_probes_out",
        "_requests",
        "_seen",
        "_width",
        "label",
        "on_change",
        "opened_at",
        "reopens_at",
        "settings",
        "state",
    )

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        label: str = "",
        on_change: Callable[[CircuitBreaker], None] | None = None,
    ) -> None:
        self.settings = settings
        self.label = label
        self.on_change = on_change
        self.state: BreakerState = "closed"
        self.opened_at: float | None = None
        #: loop time at which an open breaker turns half-open
        self.reopens_at: float | None = None
        self._width = settings.window / BUCKETS
        self._failed = [0] * BUCKETS
        self._seen = [0] * BUCKETS
        self._head = 0  # absolute number of the newest bucket
        self._failures = 0
        self._requests = 0
        self._probes_out = 0
        self._probe_successes = 0

    @property
    def available(self) -> bool:
        """Whether the node may be picked now, as far as the breaker is concerned."""
        state = self.state
        if state == "closed":
            return True
        return state == "half_open" and self._probes_out < self.settings.half_open_probes

    def admit(self, now: float) -> bool:
        """May a request go to the node? True counts as a trial when half-open."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            if self.reopens_at is None or now < self.reopens_at:
                return False
            self._half_open()
        if self._probes_out >= self.settings.half_open_probes:
            return False
        self._probes_out += 1
        if self._probes_out == self.settings.half_open_probes:
            self._changed()  # no free trial slot: the node is out until one reports
        return True

    def record(self, ok: bool, now: float) -> None:
        """The outcome of a request ``admit`` let through."""
        state = self.state
        if state == "closed":
            self._count(ok, now)
            requests = self._requests
            if (
                requests >= self.settings.min_requests
                and self._failures >= self.settings.failure_rate * requests
            ):
                log.warning(
                    "circuit breaker for %s opened: %d of %d requests failed in %gs",
                    self.label,
                    self._failures,
                    requests,
                    self.settings.window,
                )
                self._open(now)
        elif state == "half_open":
            if not ok:
                log.warning("circuit breaker for %s opened again: a trial failed", self.label)
                self._open(now)
                return
            was_full = self._probes_out >= self.settings.half_open_probes
            self._probes_out = max(0, self._probes_out - 1)
            self._probe_successes += 1
            if self._probe_successes >= self.settings.half_open_probes:
                log.info("circuit breaker for %s closed: trials succeeded", self.label)
                self._close()
            elif was_full:
                self._changed()
        # open: a request admitted before the breaker opened says nothing new

    def release(self) -> None:
        """An admitted request ended without telling anything about the node."""
        if self.state == "half_open" and self._probes_out:
            was_full = self._probes_out >= self.settings.half_open_probes
            self._probes_out -= 1
            if was_full:
                self._changed()

    def poll(self, now: float) -> None:
        """Apply what time alone changes: an open breaker turns half-open."""
        if self.state == "open" and self.reopens_at is not None and now >= self.reopens_at:
            self._half_open()

    def snapshot(self, now: float) -> BreakerSnapshot:
        if self.state == "closed":
            self._advance(now)  # let old buckets expire before counting
        return {
            "state": self.state,
            "failures": self._failures,
            "requests": self._requests,
            "opened_at": self.opened_at,
            "trials": self._probes_out,
        }

    # -- internals --------------------------------------------------------------------

    def _count(self, ok: bool, now: float) -> None:
        self._advance(now)
        index = self._head % BUCKETS
        self._seen[index] += 1
        self._requests += 1
        if not ok:
            self._failed[index] += 1
            self._failures += 1

    def _advance(self, now: float) -> None:
        """Make the bucket holding ``now`` the newest, emptying those that slid out."""
        bucket = int(now // self._width)
        head = self._head
        if bucket <= head:
            return  # same bucket (or a clock that went back: keep counting in the newest)
        if bucket - head >= BUCKETS:
            self._clear()
        else:
            failed, seen = self._failed, self._seen
            for absolute in range(head + 1, bucket + 1):
                index = absolute % BUCKETS
                self._failures -= failed[index]
                self._requests -= seen[index]
                failed[index] = seen[index] = 0
        self._head = bucket

    def _clear(self) -> None:
        self._failed = [0] * BUCKETS
        self._seen = [0] * BUCKETS
        self._failures = self._requests = 0

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.reopens_at = now + self.settings.open_for
        self._probes_out = self._probe_successes = 0
        self._changed()

    def _half_open(self) -> None:
        log.info("circuit breaker for %s half-open: letting trial requests through", self.label)
        self.state = "half_open"
        self.reopens_at = None
        self._probes_out = self._probe_successes = 0
        self._changed()

    def _close(self) -> None:
        self.state = "closed"
        self.opened_at = self.reopens_at = None
        self._probes_out = self._probe_successes = 0
        self._clear()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
