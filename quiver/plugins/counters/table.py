"""A fixed-size hash table of small records in memory shared by the node's workers.

The table is a file mapped into every worker (``mmap``, ``MAP_SHARED``), so all of
them read and write the same bytes; a worker holds the table's lock while it reads
and writes a record, so each change is atomic for the whole node.  This is how nginx
keeps ``limit_req`` zones: shared memory and a lock, no round trip to another
process.  A critical section is a few microseconds of arithmetic with no I/O.  The
lock is a semaphore in the file's header where the platform allows, else ``flock``
(:mod:`quiver.plugins.counters.locks`, which also says what happens when a worker
dies holding it).

Each worker opens the file itself (``flock`` locks belong to an open file, and a
descriptor inherited across ``fork`` would share its parent's lock).  Without a
path the table lives in this process's memory only, for a gateway of one process,
and needs no lock.

A record is addressed by a 16-byte digest of its key.  The home slot comes from the
digest, and up to ``PROBES`` following slots are looked at (linear probing); a key
that finds neither its record nor a free or expired slot among them takes the slot
that expires first.  That forgets another key's count early, so size the table
(``slots``) above the number of keys live at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from quiver.plugins.counters.locks import MADE_OFFSET, FileLock, SemaphoreLock, semaphore_in

PROBES = 16
_MAGIC = b"QVCT0002"
_BEFORE_LOCKS = b"QVCT0001"  # the same records, locked with flock only: kept as they are
_HEADER = struct.Struct("<8sII")  # magic, record size, slot count
_HEADER_SIZE = 64
_DIGEST = struct.Struct("<16sd")  # digest, expiry (Unix seconds) at the start of each record
_EMPTY = bytes(16)


def digest(key: bytes) -> bytes:
    """The 16 bytes a key is stored under (never all zeros: that marks a free slot)."""
    value = hashlib.blake2b(key, digest_size=16).digest()
    return value if value != _EMPTY else b"\x01" + value[1:]


class Table:
    """``slots`` records of ``record_size`` bytes; a record starts with its key's
    digest and its expiry, then whatever its user keeps (``value_offset`` on)."""

    value_offset = _DIGEST.size

    def __init__(self, path: Path | None, record_size: int, slots: int) -> None:
        self.record_size = record_size
        self.slots = slots
        size = _HEADER_SIZE + record_size * slots
        self._fd: int | None = None
        self.node_lock: FileLock | SemaphoreLock | None = None
        #: take the node-wide lock, and give it back (no-ops for a table of one process)
        self.lock: Callable[[], None] = _nothing
        self.unlock: Callable[[], None] = _nothing
        if path is None:
            self.memory = mmap.mmap(-1, size)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                made = self._prepare(fd, size)
                self.memory = mmap.mmap(fd, size)
                self.node_lock = self._node_lock(fd, made)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.lock = self.node_lock.acquire
        self.unlock = self.node_lock.release

    def _prepare(self, fd: int, size: int) -> bool:
        """Give the file this table's layout, unless it has it already (kept counts);
        True when the header is new, without a semaphore yet."""
        header = os.pread(fd, _HEADER.size, 0)
        if len(header) == _HEADER.size and os.fstat(fd).st_size == size:
            magic, record_size, slots = _HEADER.unpack(header)
            if (record_size, slots) == (self.record_size, self.slots):
                if magic == _MAGIC:
                    return False
                if magic == _BEFORE_LOCKS:
                    os.pwrite(fd, _MAGIC, 0)
                    return True
        os.ftruncate(fd, 0)  # another layout (or none): start from zeros
        os.ftruncate(fd, size)
        os.pwrite(fd, _HEADER.pack(_MAGIC, self.record_size, self.slots), 0)
        return True

    def _node_lock(self, fd: int, made: bool) -> FileLock | SemaphoreLock:
        """The lock of the node's processes on this file (called under ``flock``):
        the header's semaphore when there is one (made now when the header is new),
        else ``flock``."""
        memory = self.memory
        semaphore = None
        if made:
            semaphore = semaphore_in(memory, create=True)
            memory[MADE_OFFSET] = 1 if semaphore is not None else 0
        elif memory[MADE_OFFSET] == 1:
            semaphore = semaphore_in(memory, create=False)
        if semaphore is None:
            return FileLock(fd)
        return SemaphoreLock(semaphore, memory, fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[mmap.mmap]:
        """Hold the node-wide lock of the table."""
        self.lock()
        try:
            yield self.memory
        finally:
            self.unlock()

    def find(self, key_digest: bytes, now: float) -> tuple[int, bool]:
        """The offset of the record for ``key_digest`` and whether it is live (call
        with the lock held).  A new key gets a free or expired slot, else the slot
        that expires first; -1 when every probed slot is held for good (expiry inf)."""
        memory = self.memory
        size = self.record_size
        slots = self.slots
        home = int.from_bytes(key_digest[:8], "little") % slots
        unpack = _DIGEST.unpack_from
        free = -1
        oldest, oldest_expiry = -1, math.inf
        for probe in range(PROBES):
            offset = _HEADER_SIZE + ((home + probe) % slots) * size
            found, expiry = unpack(memory, offset)
            if found == key_digest:
                return offset, expiry > now
            if found == _EMPTY or expiry <= now:
                if free < 0:
                    free = offset
            elif expiry < oldest_expiry:
                oldest, oldest_expiry = offset, expiry
        return (free if free >= 0 else oldest), False

    def claim(self, offset: int, key_digest: bytes, expiry: float) -> None:
        """Make the record at ``offset`` belong to ``key_digest`` until ``expiry``."""
        _DIGEST.pack_into(self.memory, offset, key_digest, expiry)

    def offsets(self) -> Iterator[int]:
        """The offset of every record (for a sweep with the lock held)."""
        for slot in range(self.slots):
            yield _HEADER_SIZE + slot * self.record_size

    def flush(self) -> None:
        """Write the table to its file now (it is written back by the system anyway)."""
        if self._fd is not None:
            self.memory.flush()

    def close(self) -> None:
        # (the semaphore lives in the mapping: let it go before the mapping does)
        self.lock = self.unlock = _closed
        self.node_lock = None
        self.memory.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _nothing() -> None:
    pass


def _closed() -> None:
    raise ValueError("the counter table is closed")
