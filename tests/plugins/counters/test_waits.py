"""The moments a store names: Retry-After of a refusal and the reset of a window
(RateLimit's ``t``) are exact for the sliding-window rule, in every store."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from quiver.plugins.counters import Verdict, Window, resolved
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.redis import RedisCounters
from quiver.plugins.traffic.headers import _seconds
from tests.plugins.counters.conftest import MakeStore

DAY = 86400.0
T0 = 1_700_006_400.0  # a midnight (UTC): windows of 1 s to 1 d start here
KEY = b"rl|route:r\x1fip:192.0.2.7"


def whole_seconds(wait: float) -> int:
    """The Retry-After (and ``t``) a wait is sent as."""
    return _seconds(wait)


def test_retry_after_is_the_first_whole_second_a_request_fits() -> None:
    """Random traffic, then a refusal: a request Retry-After seconds on is let through
    and one a second earlier is not, whatever the window, limit and clock fraction."""
    rng = random.Random(11)
    now = [0.0]
    counters = LocalCounters(clock=lambda: now[0])
    try:
        for trial in range(3000):
            window = Window(rng.choice([1, 2, 3, 5, 10, 100]), rng.choice([1.0, 60.0, 3600.0, DAY]))
            key = b"k%d" % trial
            now[0] = T0 + rng.choice([0.0, 1 / 3, rng.random() * window.seconds, 0.9999998])
            for _ in range(rng.randrange(3 * window.limit + 3)):
                now[0] += rng.choice([0.0, rng.random() * window.seconds / window.limit])
                counters.take(key, [window])
            while (refused := counters.take(key, [window])).allowed:
                pass
            retry_after = whole_seconds(refused.retry_after)
            assert retry_after <= 2 * window.seconds
            start = now[0]
            now[0] = start + retry_after - 1
            assert not counters.take(key, [window]).allowed, (window, start, retry_after)
            now[0] = start + retry_after
            assert counters.take(key, [window]).allowed, (window, start, retry_after)
    finally:
        counters.close()


@pytest.mark.parametrize(
    ("window", "first", "refused", "retry_after"),
    [
        # the one request of a day weighs on the next day until its end: no sooner can
        # the weighted count (1 * what is left of the next day) leave room for one
        (Window(1, DAY), 0.0, 33313.0, 2 * 86400 - 33313),
        (Window(1, 60.0), 10.0, 15.0, 105),
        (Window(1, 60.0), 59.0, 61.0, 59),
        (Window(3, 60.0), 31.0, 31.0, 49),  # 3 weigh 2 once 1/3 of the next minute went
        (Window(10, 1.0), 0.5, 0.5, 1),
    ],
)
def test_retry_after_of_small_limits(
    window: Window, first: float, refused: float, retry_after: int
) -> None:
    """The sliding-window estimate spreads the previous window's requests over it: a
    key that spent its limit early in a window waits until their weighted share
    leaves room, which with a limit of 1 is the end of the next window."""
    now = [T0 + first]
    counters = LocalCounters(clock=lambda: now[0])
    try:
        while counters.take(KEY, [window]).allowed:
            pass
        now[0] = T0 + refused
        verdict = counters.take(KEY, [window])
        assert not verdict.allowed
        assert whole_seconds(verdict.retry_after) == retry_after
        now[0] += retry_after - 1
        assert not counters.take(KEY, [window]).allowed
        now[0] += 1
        assert counters.take(KEY, [window]).allowed
    finally:
        counters.close()


def test_reset_of_a_spent_window_is_the_next_requests_retry_after(make_store: MakeStore) -> None:
    """The response that takes the last unit says, in its reset, when the next request
    fits: the Retry-After a refusal at that moment gets (the fast path of the local
    store, its general rule and the Redis store agree)."""
    window = Window(3, 60.0)
    now = [T0 + 31.0]

    async def run() -> tuple[list[Verdict], Verdict]:
        store = make_store(lambda: now[0])
        try:
            allowed = [await resolved(store.take(KEY, [window])) for _ in range(3)]
            return allowed, await resolved(store.take(KEY, [window]))
        finally:
            if isinstance(store, RedisCounters):
                await store.aclose()
            elif isinstance(store, LocalCounters):
                store.close()

    allowed, refused = asyncio.run(run())
    assert [verdict.allowed for verdict in allowed] == [True] * 3 and not refused.allowed
    assert [verdict.usage[0].remaining for verdict in allowed] == [2, 1, 0]
    assert refused.retry_after == pytest.approx(29 + 20)
    # the same t on every response: when the next fits once the ones left are used
    assert [verdict.usage[0].reset for verdict in allowed] == [refused.retry_after] * 3
    assert refused.usage[0].reset == refused.retry_after


@pytest.mark.parametrize(
    "window",
    [
        Window(3, 60.0),
        Window(5, 10.0),
        Window(100, 1.0),
        Window(2, DAY),
        Window(5, 10.0, "token_bucket"),
        Window(4, 60.0, "fixed_window"),
    ],
)
def test_a_client_that_spends_what_is_left_and_waits_the_reset_is_let_through(
    window: Window,
) -> None:
    rng = random.Random(3)
    now = [T0]
    counters = LocalCounters(clock=lambda: now[0])
    try:
        for trial in range(200):
            key = b"k%d" % trial
            now[0] = T0 + rng.random() * window.seconds
            for _ in range(rng.randrange(window.limit + 1)):
                now[0] += rng.random() * window.seconds / window.limit
                counters.take(key, [window])
            verdict = counters.take(key, [window])
            if not verdict.allowed:
                continue
            left, reset = verdict.usage[0].remaining, whole_seconds(verdict.usage[0].reset)
            assert all(counters.take(key, [window]).allowed for _ in range(left))
            assert not counters.take(key, [window]).allowed
            now[0] += reset
            assert counters.take(key, [window]).allowed, (window, trial, reset)
    finally:
        counters.close()


def test_the_fast_path_and_the_general_rule_give_the_same_usage() -> None:
    """``take_sliding`` (the usual case, decided in place) and ``algorithms.step``
    agree to the last bit on the units left and the reset."""
    window = Window(7, 60.0)
    rng = random.Random(5)
    now = [T0 + 12.5]
    fast = LocalCounters(clock=lambda: now[0])
    general = LocalCounters(clock=lambda: now[0])
    try:
        for _ in range(400):
            now[0] += rng.choice([0.0, 0.3, 4.1, 17.0])
            one = fast.take(KEY, [window])
            other = general._take_one(KEY, window, 1)
            assert one == other, now[0]
            assert not math.isnan(one.usage[0].reset)
    finally:
        fast.close()
        general.close()
