"""The sweeper calls ``on_deadline`` on members past due, in one pass or, for many
members, in slices that let the loop run between them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from quiver.proxy.sweeper import SLICE, Sweeper


class Member:
    def __init__(self, deadline: float, hook: Callable[[], None]) -> None:
        self.deadline = deadline
        self.called = 0
        self.hook = hook

    def on_deadline(self, now: float) -> None:
        self.deadline = 0.0
        self.called += 1
        self.hook()


def sweep(
    count: int, due: Callable[[int], bool], first: Callable[[Sweeper, list[Member]], None]
) -> list[Member]:
    """One sweep over ``count`` members, those with ``due(n)`` past due; ``first`` runs
    when the sweep calls its first member (whichever the set gives first)."""

    async def main() -> list[Member]:
        loop = asyncio.get_running_loop()
        sweeper = Sweeper(loop, interval=3600.0)
        now = loop.time()
        members: list[Member] = []
        calls = [0]

        def hook() -> None:
            calls[0] += 1
            if calls[0] == 1:
                first(sweeper, members)

        members.extend(Member(now - 1.0 if due(n) else now + 3600.0, hook) for n in range(count))
        for member in members:
            sweeper.add(member)
        sweeper._tick()
        for _ in range(count // SLICE + 3):  # a slice per turn of the loop, at most
            await asyncio.sleep(0)
        sweeper.stop()
        return members

    return asyncio.run(main())


def nothing(sweeper: Sweeper, members: list[Member]) -> None:
    pass


def test_a_few_members_are_swept_in_one_pass() -> None:
    members = sweep(100, lambda n: n % 10 == 0, nothing)
    assert [m.called for m in members] == [int(n % 10 == 0) for n in range(100)]


def test_many_members_are_swept_in_slices_with_the_loop_running_between() -> None:
    count = SLICE * 5 + 7
    seen: list[int] = []

    def first(sweeper: Sweeper, members: list[Member]) -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: seen.append(sum(m.called for m in members)))

    members = sweep(count, lambda n: n % 3 != 1, first)
    assert [m.called for m in members] == [int(n % 3 != 1) for n in range(count)]
    assert seen and seen[0] <= SLICE  # the loop ran it after the first slice


def test_members_that_leave_during_a_sweep_are_not_called() -> None:
    def first(sweeper: Sweeper, members: list[Member]) -> None:  # e.g. their connections closed
        for member in members:
            if not member.called:
                sweeper.discard(member)

    members = sweep(SLICE * 3, lambda n: True, first)
    assert sum(m.called for m in members) == 1
