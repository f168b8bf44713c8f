"""Client-side pacing: a rate of our own, and the quota the server reports.

Both answer "how long must the next request wait" from a clock reading and
never sleep themselves, so the async and the sync client share them, and tests
drive them with a fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from quiver.client.headers import rate_limit_wait


class RateLimiter:
    """At most ``rate`` requests per second on average, ``burst`` of them at once.

    The generic cell rate algorithm (GCRA, ITU-T I.371): one number, the
    theoretical arrival time of the next request, replaces a bucket of tokens.
    ``reserve`` books the next slot and says how long to wait for it, so
    concurrent callers queue in order instead of polling.
    """

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs rate > 0 and burst >= 1")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self._arrival = float("-inf")
        self._lock = threading.Lock()  # the sync client may be shared by threads

    def reserve(self, now: float) -> float:
        """Seconds to wait before sending (0: now); the slot is booked either way."""
        with self._lock:
            arrival = max(self._arrival, now)
            self._arrival = arrival + self.interval
            return max(0.0, arrival - self.tolerance - now)


class ServerQuotas:
    """Per host, the time before which its RateLimit fields said the quota is spent.

    A response with ``RateLimit: "default";r=0;t=5`` holds every later request to
    that host for 5 seconds, instead of sending them only to be answered 429."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def note(self, host: str, headers: Mapping[str, str], now: float) -> None:
        wait = rate_limit_wait(headers)
        if wait is not None:
            self._until[host] = now + wait
        else:
            self._until.pop(host, None)

    def wait(self, host: str, now: float) -> float:
        until = self._until.get(host)
        return 0.0 if until is None else max(0.0, until - now)
