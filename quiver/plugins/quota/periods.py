"""Calendar periods in a time zone: where the day, week or month holding a moment
starts and ends, in Unix seconds.

A period starts at local midnight (of the day, of the Monday, of the first of the
month) and ends where the next one starts, so a day across a change to or from
daylight saving time lasts 23 or 25 hours, and a month as long as it is.  A
midnight that a clock change skips is the instant of the change (fold 0, PEP 495);
a midnight that a clock change repeats counts from its first occurrence.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from quiver.plugins.counters import Period

Calendar = Literal["day", "week", "month"]
CALENDAR: tuple[Calendar, ...] = ("day", "week", "month")
#: a nominal length for each (what a Window states; the period callable is the truth)
NOMINAL = {"day": 86400.0, "week": 7 * 86400.0, "month": 31 * 86400.0}


def _first_day(unit: Calendar, day: date) -> date:
    """The first day of the period of ``unit`` that holds ``day``."""
    if unit == "day":
        return day
    if unit == "week":  # ISO 8601 weeks start on Monday
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_first_day(unit: Calendar, first: date) -> date:
    """The first day of the period after the one starting on ``first``."""
    if unit == "day":
        return first + timedelta(days=1)
    if unit == "week":
        return first + timedelta(days=7)
    if first.month == 12:
        return date(first.year + 1, 1, 1)
    return date(first.year, first.month + 1, 1)


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def calendar(unit: Calendar, zone: ZoneInfo) -> Period:
    """The period function of ``unit`` in ``zone``; it remembers the last period it
    found, so most calls are two comparisons."""
    known = [0.0, 0.0]  # start, end of the last period found

    def period(now: float) -> tuple[float, float]:
        start, end = known
        if start <= now < end:
            return start, end
        first = _first_day(unit, datetime.fromtimestamp(now, zone).date())
        start = _midnight(first, zone)
        following = _next_first_day(unit, first)
        end = _midnight(following, zone)
        while end <= now:  # (a repeated midnight: the moment is in the next period)
            start, following = end, _next_first_day(unit, following)
            end = _midnight(following, zone)
        known[:] = start, end
        return start, end

    return period


def duration_name(seconds: float) -> str:
    """A rolling period's short name: 7d, 12h, 90m, 45s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
