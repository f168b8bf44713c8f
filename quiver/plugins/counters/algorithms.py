"""The counting rules of each window algorithm, as pure functions of a state.

A state is three numbers whose meaning depends on the algorithm:

- ``sliding_window``: (start of the current fixed window, its count, the previous
  window's count);
- ``token_bucket``: (tokens left, time they were counted, unused);
- ``fixed_window``: (start of the period, its count, unused).

Every store applies these same rules (the Redis store's script is their
transcription), so a limit means the same whatever store keeps it.
"""

from __future__ import annotations

import math

from quiver.plugins.counters import Usage, Window

State = tuple[float, float, float]


def fresh(window: Window, now: float) -> State:
    """The state of a key that has used nothing."""
    if window.algorithm == "token_bucket":
        return (float(window.capacity), now, 0.0)
    return (window.bounds(now)[0], 0.0, 0.0)


def advance(window: Window, state: State, now: float) -> State:
    """``state`` as it stands at ``now``: windows rolled over, tokens refilled."""
    first, second, _ = state
    algorithm = window.algorithm
    if algorithm == "token_bucket":
        if now <= second:
            return state
        rate = window.limit / window.seconds
        return (min(float(window.capacity), first + (now - second) * rate), now, 0.0)
    start = window.bounds(now)[0]
    if start <= first:  # the same window (or the clock stepped back: keep counting)
        return state
    if algorithm == "sliding_window" and start - first < window.seconds * 1.5:
        return (start, 0.0, second)  # the current window became the previous one
    return (start, 0.0, 0.0)


def used(window: Window, state: State, now: float) -> float:
    """Units counted against the limit at ``now`` (``state`` advanced to ``now``)."""
    first, second, third = state
    algorithm = window.algorithm
    if algorithm == "token_bucket":
        return window.capacity - first
    if algorithm == "sliding_window":
        weight = 1.0 - (now - first) / window.seconds
        return second + third * max(weight, 0.0)
    return second


def add(window: Window, state: State, units: float) -> State:
    """``state`` with ``units`` more used (fewer when negative)."""
    first, second, third = state
    if window.algorithm == "token_bucket":
        return (min(first - units, float(window.capacity)), second, third)
    return (first, max(second + units, 0.0), third)


def wait_for(window: Window, state: State, now: float, cost: int) -> float:
    """Seconds from ``now`` until ``cost`` units fit (0 when they fit now; infinite
    when they never can)."""
    capacity = window.capacity
    if cost > capacity:
        return math.inf
    first, second, third = state
    algorithm = window.algorithm
    if algorithm == "token_bucket":
        missing = cost - first
        return max(missing, 0.0) * window.seconds / window.limit
    if algorithm == "fixed_window":
        return 0.0 if second + cost <= capacity else max(window.bounds(now)[1] - now, 0.0)
    limit, seconds = window.limit, window.seconds
    if used(window, state, now) + cost <= limit:
        return 0.0
    if second + cost <= limit and third > 0:
        # the previous window's share decays linearly: find when it is small enough
        return max(first + seconds * (1.0 - (limit - second - cost) / third) - now, 0.0)
    # wait for the next window, where this window's count becomes the decaying share
    rest = first + seconds - now
    if second <= 0:
        return max(rest, 0.0)
    return max(rest + seconds * (1.0 - (limit - cost) / second), 0.0)


def usage(window: Window, state: State, now: float) -> Usage:
    """Where ``state`` stands under ``window`` at ``now``."""
    count = used(window, state, now)
    remaining = max(math.floor(window.capacity - count + 1e-9), 0)
    first, second, third = state
    if window.algorithm == "token_bucket":
        reset = (window.capacity - first) * window.seconds / window.limit
    elif window.algorithm == "fixed_window":
        reset = window.bounds(now)[1] - now if second > 0 else 0.0
    elif second > 0 or third > 0:  # the end of the current window (what clients expect)
        reset = first + window.seconds - now
    else:
        reset = 0.0
    return Usage(window.limit, remaining, max(reset, 0.0))


def expires(window: Window, state: State) -> float:
    """When ``state`` is worth nothing more than a fresh one (its slot may go)."""
    first, second, _ = state
    if window.algorithm == "token_bucket":
        return second + (window.capacity - first) * window.seconds / window.limit
    if window.algorithm == "fixed_window":
        return window.bounds(first)[1]
    return first + 2 * window.seconds
