"""One place that decides whether a node takes traffic.

Passive checks, active checks and the circuit breaker each have a say in
``node.up``, and a node is up only when all of them agree::

    node.up = (not passive.ejected)      # no passive ejection running
          and active.healthy             # the last probes did not take it out
          and breaker.available          # closed, or half-open with a trial slot free

A part that is not configured counts as agreeing.  Each part reports its changes
through a callback that ends in ``NodeHealth.refresh``, the only writer of
``node.up``; no part ever sets the flag itself, so one part coming back cannot
override another that still keeps the node out.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypedDict

from quiver.config.resilience import CircuitBreaker as BreakerSettings
from quiver.config.resilience import PassiveHealthCheck
from quiver.proxy.breaker import BreakerSnapshot, CircuitBreaker
from quiver.proxy.health.passive import Outcome, PassiveHealth, PassiveSnapshot

if TYPE_CHECKING:
    from quiver.proxy.health.active import ActiveHealth, ActiveSnapshot
    from quiver.proxy.upstream import Node


class NodeHealthSnapshot(TypedDict):
    up: bool
    passive: PassiveSnapshot | None
    active: ActiveSnapshot | None
    breaker: BreakerSnapshot | None


class NodeHealth:
    """The health parts of one node, kept in ``node.health``; owns ``node.up``."""

    __slots__ = ("_breaker_timer", "active", "breaker", "loop", "node", "passive")

    def __init__(
        self,
        node: Node,
        loop: asyncio.AbstractEventLoop,
        *,
        passive: PassiveHealthCheck | None = None,
        breaker: BreakerSettings | None = None,
    ) -> None:
        self.node = node
        self.loop = loop
        self.passive = (
            PassiveHealth(passive, loop, label=node.label, on_change=self.part_changed)
            if passive is not None
            else None
        )
        self.breaker = (
            CircuitBreaker(breaker, label=node.label, on_change=self._breaker_changed)
            if breaker is not None
            else None
        )
        #: set by ActiveHealthChecker when the target has active checks
        self.active: ActiveHealth | None = None
        self._breaker_timer: asyncio.TimerHandle | None = None
        node.health = self
        node.breaker = self.breaker
        self.refresh()

    @classmethod
    def of(cls, node: Node, loop: asyncio.AbstractEventLoop) -> NodeHealth:
        """The node's NodeHealth, attaching an empty one when it has none."""
        health = node.health
        if isinstance(health, NodeHealth):
            return health
        return cls(node, loop)

    def refresh(self) -> None:
        """Apply the rule in the module docstring to ``node.up``."""
        passive, active, breaker = self.passive, self.active, self.breaker
        self.node.up = (
            (passive is None or not passive.ejected)
            and (active is None or active.healthy)
            and (breaker is None or breaker.available)
        )

    @property
    def wants_success(self) -> bool:
        """Whether a successful request changes anything here (else the proxy skips it)."""
        passive = self.passive
        return self.breaker is not None or (
            passive is not None and bool(passive.failures or passive.timeouts)
        )

    def record(self, outcome: Outcome, now: float) -> None:
        """How a request to the node ended, for passive checks and the breaker.

        ``now`` is loop time.  The breaker counts "failure" and "timeout" alike.
        """
        if self.passive is not None:
            self.passive.record(outcome, now)
        if self.breaker is not None:
            self.breaker.record(outcome == "ok", now)

    def snapshot(self, now: float) -> NodeHealthSnapshot:
        return {
            "up": self.node.up,
            "passive": self.passive.snapshot() if self.passive is not None else None,
            "active": self.active.snapshot() if self.active is not None else None,
            "breaker": self.breaker.snapshot(now) if self.breaker is not None else None,
        }

    def close(self) -> None:
        """Cancel the timers (the node is being dropped)."""
        if self.passive is not None:
            self.passive.close()
        self._cancel_breaker_timer()

    # -- callbacks from the parts -----------------------------------------------------

    def part_changed(self, _part: object) -> None:
        """``on_change`` callback for the parts: a verdict changed."""
        self.refresh()

    def _breaker_changed(self, breaker: CircuitBreaker) -> None:
        self.refresh()
        self._cancel_breaker_timer()
        if breaker.state == "open" and breaker.reopens_at is not None:
            # an open node gets no requests, so none would come to turn it half-open
            self._breaker_timer = self.loop.call_at(breaker.reopens_at, self._breaker_due)

    def _breaker_due(self) -> None:
        self._breaker_timer = None
        breaker = self.breaker
        if breaker is not None and breaker.reopens_at is not None:
            # a timer may fire a clock tick early; the breaker must not stay open for it
            breaker.poll(max(self.loop.time(), breaker.reopens_at))

    def _cancel_breaker_timer(self) -> None:
        if self._breaker_timer is not None:
            self._breaker_timer.cancel()
            self._breaker_timer = None
