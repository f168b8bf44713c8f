"""Every counter store reaches the same verdicts: one table of scenarios run through
the local store and the Redis store, and long random sequences run through both
side by side, verdicts compared to the last bit."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from quiver.plugins.counters import Counters, Verdict, Window, resolved
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.redis import RedisCounters
from tests.plugins.counters.conftest import MakeStore

T0 = 1_700_000_040.0  # a multiple of 60: windows of 1, 10 and 60 s start here
KEY = b"rl|route:r\x1fconsumer:alice"


def months(now: float) -> tuple[float, float]:
    """Calendar months in UTC (a quota's period)."""
    day = datetime.fromtimestamp(now, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


END_OF_JANUARY = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Take:
    at: float
    allowed: bool
    remaining: tuple[int, ...] | None = None
    retry_after: float | None = None
    cost: int = 1


@dataclass(frozen=True)
class Settle:
    at: float
    delta: int


Step = Take | Settle

SCENARIOS: dict[str, tuple[float, tuple[Window, ...], list[Step]]] = {
    "sliding window: edges and the decaying previous window": (
        T0,
        (Window(3, 10),),
        [
            Take(0, True, (2,)),
            Take(0, True, (1,)),
            Take(9.99, True, (0,)),
            Take(9.99, False, (0,), 10 + 10 * (1 - 2 / 3) - 9.99),
            Take(10, False, (0,), 10 * (1 - 2 / 3)),  # the previous window still weighs 3
            Take(13.34, True, (0,)),  # weighs 1.998 now
            Take(13.34, False, (0,)),
            Take(30, True, (2,)),  # two windows on: forgotten
            Take(30, True, (1,)),
            Take(30, True, (0,)),
            Take(30, False, (0,)),
        ],
    ),
    "token bucket: burst, refill, never above the burst": (
        T0,
        (Window(10, 10, "token_bucket", burst=3),),
        [
            Take(0, True, (2,)),
            Take(0, True, (1,)),
            Take(0, True, (0,)),
            Take(0, False, (0,), 1.0),
            Take(0.5, False, (0,), 0.5),
            Take(1, True, (0,)),
            Take(1, False, (0,), 1.0),
            Take(100, True, (2,)),
            Take(100, True, (1,)),
            Take(100, True, (0,)),
            Take(100, False, (0,)),
            Take(100, False, (0,), math.inf, cost=4),  # more than the bucket holds
            Take(200, True, (0,), cost=3),
        ],
    ),
    "several windows: all or nothing": (
        T0,
        (Window(2, 1), Window(3, 60)),
        [
            Take(0, True, (1, 2)),
            Take(0, True, (0, 1)),
            Take(0, False, (0, 1), 1 + 1 * (1 - 1 / 2)),  # refused: the long one not counted
            Take(2, True, (1, 0)),
            Take(4, False, (2, 0), 56 + 60 * (1 - 2 / 3)),  # the short one is not counted
            Take(4, False, (2, 0)),
        ],
    ),
    "settle: corrections up and down, never below zero": (
        T0,
        (Window(5, 60, "fixed_window"),),
        [
            Take(0, True, (2,), cost=3),
            Settle(0, 2),
            Take(0, False, (0,), 60),
            Settle(1, -3),
            Take(1, True, (0,), cost=3),
            Settle(2, -10),
            Take(2, True, (0,), cost=5),
            Take(2, False, (0,), 58),
            Take(60, True, (4,)),
        ],
    ),
    "settle on a token bucket: never more tokens than the bucket holds": (
        T0,
        (Window(10, 10, "token_bucket"),),
        [
            Take(0, True, (6,), cost=4),
            Settle(0, -2),
            Take(0, True, (0,), cost=8),
            Settle(0, -20),
            Take(0, True, (0,), cost=10),
            Take(0, False, (0,), 1.0),
        ],
    ),
    "fixed windows of a calendar period": (
        END_OF_JANUARY,
        (Window(3, 31 * 86400, "fixed_window", period=months),),
        [
            Take(0, True, (2,)),
            Take(0, True, (1,)),
            Take(0, True, (0,)),
            Take(0, False, (0,), 1.0),
            Take(0.5, False, (0,), 0.5),
            Take(1, True, (2,)),  # 1 February
            Take(1, True, (0,), cost=2),
            Take(1, False, (0,), 28 * 86400),
        ],
    ),
}


async def close(store: Counters) -> None:
    if isinstance(store, RedisCounters):
        await store.aclose()
    elif isinstance(store, LocalCounters):
        store.close()


async def settle(store: Counters, key: bytes, windows: tuple[Window, ...], delta: int) -> None:
    pending = store.settle(key, windows, delta)
    if pending is not None:
        await pending


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(make_store: MakeStore, name: str) -> None:
    origin, windows, steps = SCENARIOS[name]
    now = [origin]

    async def run() -> None:
        store = make_store(lambda: now[0])
        try:
            for index, step in enumerate(steps):
                now[0] = origin + step.at
                if isinstance(step, Settle):
                    await settle(store, KEY, windows, step.delta)
                    continue
                verdict = await resolved(store.take(KEY, windows, step.cost))
                where = f"step {index}: {step}"
                assert verdict.allowed is step.allowed, (where, verdict)
                if step.remaining is not None:
                    assert tuple(u.remaining for u in verdict.usage) == step.remaining, where
                if step.retry_after is not None:
                    assert verdict.retry_after == pytest.approx(step.retry_after), where
                if step.allowed:
                    assert verdict.retry_after == 0.0
        finally:
            await close(store)

    asyncio.run(run())


WINDOW_SETS = [
    (Window(5, 10), Window(12, 60)),
    (Window(4, 3, "token_bucket", burst=6), Window(30, 60, "token_bucket")),
    (Window(5, 10, "fixed_window"), Window(9, 60, "fixed_window")),
    (Window(3, 1), Window(7, 10, "token_bucket"), Window(20, 86400, "fixed_window", period=months)),
]


@pytest.mark.parametrize("windows", WINDOW_SETS, ids=["sliding", "token", "fixed", "mixed"])
def test_random_sequences_get_identical_verdicts(
    redis_prefix: tuple[str, str], windows: tuple[Window, ...]
) -> None:
    """Steps of every size, settles, a clock that sometimes steps back (a node whose
    clock lags another's): the Redis store's verdicts equal the local store's."""
    url, prefix = redis_prefix
    now = [T0 + 0.125]
    rng = random.Random(7)
    local = LocalCounters(clock=lambda: now[0])
    remote = RedisCounters(url, timeout=2.0, prefix=prefix, clock=lambda: now[0])
    steps = [0.0, 0.0, 0.01, 0.1, 0.37, 1.0, 1.5, 2.9, 10.0, 31.0, -0.05, -1.2]

    async def run() -> list[Verdict]:
        verdicts = []
        try:
            for _ in range(1500):
                now[0] += rng.choice(steps)
                key = b"k%d" % rng.randrange(3)
                if rng.random() < 0.1:
                    delta = rng.choice([-3, -1, 1, 2])
                    local.settle(key, windows, delta)
                    await settle(remote, key, windows, delta)
                    continue
                cost = rng.choice([1, 1, 1, 2, 5])
                expected = local.take(key, windows, cost)
                got = await resolved(remote.take(key, windows, cost))
                assert got == expected, (now[0], key, cost)
                verdicts.append(got)
        finally:
            local.close()
            await remote.aclose()
        return verdicts

    verdicts = asyncio.run(run())
    assert any(v.allowed for v in verdicts) and any(not v.allowed for v in verdicts)
