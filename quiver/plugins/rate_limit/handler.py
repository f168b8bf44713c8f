"""The ``rate-limit`` plugin: takes one unit per request from a counter store."""

from __future__ import annotations

from collections.abc import Awaitable

from quiver.errors import TooManyRequests
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.counters import StoreUnavailable, Verdict, Window
from quiver.plugins.rate_limit.config import RateLimitConfig
from quiver.plugins.traffic.headers import Reporter, policy_name
from quiver.plugins.traffic.keys import KeyMaker
from quiver.plugins.traffic.store import StoreTrouble, counters_for


class RateLimit(Plugin[RateLimitConfig]):
    """Lets at most `limit` requests per `window` through for each consumer (or
    credential, client address, route, path, header value, or a combination: `by`),
    and answers the others 429 with Retry-After. Counting is exact: the check and the
    count are one atomic step in the store, across every worker of the node
    (`store: local`) or every node sharing a Redis (`store: redis`), so a burst of
    concurrent requests never lets more through than the limit. With several
    `limits`, a request must fit under all of them and is counted under all of them;
    a refused one is counted under none. Responses carry the RateLimit-Policy and
    RateLimit fields of draft-ietf-httpapi-ratelimit-headers, refusals included. The
    limit applies where it is attached: on a route, to that route's requests; on a
    target, to the requests of all its routes together; globally, to all requests
    together; on a consumer, to that consumer's requests wherever they go."""

    name = "rate-limit"
    priority = 910
    Config = RateLimitConfig

    def __init__(self, config: RateLimitConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.windows = tuple(
            Window(spec.limit, spec.window, config.algorithm, spec.burst or 0)
            for spec in config.specs()
        )
        names = [policy_name(window) for window in self.windows]
        self.reporter = Reporter(names, self.windows, legacy=config.legacy_headers)
        self.key = KeyMaker(f"rl|{context.scope}", config.by, config.trusted_proxies)
        self.counters = counters_for(config, context)
        self.trouble = StoreTrouble(self.name, config.on_store_error)
        self.headers = config.headers

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        key = self.key(request)
        try:
            verdict = self.counters.take(key, self.windows)
        except StoreUnavailable as exc:
            self.trouble.failed(exc)
            return None
        if isinstance(verdict, Verdict):
            self._apply(request, verdict)
            return None
        return self._awaited(request, verdict)

    async def _awaited(self, request: PluginRequest, pending: Awaitable[Verdict]) -> None:
        try:
            verdict = await pending
        except StoreUnavailable as exc:
            self.trouble.failed(exc)
            return
        if self.trouble.failing:
            self.trouble.answered()
        self._apply(request, verdict)

    def _apply(self, request: PluginRequest, verdict: Verdict) -> None:
        if not verdict.allowed:
            fields = self.reporter.refusal(request, verdict.usage, verdict.retry_after)
            raise TooManyRequests("rate limit exceeded", headers=fields)
        if self.headers:
            self.reporter.add_to(request, verdict.usage)
