"""The access log: records in from the event loop, lines out on a writer thread.

The event loop only appends finished records to a bounded queue (a deque: one
append under the GIL, no lock) and wakes the writer when it sleeps.  Formatting
and writing happen on the writer thread, a batch at a time: whatever queued up
while it wrote the previous batch goes out in one write.  A thread rather than
the loop's idle time because a write may block (a slow disk, a full pipe on
stdout, a syslog socket) and the loop must never wait for it; the formatting
still takes the GIL, but it is the same work wherever it runs.

When the queue is full the record is dropped and counted: requests never wait
for their log line.  The count is in the worker's status document (``quiver
status``) and in a warning at most once a minute.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from quiver.config.access_log import AccessLog
from quiver.observe.formats import formatter
from quiver.observe.metrics import MetricsOutput
from quiver.observe.record import ExchangeRecord
from quiver.observe.sinks import Sink, open_sink

log = logging.getLogger("quiver.access_log")

WARN_EVERY = 60.0  # seconds between warnings about dropped or unwritten lines
_BATCH = 512  # records formatted per write, at most


class AccessLogWriter:
    """One worker's access log.  Feed it with :meth:`add` on the event loop."""

    def __init__(
        self,
        settings: AccessLog,
        *,
        sink: Sink | None = None,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        outputs: Sequence[MetricsOutput] = (),
    ) -> None:
        """``outputs`` are given every record on the writer thread too, before the
        sample is drawn (the request counters count every exchange)."""
        self.settings = settings
        self.outputs = tuple(outputs)
        self.sample = settings.sample
        self.query = settings.query
        self.limit = settings.queue
        self._sink = sink
        self._rng = rng
        self._clock = clock
        self._format = formatter(settings.format, settings.fields)
        self.pending: deque[ExchangeRecord] = deque()
        self.written = 0
        self.dropped = 0
        self.failed = 0  # lines lost to write errors
        self.reopened = 0  # times the destination was reopened (SIGUSR1)
        self._warned_at = -WARN_EVERY
        self._idle = False  # the writer waits for `_wake`
        self._wake = threading.Event()
        self._reopen = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- on the event loop ------------------------------------------------------------

    def wants(self, status: int) -> bool:
        """Whether an exchange that ended with ``status`` is logged (sampling; every
        5xx is)."""
        sample = self.sample
        return sample >= 1.0 or status >= 500 or self._rng() < sample

    def add(self, records: Iterable[ExchangeRecord]) -> None:
        """Queue records for writing, dropping what does not fit."""
        pending = self.pending
        room = self.limit - len(pending)
        for record in records:
            if room > 0:
                pending.append(record)
                room -= 1
            else:
                self._drop()
        if self._idle:
            self._idle = False
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        now = self._clock()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(
                "access log queue full (%d lines): %d lines dropped so far",
                self.limit,
                self.dropped,
            )

    def reopen(self) -> None:
        """Reopen the file before the next write (SIGUSR1, after logrotate moved it)."""
        self._reopen = True
        self._idle = False
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """For the worker's status document."""
        return {
            "to": self.settings.to,
            "queued": len(self.pending),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "reopened": self.reopened,
        }

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the destination (an error here stops the worker's start) and start
        the writer thread."""
        if self._sink is None:
            self._sink = open_sink(self.settings)
        for output in self.outputs:
            output.open()
        self._thread = threading.Thread(target=self._run, name="quiver-access-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread and close the destination."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for output in self.outputs:
            output.close()
        if self._sink is not None:
            self._sink.close()

    # -- on the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        pending = self.pending
        while True:
            if not pending and not self._reopen:
                if self._stopping:
                    return
                self._idle = True
                if not pending and not self._reopen and not self._stopping:  # (no lost wake-up)
                    self._wake.wait()
                self._wake.clear()
                self._idle = False
            if self._reopen:
                self._reopen = False
                self._guarded(self._do_reopen, 0)
            batch: list[ExchangeRecord] = []
            while pending and len(batch) < _BATCH:
                batch.append(pending.popleft())
            if batch and self.outputs:
                for output in self.outputs:
                    self._guarded(functools.partial(output.write, batch), 0)
                if self.sample < 1.0:  # (the records came unsampled: see records())
                    batch = [record for record in batch if self.wants(record.status)]
            if batch:
                self._guarded(functools.partial(self._write, batch), len(batch))

    def _write(self, batch: list[ExchangeRecord]) -> None:
        form = self._format
        lines = [form(record) for record in batch]
        assert self._sink is not None
        self._sink.write(lines)
        self.written += len(lines)

    def _do_reopen(self) -> None:
        assert self._sink is not None
        self._sink.reopen()
        self.reopened += 1

    def _guarded(self, work: Callable[[], None], lines: int) -> None:
        """Run ``work``; a failure loses its lines (counted), never the thread."""
        try:
            work()
        except Exception as exc:  # a full disk, a closed socket, a bad value
            self.failed += lines
            now = self._clock()
            if now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                log.warning("access log not written (%d lines lost so far): %s", self.failed, exc)
