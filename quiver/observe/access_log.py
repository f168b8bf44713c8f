"""The access log: one of a worker's record outputs (quiver.observe.writer).

On the writer thread it draws the sample (every 5xx is kept) and formats the kept
records as lines; its destination may block (a pipe nobody reads, a socket), so
the lines are written on a thread of its own, in one write per batch, with a
queue of their own (quiver.observe.sink_thread): when the destination falls
behind, what it loses is its own, never the other outputs'.  When it is
the worker's only output, the sample is drawn on the event loop instead, before
any record is made (``drawn``): an exchange left out then costs nothing more.  In JSON
with every field (the default) its line is the one the call spool writes too, so
a worker with both makes each line once (quiver.observe.outputs.Batch).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from quiver.config.access_log import ACCESS_LOG_FIELDS, AccessLog
from quiver.observe.formats import formatter
from quiver.observe.outputs import Batch
from quiver.observe.sink_thread import QueuedSink
from quiver.observe.sinks import Sink, open_sink


class AccessLogOutput:
    """A worker's access log, as ``settings`` describe it; tests hand in their own
    ``sink`` or random source.  ``drawn``: the writer draws the sample with
    :meth:`wants` before it makes records, and this writes every record it gets."""

    name = "access_log"

    def __init__(
        self,
        settings: AccessLog,
        *,
        sink: Sink | None = None,
        rng: Callable[[], float] = random.random,
        drawn: bool = False,
    ) -> None:
        self.settings = settings
        self.sample = settings.sample
        self.drawn = drawn
        self._sink = sink
        self._rng = rng
        self._format = formatter(settings.format, settings.fields)
        #: its lines are the shared every-field JSON lines (sampled ones are not:
        #: making the lines of records it leaves out would cost more than it saves)
        self._shared = (
            settings.format == "json"
            and tuple(settings.fields) == ACCESS_LOG_FIELDS
            and settings.sample >= 1.0
        )
        self._queue: QueuedSink | None = None
        self.reopened = 0  # times the destination was reopened (SIGUSR1)

    @property
    def written(self) -> int:
        """Lines written to the destination."""
        return self._queue.written if self._queue is not None else 0

    def wants(self, status: int) -> bool:
        """Whether an exchange that ended with ``status`` is logged (sampling; every
        5xx is)."""
        sample = self.sample
        return sample >= 1.0 or status >= 500 or self._rng() < sample

    def open(self) -> None:
        sink = self._sink if self._sink is not None else open_sink(self.settings)
        self._queue = QueuedSink(sink, limit=self.settings.queue)
        self._queue.start()

    def write(self, batch: Batch) -> None:
        if self._shared:
            lines = batch.full_lines()
        else:
            form = self._format
            if self.sample >= 1.0 or self.drawn:
                lines = [form(record) for record in batch]
            else:
                wants = self.wants
                lines = [form(record) for record in batch if wants(record.status)]
            if not lines:
                return
        assert self._queue is not None
        self._queue.put(lines)

    def reopen(self) -> None:
        assert self._queue is not None
        self._queue.reopen()
        self.reopened += 1

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()

    def status(self) -> dict[str, Any]:
        """Its counters; ``queued``, ``dropped`` and ``failed`` are its own queue's
        (lines), which the writer adds to its shared queue's."""
        queue = self._queue
        return {
            "to": self.settings.to,
            "written": self.written,
            "reopened": self.reopened,
            "queued": queue.queued if queue is not None else 0,
            "dropped": queue.dropped if queue is not None else 0,
            "failed": queue.failed if queue is not None else 0,
        }
