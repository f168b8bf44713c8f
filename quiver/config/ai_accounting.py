"""The accounting keys of the ``ai`` section: ``budgets``, ``limits`` and ``counters``.

The AI config model (:mod:`quiver.config.ai`) takes these fields by inheriting
:class:`AccountingSettings`, so the section reads::

    ai:
      budgets:
        - {consumer: alice, tokens: 100000, period: day}
        - {team: data, cost: 100, period: month, time_zone: Europe/Paris}
      limits:
        - {consumer: "*", tpm: 10000, rpm: 60}
      counters: {backend: local}

What they mean at run time (reserve before the call, settle after) is in
:mod:`quiver.ai.accounting`.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict

BudgetPeriod = Literal["day", "week", "month", "total"]
_WHO = r"^(\*|[A-Za-z0-9][A-Za-z0-9._@-]{0,127})$"
_REDIS_SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)


class Budget(Strict):
    """At most so many tokens, or so many US dollars, per period, for one consumer or
    one team (``*``: for each of them separately)."""

    consumer: str | None = Field(
        None,
        pattern=_WHO,
        description='The consumer this budget is for, or "*" for every consumer, each '
        'with a budget of its own (an entry naming a consumer replaces the "*" one for '
        "it). Give `consumer` or `team`, not both.",
    )
    team: str | None = Field(
        None,
        pattern=_WHO,
        description="The team (consumers' `team`) this budget is for, shared by its "
        'consumers, or "*" for every team, each with its own.',
    )
    tokens: int | None = Field(
        None, ge=1, description="Tokens (prompt and completion) allowed per period."
    )
    cost: float | None = Field(
        None,
        gt=0,
        description="US dollars allowed per period, at the models' prices (prices.json "
        "shipped with Quiver, or `ai.models[].price`). Give `tokens` or `cost`, not both.",
    )
    period: BudgetPeriod = Field(
        "month",
        description="'day', 'week' (from Monday) or 'month': calendar periods starting "
        "afresh at midnight in `time_zone`; 'total': never renewed.",
    )
    time_zone: str = Field(
        "UTC",
        description="The IANA time zone whose midnights start the periods, e.g. Europe/Paris.",
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Paris"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> Budget:
        if (self.consumer is None) == (self.team is None):
            raise ValueError("a budget names either `consumer` or `team` (one of them)")
        if (self.tokens is None) == (self.cost is None):
            raise ValueError("a budget gives either `tokens` or `cost` (one of them)")
        if self.period == "total" and "time_zone" in self.model_fields_set:
            raise ValueError("time_zone applies to day, week and month budgets only")
        return self


class Limit(Strict):
    """Tokens per minute and requests per minute for one consumer or team."""

    consumer: str | None = Field(
        None,
        pattern=_WHO,
        description='The consumer limited, or "*" for every consumer, each on its own '
        "(the default when `team` is not given; an entry naming a consumer replaces the "
        '"*" one for it). Calls without a consumer count together.',
    )
    team: str | None = Field(
        None,
        pattern=_WHO,
        description='The team limited (its consumers together), or "*" for every team.',
    )
    tpm: int = Field(
        0,
        ge=0,
        description="Tokens per minute (prompt and completion; 0: no limit): a bucket of "
        "`tpm` tokens refilled at tpm/60 per second.",
    )
    rpm: int = Field(
        0,
        ge=0,
        description="Requests per minute (0: no limit): a bucket of `rpm` requests "
        "refilled at rpm/60 per second.",
    )

    @model_validator(mode="after")
    def _who(self) -> Limit:
        if self.consumer is not None and self.team is not None:
            raise ValueError("a limit names either `consumer` or `team`, not both")
        if not self.tpm and not self.rpm:
            raise ValueError("a limit sets `tpm`, `rpm` or both")
        return self

    @property
    def scope(self) -> tuple[Literal["consumer", "team"], str]:
        """Whom it limits: ("consumer" | "team", a name or "*")."""
        if self.team is not None:
            return "team", self.team
        return "consumer", self.consumer or "*"


class AICounters(Strict):
    """Where AI budgets and limits are counted."""

    backend: Literal["local", "redis"] = Field(
        "local",
        description="'local': exact across the workers of this node, kept in the run "
        "directory across restarts; 'redis': exact across every node sharing the Redis "
        "at `url`.",
    )
    url: str | None = Field(
        None,
        description="The Redis of `backend: redis`: redis://[user:password@]host:port/db, "
        "rediss://, unix://, redis+cluster:// or redis+sentinel:// (as for the "
        "rate-limit plugin).",
    )
    timeout: Duration = Field(
        0.25, description="How long a call waits for Redis before `on_store_error` decides."
    )
    prefix: str = Field("quiver:ai:", description="Prefix of every Redis key written.")
    on_store_error: Literal["allow", "deny"] = Field(
        "deny",
        description="When the store cannot answer: 'deny' refuses the call with 503 "
        "(a budget is money), 'allow' lets it through uncounted.",
    )

    @model_validator(mode="after")
    def _url(self) -> AICounters:
        if self.backend == "redis":
            if self.url is None:
                raise ValueError("backend 'redis' needs a `url`")
            if not self.url.startswith(_REDIS_SCHEMES):
                schemes = ", ".join(scheme.removesuffix("//") for scheme in _REDIS_SCHEMES)
                raise ValueError(f"url must start with one of {schemes}")
        elif self.url is not None:
            raise ValueError("`url` is set but backend is 'local'; set backend: redis")
        return self


class AccountingSettings(Strict):
    """The accounting fields of the ``ai`` section (the AI config inherits them)."""

    budgets: list[Budget] = Field(
        default_factory=list,
        description="Token or cost budgets per consumer or team and period; a call is "
        "refused with 429 when what it may use no longer fits. What a call may use is "
        "reserved before it goes out and corrected to its real usage after, so "
        "concurrent calls never overshoot a budget.",
    )
    limits: list[Limit] = Field(
        default_factory=list,
        description="Tokens-per-minute and requests-per-minute limits per consumer or "
        "team, reserved and settled like budgets.",
    )
    counters: AICounters = Field(
        default_factory=AICounters,
        description="Where budgets and limits are counted (local or Redis).",
    )
