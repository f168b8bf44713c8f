"""Calendar periods of the quota plugin: local midnights, months, clock changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from quiver.plugins.quota.periods import Calendar, calendar, duration_name

HOUR = 3600.0


def at(text: str) -> float:
    """Unix seconds of an ISO time in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("unit", "zone", "moment", "start", "end"),
    [
        ("day", "UTC", "2026-05-04 13:00", "2026-05-04 00:00", "2026-05-05 00:00"),
        # Paris is UTC+1 in winter, UTC+2 in summer
        ("day", "Europe/Paris", "2026-01-10 23:30", "2026-01-10 23:00", "2026-01-11 23:00"),
        ("day", "Europe/Paris", "2026-03-29 12:00", "2026-03-28 23:00", "2026-03-29 22:00"),
        ("day", "Europe/Paris", "2026-10-25 12:00", "2026-10-24 22:00", "2026-10-25 23:00"),
        # Havana skips its midnight in March (00:00 -> 01:00) and repeats an hour in November
        ("day", "America/Havana", "2024-03-10 12:00", "2024-03-10 05:00", "2024-03-11 04:00"),
        ("day", "America/Havana", "2024-11-03 12:00", "2024-11-03 04:00", "2024-11-04 05:00"),
        ("week", "UTC", "2026-05-07 08:00", "2026-05-04 00:00", "2026-05-11 00:00"),
        ("month", "UTC", "2026-02-14 00:00", "2026-02-01 00:00", "2026-03-01 00:00"),
        ("month", "UTC", "2028-02-29 23:59", "2028-02-01 00:00", "2028-03-01 00:00"),
        ("month", "UTC", "2026-12-31 23:59", "2026-12-01 00:00", "2027-01-01 00:00"),
        ("month", "Europe/Paris", "2026-01-31 23:30", "2026-01-31 23:00", "2026-02-28 23:00"),
        ("month", "Europe/Paris", "2026-03-15 00:00", "2026-02-28 23:00", "2026-03-31 22:00"),
        ("month", "Asia/Tokyo", "2026-06-30 16:00", "2026-06-30 15:00", "2026-07-31 15:00"),
    ],
)
def test_a_period_runs_from_local_midnight_to_the_next_one(
    unit: Calendar, zone: str, moment: str, start: str, end: str
) -> None:
    found = calendar(unit, ZoneInfo(zone))(at(moment))
    assert (utc(found[0]), utc(found[1])) == (start, end)


def test_days_across_clock_changes_last_23_and_25_hours() -> None:
    day = calendar("day", ZoneInfo("Europe/Paris"))
    spring, autumn = day(at("2026-03-29 12:00")), day(at("2026-10-25 12:00"))
    assert (spring[1] - spring[0], autumn[1] - autumn[0]) == (23 * HOUR, 25 * HOUR)


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Paris", "America/Havana", "America/Santiago", "Australia/Lord_Howe"]
)
@pytest.mark.parametrize("unit", ["day", "week", "month"])
def test_periods_hold_every_moment_and_follow_each_other_without_gap(
    unit: Calendar, zone: str
) -> None:
    period = calendar(unit, ZoneInfo(zone))
    moment = at("2024-01-01 00:00")
    current = period(moment)
    while moment < at("2025-01-01 00:00"):
        found = period(moment)
        assert found[0] <= moment < found[1]
        if found != current:
            assert found[0] == current[1]  # a new period begins where the last one ended
            current = found
        moment += 1800.0  # (Lord Howe changes by half an hour)


def test_a_period_found_again_is_the_same() -> None:
    period = calendar("month", ZoneInfo("Europe/Paris"))
    first = period(at("2026-05-10 10:00"))
    assert period(at("2026-05-20 10:00")) == first
    assert period(at("2026-04-20 10:00")) != first  # a clock set back finds its own period


@pytest.mark.parametrize(
    ("seconds", "name"),
    [(7 * 86400, "7d"), (86400, "1d"), (12 * HOUR, "12h"), (90 * 60, "90m"), (61, "61s")],
)
def test_rolling_periods_are_named_by_their_length(seconds: float, name: str) -> None:
    assert duration_name(seconds) == name
