"""The counting rules of each window algorithm, as pure functions of a state.

A state is three numbers whose meaning depends on the algorithm:

- ``sliding_window``: (start of the current fixed window, its count, the previous
  window's count);
- ``token_bucket``: (tokens left, time they were counted, unused);
- ``fixed_window``: (start of the period, its count, unused).

``step`` brings a state to ``now`` and, when ``cost`` more units fit, takes them;
``add`` counts units without a check (a correction).  Every store applies these
same rules (the Redis store's script is their transcription), so a limit means the
same whatever store keeps it.  They run
on every request, hence one function call per window with the arithmetic inline.
"""

from __future__ import annotations

import math

from quiver.plugins.counters import Usage, Window

State = tuple[float, float, float]
Step = tuple[State, float, int, float]
"""(the state at ``now`` with ``cost`` taken when it fits, seconds until ``cost``
fits (0: it did; inf: never), units left, seconds until the window resets), the
last two after the take when it fits, as things stand when it does not.

"Resets" means: the moment one more unit fits once the units left are taken, given
no other traffic.  With none left, it is the wait of a request of cost 1 at ``now``
(a refusal's Retry-After), so a client told ``r=0;t=...`` that waits ``t`` seconds
is let through; with some left, a client that spends them now and then waits ``t``
is too.  Every response says the same ``t`` until time moves on."""

_INF = math.inf
#: a sliding window lets ``cost`` through while ``used + cost <= limit * ROOM``, and
#: its waits are the moments that holds: the billionth of slack puts a moment that
#: falls on a whole second (Retry-After is whole seconds) a little before it, never
#: a rounding error after it, so a client that waits as told is let through
ROOM = 1.000000001
# (waits are computed from the time elapsed in the window, not from Unix times:
# ``start + x - now`` would lose what a double cannot hold beside 1.7e9, 2.4e-7 s)
SOONEST = 1e-9  # the wait of a refusal that rounding would put at now (0: taken)


def fresh(window: Window, now: float) -> State:
    """The state of a key that has used nothing."""
    if window.algorithm == "token_bucket":
        return (float(window.capacity), now, 0.0)
    return (window.bounds(now)[0], 0.0, 0.0)


def step(window: Window, state: State, now: float, cost: int) -> Step:
    """``state`` brought to ``now``, and what it allows (see :data:`Step`)."""
    algorithm = window.algorithm
    if algorithm == "sliding_window":
        return _sliding(window, state, now, cost)
    if algorithm == "token_bucket":
        return _bucket(window, state, now, cost)
    return _fixed(window, state, now, cost)


def _sliding(window: Window, state: State, now: float, cost: int) -> Step:
    start, count, previous = state
    seconds = window.seconds
    limit = window.limit
    current = math.floor(now / seconds) * seconds
    if current > start:  # a later window: this one's count becomes the previous one's
        if current - start < seconds * 1.5:
            start, count, previous = current, 0.0, count
        else:
            start, count, previous = current, 0.0, 0.0
    # (a clock that stepped back keeps counting in the window it had reached)
    weight = 1.0 - (now - start) / seconds
    share = previous if weight > 0.0 else 0.0  # (the previous window's, once it weighs)
    used = count + share * weight
    room = limit * ROOM
    if used + cost <= room:
        count += cost
        used += cost
        wait = 0.0
    elif cost > limit:
        wait = _INF
    else:
        wait = _sliding_wait(start, count, share, seconds, room, cost, now)
        if wait < SOONEST:
            wait = SOONEST
    left = math.floor(limit - used + 1e-9)
    if left < 0:
        left = 0
    # the moment the next unit fits once the ones left are taken (take_sliding's too)
    reset = _sliding_wait(start, count + left, share, seconds, room, 1, now)
    return (
        (start, count, previous),
        wait if wait > 0.0 else 0.0,
        left,
        reset if reset > 0.0 else 0.0,
    )


def _sliding_wait(
    start: float, count: float, previous: float, seconds: float, room: float, cost: int, now: float
) -> float:
    """Seconds from ``now`` until ``cost`` more units fit in ``room`` (``limit * ROOM``;
    ``cost`` <= ``limit``).

    The weighted count only falls: linearly while the previous window's share decays,
    then, in the next window, as this window's count decays in its turn; so the
    moment is the root of one linear equation, whichever of the two it falls in."""
    elapsed = now - start
    if count + cost <= room and previous > 0.0:
        # count + previous * (1 - (t - start) / seconds) + cost <= room
        return seconds * (1.0 - (room - count - cost) / previous) - elapsed
    if count > 0.0:
        # next window: count * (1 - (t - start - seconds) / seconds) + cost <= room
        return seconds - elapsed + seconds * (1.0 - (room - cost) / count)
    return seconds - elapsed


def _bucket(window: Window, state: State, now: float, cost: int) -> Step:
    tokens, counted, _ = state
    capacity = window.capacity
    seconds, limit = window.seconds, window.limit
    if now > counted:
        tokens = min(float(capacity), tokens + (now - counted) * (limit / seconds))
        counted = now
    if cost > capacity:
        wait = _INF
    elif tokens >= cost:
        tokens -= cost
        wait = 0.0
    else:
        wait = (cost - tokens) * seconds / limit
    left = math.floor(tokens + 1e-9)
    if left < 0:
        left = 0
    # the next token once the ones left are taken
    reset = (1.0 - (tokens - left)) * seconds / limit
    return (tokens, counted, 0.0), wait, left, reset if reset > 0.0 else 0.0


def _fixed(window: Window, state: State, now: float, cost: int) -> Step:
    start, count, _ = state
    begins, ends = window.bounds(now)
    if begins > start:
        start, count = begins, 0.0
    limit = window.limit
    if count + cost <= limit:
        count += cost
        wait = 0.0
    elif cost > limit:
        wait = _INF
    else:
        wait = ends - now if ends > now else 0.0
    left = math.floor(limit - count + 1e-9)
    # once the units left are taken, the next one comes with the next period
    reset = ends - now if ends > now else 0.0
    return (start, count, 0.0), wait, left if left > 0 else 0, reset


def usage(window: Window, state: State, now: float) -> Usage:
    """Where ``state`` stands under ``window`` at ``now``, taking nothing."""
    _, _, left, reset = step(window, state, now, 0)
    return Usage(window.limit, left, reset)


def add(window: Window, state: State, units: float) -> State:
    """``state`` with ``units`` more used (fewer when negative)."""
    first, second, third = state
    if window.algorithm == "token_bucket":
        return (min(first - units, float(window.capacity)), second, third)
    return (first, max(second + units, 0.0), third)


def expires(window: Window, state: State) -> float:
    """When ``state`` is worth nothing more than a fresh one (its slot may go)."""
    first, second, _ = state
    if window.algorithm == "token_bucket":
        return second + (window.capacity - first) * window.seconds / window.limit
    if window.algorithm == "fixed_window":
        return window.bounds(first)[1]
    return first + 2 * window.seconds
