"""The local counter store: its table, shared by processes, and its counting rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quiver.plugins.counters import Window, aligned
from quiver.plugins.counters.inflight import InFlight
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.table import PROBES, Table

MINUTE = Window(3, 60.0)
START = 1_800_000_000.0  # a whole minute and hour in Unix time


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sliding_window_weighs_the_previous_window() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    assert [counters.take(b"k", [MINUTE]).allowed for _ in range(4)] == [True] * 3 + [False]
    clock.now = START + 60 + 30  # half of the previous window still counts: 1.5 used
    verdict = counters.take(b"k", [MINUTE])
    assert verdict.allowed and verdict.usage[0].remaining == 0  # 2.5 used
    refused = counters.take(b"k", [MINUTE])
    assert not refused.allowed
    # 3 * (1 - t/60) + 1 + 1 <= 3 once t >= 40: ten seconds on
    assert refused.retry_after == pytest.approx(10.0)
    clock.now = START + 60 + 40
    assert counters.take(b"k", [MINUTE]).allowed


def test_a_gap_of_two_windows_forgets_everything() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    for _ in range(3):
        counters.take(b"k", [MINUTE])
    clock.now = START + 125
    assert counters.take(b"k", [MINUTE]).usage[0].remaining == 2


def test_a_cost_above_the_limit_is_never_allowed() -> None:
    verdict = LocalCounters(clock=Clock()).take(b"k", [MINUTE], cost=4)
    assert not verdict.allowed and verdict.retry_after == float("inf")


def test_settle_corrects_a_reservation_both_ways() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    window = Window(100, 60.0)
    assert counters.take(b"k", [window], cost=10).usage[0].remaining == 90
    counters.settle(b"k", [window], 25)  # the real cost was 35
    assert counters.take(b"k", [window], cost=1).usage[0].remaining == 64
    counters.settle(b"k", [window], -20)  # 16 used
    assert counters.take(b"k", [window], cost=1).usage[0].remaining == 83
    counters.settle(b"k", [window], -50)  # never below nothing used
    assert counters.take(b"k", [window], cost=1).usage[0].remaining == 99


def test_several_windows_take_all_or_nothing() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    windows = [Window(2, 1.0), Window(3, 3600.0)]
    assert counters.take(b"k", windows).allowed
    assert counters.take(b"k", windows).allowed
    assert not counters.take(b"k", windows).allowed  # the second is spent
    clock.now += 5
    verdict = counters.take(b"k", windows)
    assert verdict.allowed and [u.remaining for u in verdict.usage] == [1, 0]
    clock.now += 5
    refused = counters.take(b"k", windows)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(3600 - 10 + 3600 * (1 - 2 / 3))
    clock.now += 1
    assert [u.remaining for u in counters.take(b"k", [windows[0]]).usage] == [1]


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    bucket = Window(10, 1.0, "token_bucket", burst=5)
    assert sum(counters.take(b"k", [bucket]).allowed for _ in range(7)) == 5
    refused = counters.take(b"k", [bucket])
    assert refused.retry_after == pytest.approx(0.1)
    clock.now += 0.35
    assert sum(counters.take(b"k", [bucket]).allowed for _ in range(5)) == 3
    clock.now += 100
    assert counters.take(b"k", [bucket]).usage[0].remaining == 4


def test_fixed_window_with_a_period_resets_at_its_end() -> None:
    day = (START // 86400 + 1) * 86400
    clock = Clock(day + 10)
    counters = LocalCounters(clock=clock)
    daily = Window(2, 86400.0, "fixed_window", period=aligned(86400.0))
    assert counters.take(b"k", [daily]).allowed
    assert counters.take(b"k", [daily]).allowed
    refused = counters.take(b"k", [daily])
    assert not refused.allowed and refused.retry_after == pytest.approx(86400 - 10)
    clock.now = day + 86400
    assert counters.take(b"k", [daily]).usage[0].remaining == 1


def test_counts_are_shared_through_the_file_and_kept(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "counters.table"
    first = LocalCounters(path, clock=clock)
    second = LocalCounters(path, clock=clock)  # another worker opening the same table
    assert first.take(b"k", [MINUTE]).allowed
    assert second.take(b"k", [MINUTE]).usage[0].remaining == 1
    first.close()
    second.close()
    reopened = LocalCounters(path, clock=clock)
    assert reopened.take(b"k", [MINUTE]).allowed
    assert not reopened.take(b"k", [MINUTE]).allowed


def test_a_table_of_another_layout_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "counters.table"
    clock = Clock()
    LocalCounters(path, slots=64, clock=clock).take(b"k", [MINUTE], cost=3)
    assert LocalCounters(path, slots=128, clock=clock).take(b"k", [MINUTE]).allowed
    path.write_bytes(b"not a table")
    assert LocalCounters(path, slots=128, clock=clock).take(b"k", [MINUTE]).allowed


def test_forked_processes_never_take_more_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "counters.table"
    window = Window(500, 60.0)
    results = tmp_path / "allowed"
    results.mkdir()
    children = []
    for child in range(4):
        pid = os.fork()
        if pid == 0:  # each child opens the table itself, as a worker does
            code = 1
            try:
                counters = LocalCounters(path)
                allowed = sum(counters.take(b"shared", [window]).allowed for _ in range(300))
                (results / str(child)).write_text(str(allowed))
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    assert sum(int(p.read_text()) for p in results.iterdir()) == 500


def test_a_full_probe_run_recycles_the_slot_that_expires_first() -> None:
    clock = Clock()
    counters = LocalCounters(slots=PROBES, clock=clock)
    short = Window(1, 1.0)
    for index in range(PROBES):
        counters.take(b"key%d" % index, [short if index == 5 else MINUTE])
    # every slot is live; a new key takes the one of key5, which expires first
    assert counters.take(b"new", [MINUTE]).allowed
    assert not counters.take(b"key7", [Window(1, 60.0)]).allowed  # key7 kept its count
    assert counters.take(b"key5", [short]).allowed  # key5 was forgotten


def test_in_flight_counts_per_worker_and_clears_a_replaced_worker(tmp_path: Path) -> None:
    path = tmp_path / "in-flight.table"
    worker0 = InFlight(path, 0)
    worker1 = InFlight(path, 1)
    assert worker0.enter(b"k", 2) == (True, 1)
    assert worker1.enter(b"k", 2) == (True, 2)
    assert worker0.enter(b"k", 2) == (False, 2)
    InFlight(path, 1)  # worker 1 died; its replacement clears what it held
    assert worker0.in_flight(b"k") == 1
    worker0.leave(b"k")
    assert worker0.in_flight(b"k") == 0
    worker0.leave(b"k")  # an extra leave never goes below zero
    assert worker0.enter(b"k", 1) == (True, 1)


def test_table_header_names_its_layout(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", 48, 32)
    table.close()
    assert (tmp_path / "t").read_bytes()[:8] == b"QVCT0002"


def test_the_usual_case_decides_as_the_general_rule_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fast path for one sliding window (only the count changes, read as a word)
    # against the general rule, over the same requests at the same moments
    import random

    rng = random.Random(7)
    moments = sorted(START + rng.uniform(0, 400) for _ in range(600))
    costs = [rng.choice([1, 1, 1, 2, 5]) for _ in moments]
    window = Window(20, 60.0)
    clock = Clock()
    fast = LocalCounters(tmp_path / "fast.table", clock=clock)
    general = LocalCounters(tmp_path / "general.table", clock=clock)
    monkeypatch.setattr(general, "take_sliding", lambda *args: None)
    usual = 0
    take_sliding = fast.take_sliding

    def counted(*args: object) -> object:
        nonlocal usual
        taken = take_sliding(*args)  # type: ignore[arg-type]
        usual += taken is not None
        return taken

    monkeypatch.setattr(fast, "take_sliding", counted)
    for moment, cost in zip(moments, costs, strict=True):
        clock.now = moment
        assert fast.take(b"k", [window], cost) == general.take(b"k", [window], cost)
    assert usual > 50  # (the usual path decided many of them)
    fast.close()
    general.close()
