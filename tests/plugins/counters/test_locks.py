"""The lock of a shared counter table: a semaphore in the file, and what happens
when its holder dies or stops while holding it."""

from __future__ import annotations

import os
import queue
import signal
import threading
from pathlib import Path

import pytest

from quiver.plugins.counters import Window
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.locks import FileLock, SemaphoreLock
from quiver.plugins.counters.table import Table

RECORD, SLOTS = 48, 32


class Ticking:
    """A clock that moves half a second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def semaphore_lock(table: Table) -> SemaphoreLock:
    lock = table.node_lock
    if not isinstance(lock, SemaphoreLock):
        pytest.skip("this platform keeps no semaphore in the file (flock is used)")
    return lock


def quickly_stale(table: Table) -> SemaphoreLock:
    """The table's lock, deciding in a few polls that a silent holder is gone."""
    lock = semaphore_lock(table)
    lock.clock = Ticking()
    lock.poll = 0.01
    return lock


def test_processes_mapping_one_table_share_its_semaphore(tmp_path: Path) -> None:
    first, second = Table(tmp_path / "t", RECORD, SLOTS), Table(tmp_path / "t", RECORD, SLOTS)
    semaphore_lock(first)
    first.lock()
    assert not semaphore_lock(second).semaphore.acquire(False)
    first.unlock()
    second.lock()
    assert not semaphore_lock(first).semaphore.acquire(False)
    second.unlock()
    first.close()
    second.close()


def held_by_a_killed_process(path: Path) -> None:
    """A process opens the table, takes its lock and is killed holding it."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hold the lock, say so, wait to be killed
        try:
            table = Table(path, RECORD, SLOTS)
            table.lock()
            os.write(ready_write, b"1")
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(ready_write)
    assert os.read(ready_read, 1) == b"1"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(ready_read)


def test_a_holder_killed_holding_the_lock_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "t"
    table = Table(path, RECORD, SLOTS)
    lock = quickly_stale(table)
    held_by_a_killed_process(path)
    table.lock()  # waits, then takes over
    assert lock.take_overs() == 1
    table.unlock()
    table.lock()  # given back as this process's own: free again
    table.unlock()
    assert lock.take_overs() == 1
    table.close()


class Manual:
    """A clock the test moves, counting how often it was read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def test_waiters_take_over_a_dead_holder_once(tmp_path: Path) -> None:
    path = tmp_path / "t"
    tables = [Table(path, RECORD, SLOTS) for _ in range(2)]
    clocks = [Manual() for _ in tables]
    for table, clock in zip(tables, clocks, strict=True):
        lock = semaphore_lock(table)
        lock.clock, lock.poll = clock, 0.01
    held_by_a_killed_process(path)
    locked: queue.Queue[Table] = queue.Queue()

    def take(table: Table) -> None:
        table.lock()
        locked.put(table)

    threads = [threading.Thread(target=take, args=(table,)) for table in tables]
    for thread in threads:
        thread.start()
    for clock in clocks:  # both wait (each has polled once)...
        for _ in range(1000):
            if clock.reads >= 2:
                break
            threading.Event().wait(0.01)
    for clock in clocks:  # ...when the holder's silence passes the limit for both
        clock.now = 5.0
    first = locked.get(timeout=10)
    with pytest.raises(queue.Empty):  # the other waits for the one that took over
        locked.get(timeout=0.3)
    first.unlock()
    second = locked.get(timeout=10)
    second.unlock()
    for thread in threads:
        thread.join(timeout=10)
    assert semaphore_lock(first).take_overs() == 1
    for table in tables:
        table.close()


def test_a_stopped_holder_that_comes_back_gives_back_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "t"
    stopped, waiting = Table(path, RECORD, SLOTS), Table(path, RECORD, SLOTS)
    quickly_stale(waiting)
    stopped.lock()
    waiting.lock()  # took over from `stopped`, which went quiet in its critical section
    stopped.unlock()  # it comes back and gives the lock back: now free
    waiting.unlock()  # free already: nothing happens (no error, no second unit)
    stopped.lock()
    assert not semaphore_lock(waiting).semaphore.acquire(False)
    stopped.unlock()
    stopped.close()
    waiting.close()


def test_a_table_from_before_the_semaphore_keeps_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "counters.table"
    window = Window(3, 60.0)
    counters = LocalCounters(path, slots=64, clock=lambda: 1_800_000_000.0)
    counters.take(b"k", [window], cost=2)
    counters.close()
    with path.open("r+b") as file:  # the header as the flock-only version wrote it
        layout = file.read(16)[8:]
        file.seek(0)
        file.write(b"QVCT0001" + layout + bytes(48))
    reopened = LocalCounters(path, slots=64, clock=lambda: 1_800_000_000.0)
    semaphore_lock(reopened.table)
    assert reopened.take(b"k", [window]).allowed
    assert not reopened.take(b"k", [window]).allowed
    reopened.close()
    assert path.read_bytes()[:8] == b"QVCT0002"


def test_without_a_semaphore_every_process_of_the_table_uses_flock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t"
    monkeypatch.setattr("quiver.plugins.counters.table.semaphore_in", lambda *a, **k: None)
    made_without = Table(path, RECORD, SLOTS)
    assert isinstance(made_without.node_lock, FileLock)
    monkeypatch.undo()
    later = Table(path, RECORD, SLOTS)  # (here semaphores work, but the file has none)
    assert isinstance(later.node_lock, FileLock)
    later.lock()
    later.unlock()
    made_without.close()
    later.close()


def test_a_closed_table_refuses_its_lock(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", RECORD, SLOTS)
    table.close()
    with pytest.raises(ValueError, match="closed"):
        table.lock()
