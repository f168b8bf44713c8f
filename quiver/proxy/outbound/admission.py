"""What a try on a target's node owes the node's health checks and breaker.

The rule is the proxy's (``quiver.proxy.attempts``): a try the breaker admitted
ends in exactly one outcome or in its admission given back.  The response head
tells the outcome, or the failure that came instead of a head; a body that breaks
after a head that was told is not told again (in a half-open breaker it would
undo a trial's success already counted).  A try that ends telling nothing of the
node (our own pool full, cancelled, closed by the caller before the head) gives
the breaker its admission back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from quiver.proxy.attempts import FAILURE_LATENCY
from quiver.proxy.balancing.ewma import record_latency
from quiver.proxy.upstream import Node

if TYPE_CHECKING:
    from quiver.proxy.health import Outcome
    from quiver.proxy.snapshot import TargetRuntime


class Admission:
    """The try of one request on ``node``; no-ops unless the node is ``target``'s."""

    __slots__ = ("loop", "node", "reported", "sent_at", "target")

    def __init__(
        self, node: Node, loop: asyncio.AbstractEventLoop, target: TargetRuntime | None
    ) -> None:
        self.node = node
        self.loop = loop
        self.target = target
        self.sent_at = 0.0  # loop time the request went, for latency-aware balancing
        self.reported = False  # the outcome was told, or the admission given back

    def sent(self) -> None:
        if self.target is not None and self.target.tracks_latency:
            self.sent_at = self.loop.time()

    def answered(self, status: int) -> None:
        """The response head is in."""
        if self.target is not None:
            self.report("failure" if status in self.target.failure_statuses else "ok")

    def report(self, outcome: Outcome) -> None:
        """Tell the node's health checks and breaker how the try ended (once a try)."""
        target, node = self.target, self.node
        if target is None or self.reported:
            return
        now = self.loop.time()
        if target.tracks_latency:
            # a node that fails fast must not look fast: a failure counts as slow
            record_latency(node, now - self.sent_at if outcome == "ok" else FAILURE_LATENCY, now)
        health = node.health
        if target.guarded and health is not None and (outcome != "ok" or health.wants_success):
            health.record(outcome, now)
            self.reported = True

    def release(self) -> None:
        """Give back the breaker's admission: the try told nothing of the node."""
        breaker = self.node.breaker
        if not self.reported and self.target is not None and breaker is not None:
            self.reported = True
            breaker.release()
