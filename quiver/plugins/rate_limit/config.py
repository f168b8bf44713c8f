"""The config of ``rate-limit``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator, model_validator

from quiver.config.base import Duration, Strict, key_error
from quiver.plugins.traffic.counted import CountedConfig

MIN_WINDOW = 1.0
MAX_WINDOW = 86400.0


def _window(value: Any, handler: ValidatorFunctionWrapHandler) -> float:
    """A window of whole seconds from 1s to 1d; errors show it as written."""
    seconds: float = handler(value)
    written = value if isinstance(value, str) else f"{seconds:g}"
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise ValueError(f"window {written}: windows go from 1s to 1d")
    if seconds != int(seconds):
        # (RateLimit-Policy's w is whole seconds: a client must be told the window)
        raise ValueError(f"window {written}: a window is a whole number of seconds")
    return seconds


WindowSeconds = Annotated[Duration, WrapValidator(_window)]


class LimitSpec(Strict):
    limit: int = Field(ge=1, description="Requests allowed per window.")
    window: WindowSeconds = Field(
        description="The window: whole seconds, or a duration such as 1s, 10m, 1h or 1d "
        "(from one second to one day)."
    )
    burst: int | None = Field(
        None,
        ge=1,
        description="token_bucket only: the bucket's size, the most requests let "
        "through at once after a quiet spell (default: limit).",
    )


class RateLimitConfig(CountedConfig):
    limit: int | None = Field(
        None, ge=1, description="Requests allowed per `window` (the short form of `limits`)."
    )
    window: WindowSeconds | None = Field(
        None,
        description="The window of `limit`: whole seconds, or a duration such as 1s, 1m, 1h, 1d.",
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

    # (each rule reads several keys; its error names the key to change, at its line)
    @model_validator(mode="after")
    def _one_form(self) -> RateLimitConfig:
        short = self.limit is not None or self.window is not None
        if short and self.limits:
            raise key_error(
                ("limits",), "give either limit and window, or limits, not both", self.limits
            )
        if self.limit is None and self.window is not None:
            raise key_error(("window",), "limit and window go together", self.window)
        if self.window is None and self.limit is not None:
            raise key_error(("limit",), "limit and window go together", self.limit)
        if not short and not self.limits:
            raise ValueError("set limit and window, or limits")
        if self.burst is not None and self.limits:
            raise key_error(("burst",), "with limits, give burst in each limit", self.burst)
        token_bucket = self.algorithm == "token_bucket"
        if self.burst is not None and not token_bucket:
            raise key_error(("burst",), "burst applies to algorithm token_bucket only", self.burst)
        seen: dict[float, int] = {}
        for index, spec in enumerate(self.limits):
            if spec.burst is not None and not token_bucket:
                message = "burst applies to algorithm token_bucket only"
                raise key_error(("limits", index, "burst"), message, spec.burst)
            if spec.window in seen:
                message = f"the same window as limits[{seen[spec.window]}]; keep the lower limit"
                raise key_error(("limits", index, "window"), message, spec.window)
            seen[spec.window] = index
        return self

    def specs(self) -> list[LimitSpec]:
        """Every limit, the short form included."""
        if self.limit is not None and self.window is not None:
            return [LimitSpec(limit=self.limit, window=self.window, burst=self.burst)]
        return list(self.limits)
