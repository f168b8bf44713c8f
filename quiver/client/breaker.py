"""A circuit breaker per host: stop sending to a host that keeps failing.

    closed ──(failures in a row reach ``threshold``)──▶ open
    open ──(``cooldown`` seconds pass)──▶ half-open: one request goes through
    half-open ──(it succeeds)──▶ closed;  ──(it fails)──▶ open again

A failure is a transport error or a 5xx answer; a 4xx (429 included) says the
host is up and answering.  The breakers only read a clock handed to them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown: float = 30.0


class _Breaker:
    __slots__ = ("failures", "opened_at", "probing", "state")

    def __init__(self) -> None:
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False


class Breakers:
    """One breaker per host, created on first use."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self._hosts: dict[str, _Breaker] = {}
        self._lock = threading.Lock()

    def allow(self, host: str, now: float) -> bool:
        """Whether a request to ``host`` may be sent now (a half-open probe is let
        through once, until its outcome is recorded)."""
        with self._lock:
            breaker = self._hosts.get(host)
            if breaker is None or breaker.state == "closed":
                return True
            if breaker.state == "open" and now - breaker.opened_at >= self.policy.cooldown:
                breaker.state = "half-open"
            if breaker.state == "half-open" and not breaker.probing:
                breaker.probing = True
                return True
            return False

    def record(self, host: str, failed: bool, now: float) -> State:
        """Record an outcome; returns the host's state after it."""
        with self._lock:
            breaker = self._hosts.setdefault(host, _Breaker())
            breaker.probing = False
            if not failed:
                breaker.state, breaker.failures = "closed", 0
                return breaker.state
            breaker.failures += 1
            if breaker.state == "half-open" or breaker.failures >= self.policy.threshold:
                breaker.state, breaker.opened_at = "open", now
            return breaker.state

    def state(self, host: str) -> State:
        breaker = self._hosts.get(host)
        return "closed" if breaker is None else breaker.state
