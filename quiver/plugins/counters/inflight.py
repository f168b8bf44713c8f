"""Requests in flight per key, counted exactly across the workers of one node.

Each record keeps one count per worker (its index), so a worker that dies and is
replaced gives back what it held: its replacement clears its own column when it
starts.  The total of a record is the sum of the columns.  The table belongs to one
running gateway (its master's pid is in the file name): a new gateway starts from
zero, whatever the previous one left.
"""

from __future__ import annotations

import struct
from pathlib import Path

from quiver.plugins.counters.table import Table, digest

COLUMNS = 128  # worker indexes beyond this share columns (index modulo COLUMNS)
_COUNTS = struct.Struct(f"<{COLUMNS}H")
_COUNT = struct.Struct("<H")
RECORD_SIZE = Table.value_offset + _COUNTS.size
DEFAULT_SLOTS = 8192
_HELD = float("inf")  # the expiry of a record with requests in flight: never reused


class InFlight:
    """In-flight counts in ``path`` (this process only when None) for worker ``worker``."""

    def __init__(self, path: Path | None, worker: int = 0, *, slots: int = DEFAULT_SLOTS) -> None:
        self.table = Table(path, RECORD_SIZE, slots)
        self.column = worker % COLUMNS
        self._column_offset = Table.value_offset + self.column * _COUNT.size
        self._clear_column()

    def _clear_column(self) -> None:
        table = self.table
        with table.locked() as memory:
            for offset in table.offsets():
                if _COUNT.unpack_from(memory, offset + self._column_offset)[0]:
                    _COUNT.pack_into(memory, offset + self._column_offset, 0)
                    self._release_if_idle(offset)

    def _release_if_idle(self, offset: int) -> None:
        memory = self.table.memory
        if not any(_COUNTS.unpack_from(memory, offset + Table.value_offset)):
            key_digest = bytes(memory[offset : offset + 16])
            self.table.claim(offset, key_digest, 0.0)

    def enter(self, key: bytes, limit: int) -> tuple[bool, int]:
        """Count one more request for ``key`` unless ``limit`` are in flight already;
        whether it was counted, and how many are in flight now."""
        key_digest = digest(key)
        table = self.table
        with table.locked() as memory:
            offset, live = table.find(key_digest, 0.0)
            if offset < 0:  # every probed slot has requests in flight: treat as full
                return False, limit
            if live:
                total = sum(_COUNTS.unpack_from(memory, offset + Table.value_offset))
            else:
                memory[offset + Table.value_offset : offset + RECORD_SIZE] = bytes(_COUNTS.size)
                total = 0
            if total >= limit:
                return False, total
            table.claim(offset, key_digest, _HELD)
            mine = offset + self._column_offset
            _COUNT.pack_into(memory, mine, _COUNT.unpack_from(memory, mine)[0] + 1)
            return True, total + 1

    def leave(self, key: bytes) -> None:
        """One request for ``key`` that ``enter`` counted here is over."""
        key_digest = digest(key)
        table = self.table
        with table.locked() as memory:
            offset, live = table.find(key_digest, 0.0)
            if not live:
                return
            mine = offset + self._column_offset
            count = _COUNT.unpack_from(memory, mine)[0]
            if count:
                _COUNT.pack_into(memory, mine, count - 1)
                if count == 1:
                    self._release_if_idle(offset)

    def in_flight(self, key: bytes) -> int:
        """How many requests for ``key`` are in flight on the node."""
        table = self.table
        with table.locked() as memory:
            offset, live = table.find(digest(key), 0.0)
            if not live:
                return 0
            return sum(_COUNTS.unpack_from(memory, offset + Table.value_offset))

    def close(self) -> None:
        self.table.close()
