"""The ``concurrency-limit`` plugin: a slot in the node's in-flight table per request."""

from __future__ import annotations

import math
from collections.abc import Awaitable

from quiver.errors import HTTPError, Overloaded, TooManyRequests
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.concurrency_limit.config import ConcurrencyLimitConfig
from quiver.plugins.concurrency_limit.queue import Waiters
from quiver.plugins.traffic.keys import KeyMaker


class ConcurrencyLimit(Plugin[ConcurrencyLimitConfig]):
    """Lets at most `limit` requests be in flight at once for each key (by default
    the route: every request where the plugin is attached; or per consumer,
    credential, client address, path, header value, or a combination: `by`), exactly
    across the workers of the node. A request holds its slot from its access phase
    until its exchange ends: its response sent, an error answered, its client gone,
    or its upgrade to a tunnel accepted. With `queue`, up to that many requests per
    key wait up to `queue_timeout` for a slot, in order of arrival within a worker;
    the others are refused with 429 (or 503: `status`) and Retry-After. The limit
    is per node: each node of a cluster allows `limit`."""

    name = "concurrency-limit"
    priority = 908  # after rate-limit; before quota, so waiting spends no quota
    Config = ConcurrencyLimitConfig

    def __init__(self, config: ConcurrencyLimitConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.table = context.stores.in_flight()
        self.limit = config.limit
        self.key = KeyMaker(f"cc|{context.scope}", config.by, config.trusted_proxies)
        self.waiters = (
            Waiters(self.table, config.limit, config.queue, config.queue_timeout)
            if config.queue
            else None
        )
        self.error: type[HTTPError] = TooManyRequests if config.status == 429 else Overloaded
        self.retry_after = b"%d" % max(math.ceil(config.retry_after), 1)

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        key = self.key(request)
        waiters = self.waiters
        if waiters is None or not waiters.waiting(key):
            if self.table.enter(key, self.limit)[0]:
                request.ctx[self.name] = (self, key)
                return None
            if waiters is None:
                raise self._refusal(f"{self.limit} requests are in flight already")
        return self._queued(request, key)

    async def _queued(self, request: PluginRequest, key: bytes) -> None:
        assert self.waiters is not None
        outcome = await self.waiters.take(key)
        if outcome != "taken":
            why = "the queue is full" if outcome == "full" else "no slot came free in time"
            raise self._refusal(f"{self.limit} requests are in flight already and {why}")
        request.ctx[self.name] = (self, key)

    def _refusal(self, detail: str) -> HTTPError:
        return self.error(detail, headers=((b"Retry-After", self.retry_after),))

    def log(self, request: PluginRequest) -> None:
        # (popped: a slot is given back once, whatever runs this phase again)
        held = request.ctx.pop(self.name, None)
        if held is not None:
            plugin, key = held
            plugin.release(key)

    def release(self, key: bytes) -> None:
        """A request that held a slot for ``key`` is over."""
        self.table.leave(key)
        if self.waiters is not None:
            self.waiters.wake(key)
