"""Which counter store a traffic-control plugin uses, and what happens when it fails.

``store: local`` (the default) counts in the node's shared tables; ``store: redis``
counts in Redis, shared by every node pointing at it.  When Redis cannot answer in
time, ``on_store_error`` decides: ``allow`` lets the request through uncounted,
``deny`` refuses it with 503.  Either way the failure is logged at most once per
``LOG_INTERVAL`` per plugin (with how many requests it touched since), and once
more when the store answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict, key_error
from quiver.errors import LimitUnavailable
from quiver.plugins.base import PluginConfig, PluginContext
from quiver.plugins.counters import Counters, redis_url

log = logging.getLogger("quiver.plugins.traffic")

LOG_INTERVAL = 10.0
_REDIS_SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)


class RedisSettings(Strict):
    url: str = Field(
        description="Where Redis is: redis://[user:password@]host:port/db, rediss:// for "
        "TLS, unix:///path.sock, redis+cluster://host:port (Redis Cluster; more seed nodes "
        "comma-separated), or redis+sentinel://host:port[,host:port]/service_name[/db] "
        "(the master that Sentinel names). ${ENV} substitution keeps a password out of "
        "the file."
    )
    timeout: Duration = Field(
        0.25,
        description="How long a request waits for Redis before on_store_error decides.",
    )
    prefix: str = Field("quiver:", description="Prefix of every Redis key written.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not url.startswith(_REDIS_SCHEMES):
            schemes = ", ".join(scheme.removesuffix("//") for scheme in _REDIS_SCHEMES)
            raise ValueError(f"url must start with one of {schemes}")
        redis_url.parse(url)  # the message shows the URL without its password
        return url


class StoreConfig(PluginConfig):
    """The store settings every traffic-control plugin with counters has."""

    store: Literal["local", "redis"] = Field(
        "local",
        description="Where counts are kept: 'local' (exact across the workers of this "
        "node, no Redis needed) or 'redis' (exact across every node sharing the Redis "
        "set in `redis`).",
    )
    redis: RedisSettings | None = Field(None, description="The Redis of `store: redis`.")
    on_store_error: Literal["allow", "deny"] = Field(
        "allow",
        description="When the store cannot answer: 'allow' lets requests through "
        "uncounted, 'deny' refuses them with 503. Logged at most every 10 seconds.",
    )

    @model_validator(mode="after")
    def _redis_given(self) -> StoreConfig:
        if self.store == "redis" and self.redis is None:
            raise key_error(("store",), "store 'redis' needs redis: {url: ...}", self.store)
        if self.store == "local" and self.redis is not None:
            message = "'redis' is set but store is 'local'; set store: redis"
            raise key_error(("redis",), message, redis_url.masked(self.redis.url))
        return self


def counters_for(config: StoreConfig, context: PluginContext, *, kept: bool = False) -> Counters:
    """The store ``config`` names; ``kept``: the local table kept across restarts
    (quotas) instead of the one for rate limits."""
    if config.redis is not None:
        redis = config.redis
        return context.stores.redis_counters(redis.url, timeout=redis.timeout, prefix=redis.prefix)
    return context.stores.quotas() if kept else context.stores.counters()


class StoreTrouble:
    """Applies ``on_store_error`` and keeps the log of store failures quiet."""

    def __init__(
        self, plugin: str, policy: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plugin = plugin
        self.deny = policy == "deny"
        self.clock = clock
        self.failing = False
        self.unlogged = 0
        self.logged_at = -LOG_INTERVAL

    def failed(self, exc: BaseException) -> None:
        """The store failed for a request: log (now and then), and refuse it when the
        policy is 'deny' (else the caller lets it through)."""
        now = self.clock()
        self.failing = True
        self.unlogged += 1
        if now - self.logged_at >= LOG_INTERVAL:
            action = "refused" if self.deny else "let through uncounted"
            log.warning(
                "%s: counter store unavailable (%s); %d request(s) %s",
                self.plugin,
                exc,
                self.unlogged,
                action,
            )
            self.logged_at, self.unlogged = now, 0
        if self.deny:
            raise LimitUnavailable(
                "the limit could not be checked; try again shortly",
                headers=((b"Retry-After", b"1"),),
            )

    def answered(self) -> None:
        """The store answered again after failing."""
        self.failing = False
        log.warning("%s: counter store answers again; limits apply", self.plugin)
