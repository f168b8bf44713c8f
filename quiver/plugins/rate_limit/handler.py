"""The ``rate-limit`` plugin: takes one unit per request from a counter store."""

from __future__ import annotations

from collections.abc import Awaitable

from quiver.errors import TooManyRequests
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.counters import Verdict, Window
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.rate_limit.config import RateLimitConfig
from quiver.plugins.traffic.counted import Counted
from quiver.plugins.traffic.headers import Reporter, policy_name
from quiver.plugins.traffic.keys import KeyMaker
from quiver.plugins.traffic.store import StoreTrouble, counters_for


class RateLimit(Counted[RateLimitConfig]):
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
        #: the usual case, decided in place: one sliding window in the node's table
        self.window = self.windows[0]
        counters = self.counters
        self.take_usual = (
            counters.take_sliding
            if isinstance(counters, LocalCounters)
            and len(self.windows) == 1
            and self.window.algorithm == "sliding_window"
            and self.reporter.single
            else None
        )

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        key = self.key(request)
        take_usual = self.take_usual
        if take_usual is not None:
            taken = take_usual(key, self.window)
            if taken is not None:
                if self.headers:
                    request.add_response_fields(self.reporter.usual(*taken))
                return None
        return self.take(request, key)

    def decided(self, request: PluginRequest, verdict: Verdict) -> None:
        if not verdict.allowed:
            fields = self.reporter.refusal(request, verdict.usage, verdict.retry_after)
            raise TooManyRequests("rate limit exceeded", headers=fields)
        if self.headers:
            self.reporter.add_to(request, verdict.usage)
