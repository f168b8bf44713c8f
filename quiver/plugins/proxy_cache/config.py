"""The ``proxy-cache`` config: one typed model, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Size, key_error
from quiver.http.fields import TOKEN
from quiver.plugins.base import PluginConfig
from quiver.plugins.counters.redis_url import masked
from quiver.plugins.traffic.store import RedisSettings

#: statuses a cache may give heuristic freshness (RFC 9110 §15.1)
HEURISTIC_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
#: stored by default: the heuristic set, and redirects that need explicit freshness
DEFAULT_STATUSES = sorted(HEURISTIC_STATUSES | {302, 307})
#: never stored whatever the config says: partial content, 304, interim responses
NOT_UNDERSTOOD = frozenset({206, 304})


class ProxyCacheConfig(PluginConfig):
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="Where entries live: 'memory' (an LRU per worker process) or 'redis' "
        "(shared by every worker and node).",
    )
    memory_size: Size = Field(
        64 * 1024**2,
        gt=0,
        description="Most bytes of entries the memory backend keeps per worker, e.g. 64MiB; "
        "routes with the same value share one LRU.",
    )
    redis: RedisSettings | None = Field(
        None,
        description="The Redis of `backend: redis` (url, timeout, prefix: as for the "
        "limits; keys are written under prefix + 'cache:'). Redis Cluster is not "
        "supported for the cache.",
    )
    max_entry_size: Size = Field(
        1024**2,
        gt=0,
        description="Largest response body stored, e.g. 1MiB; larger ones stream through uncached.",
    )
    statuses: list[int] = Field(
        DEFAULT_STATUSES,
        min_length=1,
        description="Statuses that may be stored. Outside 200, 203, 204, 300, 301, 308, 404, "
        "405, 410, 414 and 501 a response is stored only with explicit freshness (max-age, "
        "s-maxage or Expires); 206 and 304 never.",
    )
    default_ttl: Duration = Field(
        0,
        description="Freshness given to storable responses with none of their own "
        "(no max-age, s-maxage, Expires); 0 leaves them to heuristic freshness or none.",
    )
    heuristic: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Heuristic freshness (RFC 9111 §4.2.2): this fraction of the time since "
        "Last-Modified, e.g. 0.1; 0 (the default) turns it off.",
    )
    heuristic_max: Duration = Field(
        86400, description="Cap of heuristic freshness, in seconds or e.g. 1h."
    )
    keep_stale: Duration = Field(
        300,
        description="How long entries are kept once stale, for revalidation and "
        "stale-if-error (the Redis TTL is freshness plus this).",
    )
    stale_if_error: Duration = Field(
        0,
        description="Serve a stale entry for up to this long past its freshness when the "
        "node fails (5xx or unreachable); a response's own stale-if-error wins. "
        "must-revalidate, proxy-revalidate and s-maxage forbid it.",
    )
    key_host: bool = Field(True, description="The Host header is part of the cache key.")
    key_query: list[str] | None = Field(
        None,
        description="Query parameters in the key: every one when unset (sorted by name, so "
        "their order does not matter), or only those listed; [] for none.",
    )
    key_headers: list[str] = Field(
        [], description="Request headers whose values are part of the key, e.g. [Accept-Language]."
    )
    key_consumer: bool = Field(
        False, description="Each consumer gets entries of its own (per-consumer caching)."
    )
    coalesce_timeout: Duration = Field(
        10,
        gt=0,
        description="How long requests for a key being fetched wait for that fetch before "
        "going to the node themselves.",
    )
    status_header: str = Field(
        "X-Cache-Status",
        description="Response header telling HIT, MISS, EXPIRED, STALE, BYPASS or "
        "REVALIDATED; empty to send none.",
    )

    @field_validator("key_headers")
    @classmethod
    def _header_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return names

    @field_validator("status_header")
    @classmethod
    def _status_header(cls, name: str) -> str:
        if name and not TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        return name

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, statuses: list[int]) -> list[int]:
        for status in statuses:
            if not 200 <= status <= 599 or status in NOT_UNDERSTOOD:
                raise ValueError(f"{status} cannot be stored (206, 304 and 1xx never are)")
        return statuses

    # (each rule reads several keys; its error names the key to change, at its line)
    @model_validator(mode="after")
    def _backend(self) -> ProxyCacheConfig:
        if self.backend == "redis" and self.redis is None:
            raise key_error(("backend",), "backend 'redis' needs redis: {url: ...}", self.backend)
        if self.backend == "memory" and self.redis is not None:
            message = "'redis' is set but backend is 'memory'; set backend: redis"
            raise key_error(("redis",), message, masked(self.redis.url))
        if self.redis is not None and "+cluster://" in self.redis.url:
            message = "the cache needs one Redis (or a Sentinel's master), not a Cluster"
            raise key_error(("redis", "url"), message, masked(self.redis.url))
        if self.backend == "memory" and self.max_entry_size > self.memory_size:
            # an entry that size would be stored and evicted at once, every time
            key = (
                "memory_size" if "max_entry_size" not in self.model_fields_set else "max_entry_size"
            )
            message = (
                f"max_entry_size {_size(self.max_entry_size)} is more than memory_size "
                f"{_size(self.memory_size)}: entries that large could never be kept"
            )
            raise key_error((key,), message, getattr(self, key))
        return self


def _size(count: int) -> str:
    """A byte count as it is usually written: 2MiB, 64KiB, 1500 bytes."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count % size == 0:
            return f"{count // size}{unit}"
    return f"{count} bytes"
