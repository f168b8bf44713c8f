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

from quiver.plugins.counters import Verdict, Window
from quiver.plugins.counters.algorithms import State, add, advance, expires, fresh, usage, wait_for
from quiver.plugins.counters.table import Table, digest

_STATE = struct.Struct("<ddd")
RECORD_SIZE = Table.value_offset + _STATE.size
DEFAULT_SLOTS = 1 << 17  # 131,072 keys and windows in 6 MiB
Record = tuple[int, bytes, State]  # offset in the table, key digest, state
_DIGESTS = 4096  # digests remembered per worker (keys repeat: consumers, addresses)


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
        self._digests: dict[bytes, bytes] = {}

    def _digest(self, key: bytes) -> bytes:
        known = self._digests.get(key)
        if known is None:
            if len(self._digests) >= _DIGESTS:
                self._digests.clear()
            known = self._digests[key] = digest(key)
        return known

    def _records(
        self, key: bytes, windows: Sequence[Window], now: float
    ) -> list[tuple[int, bytes, State]]:
        """Offset, digest and current state of each window's record (lock held)."""
        table = self.table
        memory = table.memory
        start = table.value_offset
        records = []
        for index, window in enumerate(windows):
            key_digest = self._digest(b"%s\x00%d" % (key, index) if index else key)
            offset, live = table.find(key_digest, now)
            if live:
                state = advance(window, _STATE.unpack_from(memory, offset + start), now)
            else:
                state = fresh(window, now)
            records.append((offset, key_digest, state))
        return records

    def _store(self, windows: Sequence[Window], records: list[Record]) -> None:
        table = self.table
        start = table.value_offset
        for window, (offset, key_digest, state) in zip(windows, records, strict=True):
            table.claim(offset, key_digest, expires(window, state))
            _STATE.pack_into(table.memory, offset + start, *state)

    def take(self, key: bytes, windows: Sequence[Window], cost: int = 1) -> Verdict:
        now = self.clock()
        with self.table.locked():
            records = self._records(key, windows, now)
            wait = 0.0
            for window, (_, _, state) in zip(windows, records, strict=True):
                wait = max(wait, wait_for(window, state, now, cost))
            if wait == 0.0:
                records = [
                    (offset, key_digest, add(window, state, cost))
                    for window, (offset, key_digest, state) in zip(windows, records, strict=True)
                ]
                self._store(windows, records)
        spent = tuple(
            usage(window, state, now)
            for window, (_, _, state) in zip(windows, records, strict=True)
        )
        if wait == 0.0:
            return Verdict(True, spent)
        return Verdict(False, spent, wait)

    def settle(self, key: bytes, windows: Sequence[Window], delta: int) -> None:
        if not delta:
            return
        now = self.clock()
        with self.table.locked():
            records = [
                (offset, key_digest, add(window, state, delta))
                for window, (offset, key_digest, state) in zip(
                    windows, self._records(key, windows, now), strict=True
                )
            ]
            self._store(windows, records)

    def close(self) -> None:
        self.table.close()
