"""The circuit breaker's state machine, driven by an explicit clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from quiver.config.resilience import CircuitBreaker as BreakerSettings
from quiver.proxy.breaker import BreakerState, CircuitBreaker


def settings(**overrides: Any) -> BreakerSettings:
    values: dict[str, Any] = {
        "failure_rate": 0.5,
        "window": 10.0,
        "min_requests": 4,
        "open_for": 30.0,
        "half_open_probes": 2,
    }
    values.update(overrides)
    return BreakerSettings(**values)


class Changes:
    """Collects the breaker's (state, available) after each change it reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, breaker: CircuitBreaker) -> None:
        self.seen.append((breaker.state, breaker.available))


def state_of(cb: CircuitBreaker) -> BreakerState:
    """The breaker's state read afresh: a type checker keeps the value an earlier assert
    narrowed ``cb.state`` to across the calls that change it."""
    return cb.state


def breaker(**overrides: Any) -> tuple[CircuitBreaker, Changes]:
    changes = Changes()
    return CircuitBreaker(settings(**overrides), label="n1:80", on_change=changes), changes


def trip(cb: CircuitBreaker, now: float) -> None:
    for _ in range(cb.settings.min_requests):
        assert cb.admit(now)
        cb.record(False, now)
    assert state_of(cb) == "open"


def test_closed_breaker_admits_and_counts_requests() -> None:
    cb, changes = breaker()
    assert state_of(cb) == "closed" and cb.available
    assert cb.admit(0.0)
    cb.record(True, 0.0)
    cb.record(False, 1.0)
    assert cb.snapshot(1.0) == {
        "state": "closed",
        "failures": 1,
        "requests": 2,
        "opened_at": None,
        "trials": 0,
    }
    assert changes.seen == []


def test_failure_rate_opens_only_after_min_requests() -> None:
    cb, changes = breaker(min_requests=4)
    for i in range(3):
        cb.record(False, float(i))
    assert state_of(cb) == "closed", "three failures are fewer than min_requests"
    cb.record(False, 3.0)
    assert state_of(cb) == "open"
    assert cb.opened_at == 3.0
    assert cb.reopens_at == 33.0
    assert changes.seen == [("open", False)]


def test_rate_exactly_at_the_threshold_opens_and_below_does_not() -> None:
    below, _ = breaker(min_requests=4, failure_rate=0.5)
    for ok in (True, True, True, False, False):  # 2 of 5 = 0.4
        below.record(ok, 1.0)
    assert state_of(below) == "closed"

    at, _ = breaker(min_requests=4, failure_rate=0.5)
    for ok in (True, False, True):
        at.record(ok, 1.0)
    assert state_of(at) == "closed"
    at.record(False, 1.0)  # 2 of 4 = 0.5
    assert state_of(at) == "open"


def test_successes_reaching_min_requests_open_when_the_rate_is_already_high() -> None:
    cb, _ = breaker(min_requests=4, failure_rate=0.5)
    for _ in range(3):
        cb.record(False, 0.0)
    cb.record(True, 0.0)  # 3 of 4 failed
    assert state_of(cb) == "open"


@pytest.mark.parametrize(
    ("later", "state", "in_window"),
    [
        (9.0, "open", 4),  # the three early failures still count: 4 of 4
        (10.0, "closed", 1),  # they slid out: 1 of 1 is under min_requests
    ],
)
def test_failures_older_than_the_window_expire(later: float, state: str, in_window: int) -> None:
    cb, _ = breaker(window=10.0, min_requests=4, failure_rate=0.5)
    for _ in range(3):
        cb.record(False, 0.0)
    cb.record(False, later)
    assert state_of(cb) == state
    snap = cb.snapshot(later)
    assert (snap["failures"], snap["requests"]) == (in_window, in_window)


def test_the_window_slides_bucket_by_bucket() -> None:
    cb, _ = breaker(window=10.0, min_requests=100)
    for second in range(10):
        cb.record(second % 2 == 0, second + 0.5)  # one per bucket, odd seconds fail
    assert cb.snapshot(9.5) == {
        "state": "closed",
        "failures": 5,
        "requests": 10,
        "opened_at": None,
        "trials": 0,
    }
    snap = cb.snapshot(12.5)  # buckets of seconds 0, 1 and 2 are gone
    assert (snap["failures"], snap["requests"]) == (4, 7)
    snap = cb.snapshot(50.0)  # everything is gone
    assert (snap["failures"], snap["requests"]) == (0, 0)


def test_a_clock_going_back_counts_in_the_newest_bucket() -> None:
    cb, _ = breaker(min_requests=100)
    cb.record(False, 5.0)
    cb.record(False, 4.0)
    assert cb.snapshot(5.0)["failures"] == 2


def test_open_breaker_refuses_until_open_for_has_passed() -> None:
    cb, changes = breaker(open_for=30.0)
    trip(cb, 100.0)
    assert not cb.admit(100.0)
    assert not cb.admit(129.99)
    assert state_of(cb) == "open"
    assert cb.admit(130.0)
    assert state_of(cb) == "half_open"
    assert changes.seen == [("open", False), ("half_open", True)]


def test_poll_turns_an_open_breaker_half_open_without_admitting() -> None:
    cb, _ = breaker(open_for=30.0, half_open_probes=2)
    trip(cb, 0.0)
    cb.poll(29.0)
    assert state_of(cb) == "open"
    cb.poll(30.0)
    assert state_of(cb) == "half_open"
    assert cb.available
    assert cb.snapshot(30.0)["trials"] == 0


def test_half_open_lets_through_at_most_half_open_probes_trials() -> None:
    cb, changes = breaker(half_open_probes=2)
    trip(cb, 0.0)
    assert cb.admit(30.0)
    assert cb.available
    assert cb.admit(30.0)
    assert not cb.available, "both trial slots are taken"
    assert not cb.admit(30.0)
    assert cb.snapshot(30.0)["trials"] == 2
    assert changes.seen[-2:] == [("half_open", True), ("half_open", False)]


def test_a_released_trial_frees_its_slot() -> None:
    cb, changes = breaker(half_open_probes=1)
    trip(cb, 0.0)
    assert cb.admit(30.0)
    assert not cb.admit(30.0)
    cb.release()
    assert cb.available
    assert changes.seen[-1] == ("half_open", True)
    assert cb.admit(30.0)


def test_a_failed_trial_opens_again_for_a_fresh_open_for() -> None:
    cb, changes = breaker(open_for=30.0, half_open_probes=3)
    trip(cb, 0.0)
    assert cb.admit(30.0)
    assert cb.admit(30.0)
    cb.record(True, 31.0)
    cb.record(False, 32.0)
    assert state_of(cb) == "open"
    assert cb.opened_at == 32.0
    assert cb.reopens_at == 62.0
    assert not cb.admit(61.0)
    assert cb.admit(62.0)
    assert state_of(cb) == "half_open"
    assert cb.snapshot(62.0)["trials"] == 1, "the earlier trials do not carry over"
    assert [state for state, _ in changes.seen] == ["open", "half_open", "open", "half_open"]


def test_successful_trials_close_with_a_cleared_window() -> None:
    cb, changes = breaker(half_open_probes=2, min_requests=4)
    trip(cb, 0.0)
    assert cb.admit(30.0)
    assert cb.admit(30.0)
    cb.record(True, 30.5)
    assert state_of(cb) == "half_open"
    assert cb.available, "a reported trial frees its slot"
    cb.record(True, 30.6)
    assert state_of(cb) == "closed"
    assert cb.snapshot(30.6) == {
        "state": "closed",
        "failures": 0,
        "requests": 0,
        "opened_at": None,
        "trials": 0,
    }
    assert changes.seen[-1] == ("closed", True)
    # the failures that opened it are forgotten: min_requests fresh failures to open again
    for _ in range(3):
        cb.record(False, 31.0)
    assert state_of(cb) == "closed"
    cb.record(False, 31.0)
    assert state_of(cb) == "open"


def test_outcomes_of_requests_admitted_before_opening_are_ignored() -> None:
    cb, changes = breaker()
    trip(cb, 0.0)
    cb.record(True, 1.0)
    cb.record(False, 2.0)
    assert state_of(cb) == "open"
    assert cb.opened_at == 0.0
    assert len(changes.seen) == 1


def test_transitions_are_logged_with_the_node(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quiver.breaker")
    cb, _ = breaker(half_open_probes=1)
    trip(cb, 0.0)
    cb.admit(30.0)
    cb.record(True, 30.0)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "circuit breaker for n1:80 opened: 4 of 4 requests failed in 10s"),
        ("INFO", "circuit breaker for n1:80 half-open: letting trial requests through"),
        ("INFO", "circuit breaker for n1:80 closed: trials succeeded"),
    ]
