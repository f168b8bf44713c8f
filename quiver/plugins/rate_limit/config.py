"""The config of ``rate-limit``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quiver.config.base import Duration, Strict
from quiver.plugins.ip_restriction import CIDR
from quiver.plugins.traffic.keys import By
from quiver.plugins.traffic.store import StoreConfig

MIN_WINDOW = 1.0
MAX_WINDOW = 86400.0


class LimitSpec(Strict):
    limit: int = Field(ge=1, description="Requests allowed per window.")
    window: Duration = Field(
        description="The window: seconds, or a duration such as 1s, 10m, 1h or 1d "
        "(from one second to one day)."
    )
    burst: int | None = Field(
        None,
        ge=1,
        description="token_bucket only: the bucket's size, the most requests let "
        "through at once after a quiet spell (default: limit).",
    )


class RateLimitConfig(StoreConfig):
    limit: int | None = Field(
        None, ge=1, description="Requests allowed per `window` (the short form of `limits`)."
    )
    window: Duration | None = Field(
        None, description="The window of `limit`: seconds, or a duration such as 1s, 1m, 1h, 1d."
    )
    burst: int | None = Field(
        None, ge=1, description="token_bucket only: the bucket size of `limit` (default: limit)."
    )
    limits: list[LimitSpec] = Field(
        default_factory=list,
        description="Several limits at once, e.g. [{limit: 10, window: 1s}, {limit: 1000, "
        "window: 1h}]: a request is let through only when every one of them allows it, "
        "and is then counted under all of them.",
    )
    algorithm: Literal["sliding_window", "token_bucket"] = Field(
        "sliding_window",
        description="sliding_window: the count of the current window plus the previous "
        "window's count weighted by how much of it still overlaps the last `window` "
        "seconds (no burst at window edges); token_bucket: a bucket of `burst` tokens "
        "refilled at limit/window per second.",
    )
    by: By | list[By] = Field(
        "consumer",
        description="What is counted: consumer, credential, ip, route, path or "
        "header:<name>, or a list of them counted together. A request without it "
        "(no consumer, no such header) is counted by its client address.",
    )
    trusted_proxies: list[CIDR] = Field(
        default_factory=list,
        description="Proxies in front of the gateway whose X-Forwarded-For names the "
        "client, for `by: ip`.",
    )
    headers: bool = Field(
        True,
        description="Add RateLimit-Policy and RateLimit fields to every response, not "
        "only to refusals.",
    )
    legacy_headers: bool = Field(
        False,
        description="Also send X-RateLimit-Limit, X-RateLimit-Remaining and "
        "X-RateLimit-Reset (seconds until reset) for clients that read those.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> RateLimitConfig:
        short = self.limit is not None or self.window is not None
        if short and self.limits:
            raise ValueError("give either limit and window, or limits, not both")
        if short and (self.limit is None or self.window is None):
            raise ValueError("limit and window go together")
        if not short and not self.limits:
            raise ValueError("set limit and window, or limits")
        if self.burst is not None and self.limits:
            raise ValueError("with limits, give burst in each limit")
        for spec in self.specs():
            if not MIN_WINDOW <= spec.window <= MAX_WINDOW:
                raise ValueError(f"window {spec.window:g}s: windows go from 1s to 1d")
            if spec.burst is not None and self.algorithm != "token_bucket":
                raise ValueError("burst applies to algorithm token_bucket only")
        windows = [spec.window for spec in self.specs()]
        if len(set(windows)) != len(windows):
            raise ValueError("two limits have the same window; keep the lower one")
        return self

    def specs(self) -> list[LimitSpec]:
        """Every limit, the short form included."""
        if self.limit is not None and self.window is not None:
            return [LimitSpec(limit=self.limit, window=self.window, burst=self.burst)]
        return list(self.limits)
