"""The config of ``quota``."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from quiver.config.base import key_error
from quiver.config.units import parse_duration
from quiver.plugins.quota.periods import CALENDAR, Calendar
from quiver.plugins.traffic.counted import CountedConfig

MIN_ROLLING = 60.0
MAX_ROLLING = 366 * 86400.0


class QuotaConfig(CountedConfig):
    limit: int = Field(ge=1, description="Requests allowed per `period`.")
    period: Calendar | float = Field(
        description="'day', 'week' (from Monday) or 'month': calendar periods in "
        "`time_zone`, starting afresh at local midnight; or a duration such as 7d, 30d "
        "or 12h (from 1m to 366d): a rolling period, the requests of the last so long."
    )
    time_zone: str = Field(
        "UTC",
        description="The IANA time zone whose midnights start calendar periods, e.g. "
        "Europe/Paris (days across a daylight-saving change last 23 or 25 hours).",
    )

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        if value in CALENDAR:
            return value
        if isinstance(value, bool):  # (a bool is an int to Python, not to a reader)
            raise ValueError("use day, week, month or a duration such as 7d")
        if isinstance(value, str) and value.strip().isalpha():
            raise ValueError(f"{value!r}: use day, week, month or a duration such as 7d")
        seconds = parse_duration(value)
        if not isinstance(seconds, (int, float)) or not MIN_ROLLING <= seconds <= MAX_ROLLING:
            raise ValueError(f"{value!r}: a rolling period goes from 1m to 366d")
        return float(seconds)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Paris "
                "(a system without a time zone database needs the tzdata package)"
            ) from None
        return value

    @model_validator(mode="after")
    def _zone_for_calendar(self) -> QuotaConfig:
        if self.rolling is not None and "time_zone" in self.model_fields_set:
            message = (
                f"time_zone {self.time_zone}: time zones apply to calendar periods "
                "(day, week, month) only, not to a rolling period"
            )
            raise key_error(("time_zone",), message, self.time_zone)
        return self

    @property
    def rolling(self) -> float | None:
        """The rolling period in seconds, or None for a calendar period."""
        return self.period if isinstance(self.period, float) else None
