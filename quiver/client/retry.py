"""When to send a request again, and how long to wait first.

Backoff is "full jitter" (a uniform draw between 0 and the capped exponential,
as in the AWS architecture blog's comparison): clients that failed together do
not come back together.  A delay the server asked for (``Retry-After``, an
exhausted RateLimit quota) is waited out in full: the jittered backoff is only
ever a floor under it.  A server asking for more than ``max_server_delay`` is
taken at its word that it will not recover soon: the error is raised instead.

What is retried:

- an error that says the request was never sent (``ConnectError``,
  ``ConnectTimeout``, ``PoolTimeout``), whatever the method;
- a retryable error after the request went out (``ReadTimeout``,
  ``NetworkError``, a status in ``statuses``: 429 and 5xx by default) only when
  sending it twice is harmless: an idempotent method, or an ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quiver.client.errors import HTTPStatusError, QuiverClientError, TransportError
from quiver.client.headers import server_delay
from quiver.client.models import RequestSpec


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` is how many times a request may be *re*-sent (0: never)."""

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_server_delay: float = 120.0

    def delay(
        self,
        spec: RequestSpec,
        error: QuiverClientError,
        retry: int,
        random: Callable[[], float],
        now: float,
    ) -> float | None:
        """Seconds to wait before retry number ``retry`` (0 for the first), or None
        when ``error`` is to be raised; ``now`` is wall-clock time for HTTP-dates."""
        if retry >= self.attempts or not self.may_retry(spec, error):
            return None
        backoff = random() * min(self.max_backoff, self.backoff * 2.0**retry)
        asked: float | None = None
        if isinstance(error, HTTPStatusError):
            asked = server_delay(error.response.headers, now)
        if asked is None:
            return backoff
        if asked > self.max_server_delay:
            return None
        return max(asked, backoff)

    def may_retry(self, spec: RequestSpec, error: QuiverClientError) -> bool:
        if not error.retryable:
            return False
        if isinstance(error, TransportError) and error.unsent:
            return True
        if isinstance(error, HTTPStatusError) and error.status not in self.statuses:
            return False
        return spec.retry_safe


NO_RETRY = RetryPolicy(attempts=0)
