"""The config of ``concurrency-limit``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, key_error
from quiver.plugins.base import PluginConfig
from quiver.plugins.ip_restriction import CIDR
from quiver.plugins.traffic.keys import By

MAX_LIMIT = 65535  # (the in-flight table counts in 16 bits per worker)


class ConcurrencyLimitConfig(PluginConfig):
    limit: int = Field(
        ge=1,
        le=MAX_LIMIT,
        description="Requests in flight at once for each key, on the whole node; a "
        "request counts from its access phase until its response is sent (or it "
        "fails, or is abandoned by its client); an upgrade the node accepts counts "
        "until its tunnel closes, so this also limits open WebSocket connections.",
    )
    by: By = Field(
        ["route"],
        description="What shares the limit: route (the default: every request where "
        "the plugin is attached; globally, the whole node), consumer, credential, ip, "
        "path or header:<name>, or a list of them. A request without it is counted by "
        "its client address.",
    )
    queue: int = Field(
        0,
        ge=0,
        le=MAX_LIMIT,
        description="Requests per key that may wait for a slot on the node when "
        "`limit` are in flight (0: refuse at once).",
    )
    queue_timeout: Duration = Field(
        5.0,
        description="How long a queued request waits for a slot before it is refused.",
    )
    status: Literal[429, 503] = Field(
        429,
        description="The status of a refusal: 429 (Too Many Requests, the client's "
        "share is used) or 503 (Service Unavailable, the service is saturated).",
    )
    retry_after: Duration = Field(
        1.0, description="The Retry-After of a refusal, in seconds (at least 1)."
    )
    trusted_proxies: list[CIDR] = Field(
        default_factory=list,
        description="Proxies in front of the gateway whose X-Forwarded-For names the "
        "client, for `by: ip`.",
    )

    @model_validator(mode="after")
    def _queue_settings(self) -> ConcurrencyLimitConfig:
        if "queue_timeout" in self.model_fields_set and not self.queue:
            message = "queue_timeout applies with a queue; set queue: N"
            raise key_error(("queue_timeout",), message, self.queue_timeout)
        if self.queue and self.queue_timeout <= 0:
            raise key_error(("queue_timeout",), "queue_timeout must be above 0", self.queue_timeout)
        return self

    @field_validator("retry_after")
    @classmethod
    def _whole_second_at_least(cls, seconds: float) -> float:
        if seconds < 1:
            # (Retry-After is whole seconds; 0 would tell clients to retry at once)
            raise ValueError(f"retry_after {seconds:g}s: at least 1 second")
        return seconds
