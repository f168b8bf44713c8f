"""Passive health: eject a node after consecutive failed requests, bring it back later.

Real requests report how they ended; ``failures`` failed ones in a row, or
``timeouts`` timed-out ones in a row, take the node out for ``cooldown`` seconds.
The two counts run side by side and only a success resets them (Kong's
healthchecks count ``tcp_failures``/``http_failures`` and ``timeouts`` the same way).

An ejected node gets no traffic, so nothing would ever arrive to say it is well
again: the revival is a timer on the loop.  After it the node takes requests
again with its counts at zero; if it still fails, it is ejected again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal, TypedDict

from quiver.config.resilience import PassiveHealthCheck

log = logging.getLogger("quiver.health")

#: How a request ended, as the node is concerned.  "failure": the connection was
#: refused or reset, the response was unparsable, or its status is one of
#: ``PassiveHealthCheck.statuses`` (the caller decides which).
Outcome = Literal["ok", "failure", "timeout"]


class PassiveSnapshot(TypedDict):
    ejected: bool
    failures: int  # consecutive failed requests
    timeouts: int  # consecutive timed-out requests
    ejected_at: float | None  # loop time of the current ejection
    revives_at: float | None  # loop time the current ejection ends
    reason: str | None  # why the node was last ejected


class PassiveHealth:
    """Consecutive-failure ejection for one node."""

    __slots__ = (
        "_timer",
        "ejected",
        "ejected_at",
        "failures",
        "label",
        "loop",
        "on_change",
        "reason",
        "revives_at",
        "settings",
        "timeouts",
    )

    def __init__(
        self,
        settings: PassiveHealthCheck,
        loop: asyncio.AbstractEventLoop,
        *,
        label: str = "",
        on_change: Callable[[PassiveHealth], None] | None = None,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.label = label
        self.on_change = on_change
        self.ejected = False
        self.failures = 0
        self.timeouts = 0
        self.ejected_at: float | None = None
        self.revives_at: float | None = None
        self.reason: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def record(self, outcome: Outcome, now: float) -> None:
        """How a request to the node ended; ``now`` is loop time."""
        if self.ejected:
            return  # requests in flight when it was ejected: the cooldown stands
        if outcome == "ok":
            self.failures = self.timeouts = 0
        elif outcome == "timeout":
            self.timeouts += 1
            if self.timeouts >= self.settings.timeouts:
                self._eject(f"{self.timeouts} requests in a row timed out", now)
        else:
            self.failures += 1
            if self.failures >= self.settings.failures:
                self._eject(f"{self.failures} requests in a row failed", now)

    def snapshot(self) -> PassiveSnapshot:
        return {
            "ejected": self.ejected,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "ejected_at": self.ejected_at,
            "revives_at": self.revives_at,
            "reason": self.reason,
        }

    def close(self) -> None:
        """Cancel a pending revival (the node is being dropped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _eject(self, reason: str, now: float) -> None:
        cooldown = self.settings.cooldown
        log.warning("node %s ejected for %gs: %s", self.label, cooldown, reason)
        self.ejected = True
        self.reason = reason
        self.ejected_at = now
        self.revives_at = self.loop.time() + cooldown
        self.failures = self.timeouts = 0
        self.close()
        self._timer = self.loop.call_at(self.revives_at, self._revive)
        if self.on_change is not None:
            self.on_change(self)

    def _revive(self) -> None:
        self._timer = None
        self.ejected = False
        self.ejected_at = self.revives_at = None
        log.info("node %s back in rotation after its cooldown", self.label)
        if self.on_change is not None:
            self.on_change(self)
