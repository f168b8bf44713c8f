"""Access log lines in from the writer thread, out to their destination on a thread
of their own.

A destination may block: stdout to a pipe nobody reads, a syslog socket, a slow
disk.  The record writer's thread feeds every output (the request counters, the
call spool, the spans), so it must never wait for one of them: the access log
formats its lines there and queues them here, and this thread writes them, a
batch of whatever queued up at a time.  When the queue is full the lines that do
not fit are dropped and counted as the access log's own loss; the other outputs
lose nothing.  A write that fails loses its lines, counted too.  Warnings say
either at most once a minute on ``quiver.observe``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from quiver.observe.sinks import Sink
from quiver.observe.warnings import SparseWarnings

log = logging.getLogger("quiver.observe")

CLOSE_WAIT = 2.0  # seconds a close waits for the queued lines to be written, at most


class QueuedSink:
    """``sink`` written on a thread of its own, at most ``limit`` lines waiting.
    :meth:`put` never blocks; start with :meth:`start`, end with :meth:`close`."""

    def __init__(
        self,
        sink: Sink,
        *,
        limit: int,
        name: str = "access log",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.limit = limit
        self.name = name
        self.pending: deque[list[bytes]] = deque()
        self.queued = 0  # lines in ``pending`` (changed under ``_lock``)
        self.written = 0
        self.dropped = 0  # the queue was full
        self.failed = 0  # in writes that failed
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._reopen = False
        self._stopping = False
        self._warnings = SparseWarnings(log, clock)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="quiver-access-log", daemon=True)
        self._thread.start()

    # -- from the record writer's thread ----------------------------------------------

    def put(self, lines: list[bytes]) -> None:
        """Queue ``lines`` for writing, dropping those that do not fit."""
        with self._lock:
            room = self.limit - self.queued
            lost = max(len(lines) - max(room, 0), 0)
            if lost:
                self.dropped += lost
                lines = lines[: len(lines) - lost]
            if lines:
                self.pending.append(lines)
                self.queued += len(lines)
        if lost:
            self._warnings.warn(
                "queue",
                "%s queue full (%d lines): %d lines dropped so far",
                self.name,
                self.limit,
                self.dropped,
            )
        if lines:
            self._wake.set()

    def reopen(self) -> None:
        """Have the destination reopened by its name before the next write."""
        self._reopen = True
        self._wake.set()

    def close(self) -> None:
        """Write what is queued (for ``CLOSE_WAIT`` at most: the destination may be
        stuck), then let it go."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT)
            if self._thread.is_alive():  # (stuck on a write: the thread closes it)
                return
            self._thread = None
        else:
            self.sink.close()

    # -- on its own thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._reopen:
                    self._reopen = False
                    self._guarded(lambda _: self.sink.reopen(), [])
                while self.pending:
                    lines = self._take()
                    if self._guarded(self.sink.write, lines):
                        self.written += len(lines)
                if self._stopping:
                    return
        finally:
            self._guarded(lambda _: self.sink.close(), [])

    def _take(self) -> list[bytes]:
        with self._lock:
            lines = [line for batch in self.pending for line in batch]
            self.pending.clear()
            self.queued = 0
        return lines

    def _guarded(self, work: Callable[[list[bytes]], None], lines: list[bytes]) -> bool:
        """``work(lines)``; False when it failed (``lines`` are lost, counted)."""
        try:
            work(lines)
        except Exception as exc:  # a full disk, a closed socket, a broken pipe
            self.failed += len(lines)
            self._warnings.warn(
                "write",
                "%s not written (%d lines lost so far): %s",
                self.name,
                self.failed,
                exc,
            )
            return False
        return True
