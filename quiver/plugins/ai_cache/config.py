"""The ``ai-cache`` config: one typed model, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Size
from quiver.http.fields import TOKEN
from quiver.plugins.base import PluginConfig
from quiver.plugins.traffic.store import RedisSettings


class AICacheConfig(PluginConfig):
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="Where answers live: 'memory' (an LRU per worker process, bounded by "
        "memory_size) or 'redis' (shared by every worker and node).",
    )
    memory_size: Size = Field(
        64 * 1024**2,
        gt=0,
        description="Most bytes of answers the memory backend keeps per worker, e.g. "
        "64MiB; routes with the same value share one LRU.",
    )
    redis: RedisSettings | None = Field(
        None,
        description="The Redis of `backend: redis` (url, timeout, prefix; keys are "
        "written under prefix + 'ai-cache:').",
    )
    ttl: Duration = Field(
        3600, gt=0, description="How long an answer is served from the cache, e.g. 1h."
    )
    max_entry_size: Size = Field(
        1024**2,
        gt=0,
        description="Largest answer stored (a streamed one counts its events), e.g. 1MiB.",
    )
    opt_in_header: str = Field(
        "X-Quiver-Cache",
        description="Request header a client sets to 'on' to have a request cached "
        "whatever its temperature, or to 'off' to bypass the cache; it is not sent on.",
    )
    per_consumer: bool = Field(
        False, description="Each consumer gets answers of its own (the consumer is in the key)."
    )
    ignored_fields: list[str] = Field(
        default_factory=lambda: ["user", "metadata"],
        description="Top-level request fields left out of the key: they label a request "
        "without changing its answer.",
    )
    status_header: str = Field(
        "X-Cache-Status",
        description="Response header telling HIT, MISS or BYPASS; empty to send none.",
    )

    @field_validator("opt_in_header")
    @classmethod
    def _opt_in(cls, name: str) -> str:
        if not TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        return name

    @field_validator("status_header")
    @classmethod
    def _status_header(cls, name: str) -> str:
        if name and not TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        return name

    @model_validator(mode="after")
    def _backend(self) -> AICacheConfig:
        if self.backend == "redis" and self.redis is None:
            raise ValueError("backend 'redis' needs redis: {url: ...}")
        if self.backend == "memory" and self.redis is not None:
            raise ValueError("'redis' is set but backend is 'memory'; set backend: redis")
        if self.redis is not None and "+cluster://" in self.redis.url:
            raise ValueError("the cache needs one Redis (or a Sentinel's master), not a Cluster")
        return self
