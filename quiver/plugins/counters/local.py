"""The ``local`` counter store: exact across the workers of one node, without Redis.

Counts live in a :class:`~quiver.plugins.counters.table.Table` (a file in the run
directory, mapped by every worker), one record per key and window; ``take`` reads,
decides and writes every window of a key under the table's lock.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from quiver.plugins.counters import Usage, Verdict, Window
from quiver.plugins.counters.algorithms import ROOM, State, add, expires, fresh, step, usage
from quiver.plugins.counters.table import Table, digest

# key digest, expiry, then the state; in the machine's byte order, so that the fast
# path can read and write the numbers through views of the table as 8-byte words
_RECORD = struct.Struct("=16sdddd")
RECORD_SIZE = _RECORD.size
DEFAULT_SLOTS = 1 << 17  # 131,072 keys and windows in 6 MiB
_REMEMBERED = 4096  # digests and offsets kept per worker (keys repeat: consumers, addresses)
_new = tuple.__new__


class LocalCounters:
    """Counters in a table shared by the node's workers (``path``; this process
    only when None).  ``clock`` gives Unix seconds."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        slots: int = DEFAULT_SLOTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = Table(path, RECORD_SIZE, slots)
        self.clock = clock
        self.memory = self.table.memory
        self._digests: dict[bytes, bytes] = {}
        self._offsets: dict[bytes, int] = {}
        #: where a key's record under a single window was last seen (for
        #: ``take_sliding``): its digest, its offset, and that offset in 8-byte words
        self._places: dict[bytes, tuple[bytes, int, int]] = {}
        self._reals = memoryview(self.memory).cast("d")

    def _digest(self, key: bytes, index: int) -> bytes:
        if index:
            key = b"%s\x00%d" % (key, index)
        known = self._digests.get(key)
        if known is None:
            if len(self._digests) >= _REMEMBERED:
                self._digests.clear()
                self._offsets.clear()
                self._places.clear()
            known = self._digests[key] = digest(key)
        return known

    def _read(self, key_digest: bytes, window: Window, now: float) -> tuple[int, State]:
        """The offset of the key's record for ``window`` and its stored state (a fresh
        one when it has none).  Where a key's record was last seen is remembered,
        so the common case reads one record instead of probing."""
        offset = self._offsets.get(key_digest)
        if offset is not None:
            found, expiry, first, second, third = _RECORD.unpack_from(self.memory, offset)
            if found == key_digest:
                if expiry > now:
                    return offset, (first, second, third)
                return offset, fresh(window, now)
        offset, live = self.table.find(key_digest, now)
        self._offsets[key_digest] = offset
        if not live:
            return offset, fresh(window, now)
        return offset, _RECORD.unpack_from(self.memory, offset)[2:]

    def _write(self, offset: int, key_digest: bytes, window: Window, state: State) -> None:
        _RECORD.pack_into(self.memory, offset, key_digest, expires(window, state), *state)

    def take(self, key: bytes, windows: Sequence[Window], cost: int = 1) -> Verdict:
        if len(windows) == 1:  # the common case, without the lists
            window = windows[0]
            if window.algorithm == "sliding_window" and cost > 0:
                usual = self.take_sliding(key, window, cost)
                if usual is not None:
                    # (tuple.__new__ skips the NamedTuples' Python-level __new__: hot)
                    where = _new(Usage, (window.limit, *usual))
                    return _new(Verdict, (True, (where,), 0.0))
            return self._take_one(key, window, cost)
        now = self.clock()
        table = self.table
        digests = [self._digest(key, index) for index in range(len(windows))]
        table.lock()
        try:
            read = [
                self._read(key_digest, window, now)
                for key_digest, window in zip(digests, windows, strict=True)
            ]
            steps = [
                step(window, state, now, cost)
                for window, (_, state) in zip(windows, read, strict=True)
            ]
            wait = max(taken[1] for taken in steps)
            if wait == 0.0:
                for key_digest, window, (offset, _), taken in zip(
                    digests, windows, read, steps, strict=True
                ):
                    self._write(offset, key_digest, window, taken[0])
        finally:
            table.unlock()
        if wait == 0.0:
            spent = tuple(
                [
                    Usage(window.limit, taken[2], taken[3])
                    for window, taken in zip(windows, steps, strict=True)
                ]
            )
        else:  # nothing was taken: where each window stands as it is
            spent = tuple(
                [
                    usage(window, state, now)
                    for window, (_, state) in zip(windows, read, strict=True)
                ]
            )
        return Verdict(wait == 0.0, spent, wait)

    def _take_one(self, key: bytes, window: Window, cost: int) -> Verdict:
        """``take`` under one window, by the general rule."""
        now = self.clock()
        key_digest = self._digests.get(key) or self._digest(key, 0)
        self.table.lock()
        try:
            offset, state = self._read(key_digest, window, now)
            state, wait, left, reset = step(window, state, now, cost)
            if wait == 0.0:
                self._write(offset, key_digest, window, state)
                self._places[key] = (key_digest, offset, offset // 8)
        finally:
            self.table.unlock()
        where = _new(Usage, (window.limit, left, reset))
        return _new(Verdict, (wait == 0.0, (where,), wait))

    def take_sliding(self, key: bytes, window: Window, cost: int = 1) -> tuple[int, float] | None:
        """``take`` under one sliding window, in its usual case: the key's record is
        where this worker last saw it, in the same window, and the units fit.  Only
        the count changes, read and written as one word.  Gives the units left and
        the seconds until the window resets; None for any other case, refusals
        included, which ``take`` decides by the general rule (``algorithms.step``).
        The seconds are those of ``algorithms.step``: until one more unit fits once
        the ones left are taken."""
        place = self._places.get(key)
        if place is None:
            return None
        key_digest, offset, word = place
        reals = self._reals
        now = self.clock()
        seconds = window.seconds
        limit = window.limit
        self.table.lock()
        try:
            if self.memory[offset : offset + 16] != key_digest or reals[word + 2] <= now:
                return None  # another key's record now, or expired
            start = reals[word + 3]
            elapsed = now - start
            if elapsed >= seconds:
                return None  # a later window
            count = reals[word + 4] + cost
            previous = reals[word + 5]
            used = count + previous * (1.0 - elapsed / seconds) if previous > 0.0 else count
            room = limit * ROOM
            if used > room:
                return None
            reals[word + 4] = count
        finally:
            self.table.unlock()
        left = int(limit - used + 1e-9)  # (floor: limit - used > -1 here)
        # when the next unit fits once these are taken: algorithms._sliding_wait, inline
        # (a call would cost this path about 1,200 instructions, near 1% of a request)
        spent = count + left
        if spent + 1 <= room and previous > 0.0:
            reset = seconds * (1.0 - (room - spent - 1) / previous) - elapsed
        else:
            reset = seconds - elapsed + seconds * (1.0 - (room - 1) / spent)
        return left, (reset if reset > 0.0 else 0.0)

    def settle(self, key: bytes, windows: Sequence[Window], delta: int) -> None:
        if not delta:
            return
        now = self.clock()
        self.table.lock()
        try:
            for index, window in enumerate(windows):
                key_digest = self._digest(key, index)
                offset, state = self._read(key_digest, window, now)
                state = step(window, state, now, 0)[0]
                self._write(offset, key_digest, window, add(window, state, delta))
        finally:
            self.table.unlock()

    def close(self) -> None:
        self._reals.release()  # (a view of the mapping keeps it from closing)
        self.table.close()
