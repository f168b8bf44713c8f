"""The spans of time the usage pages of the portal and the console offer
(``?window=1h|24h|7d``): how long each is, the interval its charts count by, and how
the pages name it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Window = Literal["1h", "24h", "7d"]


@dataclass(frozen=True)
class WindowSpan:
    seconds: int
    bucket: Literal["minute", "hour"]  # the charts' interval
    label: str  # "the last hour", in a sentence
    short: str  # "1 hour", on a switch
    title: str  # "Last hour", in a choice

    def start(self) -> datetime:
        """When the span began, counted back from now."""
        return datetime.now(UTC) - timedelta(seconds=self.seconds)


WINDOWS: dict[Window, WindowSpan] = {
    "1h": WindowSpan(3600, "minute", "the last hour", "1 hour", "Last hour"),
    "24h": WindowSpan(86400, "hour", "the last 24 hours", "24 hours", "Last 24 hours"),
    "7d": WindowSpan(7 * 86400, "hour", "the last 7 days", "7 days", "Last 7 days"),
}
