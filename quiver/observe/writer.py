"""A worker's records: in from the event loop, out to every output on one thread.

The event loop only appends finished records to a bounded queue (a deque: one
append under the GIL, no lock); the writer thread takes what waits every
``FLUSH_EVERY`` seconds (or the longer ``patience`` of its outputs, when all have
one: spans wait for their exporter's round anyway), or as soon as a batch's worth
does, and hands it to each output (quiver.observe.outputs) a batch at a time.
Waking it for every few records would cost more than writing them: each wake is
two context switches and a hand-over of the GIL on the worker's core.  A thread
rather than the loop's idle time because the outputs' work (formatting lines,
counting) must stay off the loop; one thread and one queue however many outputs:
a record is queued once, and the lines several outputs write are made once.

No output's write waits for a destination that may block: the access log hands
its lines to a thread of its own (quiver.observe.sink_thread), the spans go to
their exporter's (quiver.observe.exporter), and the call spool appends to a
regular file.  So a destination that falls behind fills only its own output's
queue and loses only that output's lines (counted as its own ``dropped``); the
request counters and the call log still get every record.

When the shared queue is full (the writer thread itself falls behind) the record
is dropped and counted: requests never wait for their records.  That loss is
every output's, so each output's section of the worker's status document
(``quiver status``) adds it to its own, and a warning says it at most once a
minute.  An output whose write fails loses that batch (counted as its
``failed``); the others still get it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from quiver.config.access_log import AccessLog
from quiver.config.models import CallLogSettings
from quiver.config.tracing import Tracing
from quiver.observe.access_log import AccessLogOutput
from quiver.observe.call_spool import CallSpool
from quiver.observe.metrics import MetricsOutput
from quiver.observe.outputs import Batch, FullLines, Periodic, RecordOutput
from quiver.observe.record import ExchangeRecord
from quiver.observe.warnings import SparseWarnings

log = logging.getLogger("quiver.observe")

_BATCH = 512  # records handed to the outputs at once, at most
DEFAULT_QUEUE = 10_000  # records waiting, at most, when no output's settings say
FLUSH_EVERY = 0.1  # seconds a record waits for the writer, at most, when few come


class RecordWriter:
    """One worker's writer of records to ``outputs``.  Feed it with :meth:`add` on
    the event loop; at most ``queue`` records wait.  ``query``: records keep the
    query string in their path (the access log's ``query``).  ``keep``: the draw,
    made on the event loop, of the exchanges (by status) that get a record at all,
    when the only output samples (the access log's ``sample``): the others cost no
    record; None: every exchange gets one."""

    def __init__(
        self,
        outputs: Sequence[RecordOutput],
        *,
        queue: int,
        query: bool = False,
        keep: Callable[[int], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outputs = list(outputs)
        self.limit = queue
        self.query = query
        self.keep = keep
        #: records waiting that wake the writer before its next round
        self._wake_at = max(1, min(_BATCH, queue // 2))
        #: seconds a record waits for the writer at most: what the most impatient
        #: output allows (the spans alone may wait for their exporter's round)
        self.flush_every = min(
            (getattr(output, "patience", FLUSH_EVERY) for output in self.outputs),
            default=FLUSH_EVERY,
        )
        #: some output reads every exchange (not only the sampled traces)
        self.recording = keep is not _none
        self._clock = clock
        self.pending: deque[ExchangeRecord] = deque()
        #: records the shared queue dropped (lost to every output)
        self.dropped = 0
        #: records an output lost to its write errors here, by output
        self._failed = {output.name: 0 for output in self.outputs}
        self._warnings = SparseWarnings(log, clock)
        self._full = FullLines()
        self._periodic = [output for output in self.outputs if isinstance(output, Periodic)]
        #: seconds between ticks of the periodic outputs (None: none has one)
        self._interval = min((o.interval for o in self._periodic), default=None)
        self._next_tick = 0.0
        self._idle = False  # the writer waits for `_wake`
        self._wake = threading.Event()
        self._reopen = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- on the event loop ------------------------------------------------------------

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
        if self._idle and len(pending) >= self._wake_at:
            self._idle = False
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        self._warnings.warn(
            "queue",
            "%s queue full (%d records): %d records dropped so far",
            " and ".join(output.name.replace("_", " ") for output in self.outputs),
            self.limit,
            self.dropped,
        )

    def reopen(self) -> None:
        """Have the outputs reopen their files before the next write (SIGUSR1,
        after logrotate moved them)."""
        self._reopen = True
        self._idle = False
        self._wake.set()

    @property
    def failed(self) -> dict[str, int]:
        """What each output lost on its own, by output: its writes that failed, and
        what the queue of its own (if it has one) dropped or failed to deliver.
        Added to :attr:`dropped`, every record (or line, or span) it lost."""
        lost = {}
        for output in self.outputs:
            own = output.status()
            lost[output.name] = (
                self._failed[output.name] + own.get("dropped", 0) + own.get("failed", 0)
            )
        return lost

    def status(self) -> dict[str, dict[str, Any]]:
        """For the worker's status document: a section per output, its own queue's
        counts (if it has one) added to the shared queue's."""
        queued = len(self.pending)
        sections = {}
        for output in self.outputs:
            own = output.status()
            sections[output.name] = {
                **own,
                "queued": queued + own.get("queued", 0),
                "dropped": self.dropped + own.get("dropped", 0),
                "failed": self._failed[output.name] + own.get("failed", 0),
            }
        return sections

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the outputs (an error here stops the worker's start) and start the
        writer thread."""
        opened: list[RecordOutput] = []
        try:
            for output in self.outputs:
                output.open()
                opened.append(output)
        except BaseException:
            for output in opened:
                output.close()
            raise
        self._thread = threading.Thread(target=self._run, name="quiver-records", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread, closing the outputs."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # (stuck on a write: closing is its job)
                return
            self._thread = None

    # -- on the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        pending = self.pending
        interval = self._interval
        self._next_tick = self._clock() + (interval or 0.0)
        try:
            while True:
                if not pending and not self._reopen:
                    if self._stopping:
                        return
                    self._idle = True
                    if not pending and not self._reopen and not self._stopping:  # (no lost wake)
                        wait = self.flush_every
                        if interval is not None:
                            wait = min(wait, self._next_tick - self._clock())
                        self._wake.wait(wait)
                    self._wake.clear()
                    self._idle = False
                if interval is not None and self._clock() >= self._next_tick:
                    self._next_tick = self._clock() + interval
                    for periodic in self._periodic:
                        self._guarded(periodic, periodic.tick, 0)
                if self._reopen:
                    self._reopen = False
                    for output in self.outputs:
                        self._guarded(output, output.reopen, 0)
                records: list[ExchangeRecord] = []
                while pending and len(records) < _BATCH:
                    records.append(pending.popleft())
                if records:
                    batch = Batch(records, self._full)
                    for output in self.outputs:
                        self._guarded(output, functools.partial(output.write, batch), len(batch))
        finally:
            for output in self.outputs:
                self._guarded(output, output.close, 0)

    def _guarded(self, output: RecordOutput, work: Callable[[], None], records: int) -> None:
        """Run ``work`` of ``output``; a failure loses its records for that output
        (counted), never the thread."""
        try:
            work()
        except Exception as exc:  # a full disk, a closed socket, a bad value
            self._failed[output.name] += records
            self._warnings.warn(
                output.name,
                "%s not written (%d records lost so far): %s",
                output.name.replace("_", " "),
                self._failed[output.name],
                exc,
            )


def writer_for(
    access_log: AccessLog | None,
    call_log: CallLogSettings,
    calls_dir: Path | None,
    metrics: MetricsOutput | None = None,
    tracing: Tracing | None = None,
) -> RecordWriter | None:
    """A worker's writer for the outputs its settings ask for: the access log, the
    call spool in ``calls_dir`` (where the admin sidecar ingests them; None when no
    sidecar does), the request counters (``metrics``) and the spans of sampled
    exchanges (``tracing``).  None when there is none: no records are made then.

    The shared queue holds the most records any output's settings ask for, and at
    least ``DEFAULT_QUEUE`` for the request counters and the spans, so that a small
    ``access_log.queue`` (which bounds the access log's own queue of lines) never
    makes them lose records."""
    outputs: list[RecordOutput] = []
    queues: list[int] = []
    if calls_dir is not None and call_log.enabled:
        outputs.append(CallSpool(calls_dir, max_size=call_log.spool_size))
        queues.append(call_log.queue)
    if metrics is not None or tracing is not None:
        queues.append(DEFAULT_QUEUE)
    if metrics is not None:
        outputs.append(metrics)
    keep = None
    if access_log is not None:
        # the only output, sampling: the draw is made on the loop, before any record
        alone = not outputs and tracing is None and access_log.sample < 1.0
        output = AccessLogOutput(access_log, drawn=alone)
        keep = output.wants if alone else None
        outputs.append(output)
        queues.append(access_log.queue)
    recording = bool(outputs)  # (these outputs read every exchange)
    if tracing is not None:
        # opentelemetry-proto (the otel extra) is imported only for a process that traces
        from quiver.observe.tracing import TracingOutput

        outputs.append(TracingOutput(tracing))
        if not recording:  # only the sampled exchanges get records
            keep = _none
    if not outputs:
        return None
    query = access_log is not None and access_log.query
    return RecordWriter(outputs, queue=max(queues, default=DEFAULT_QUEUE), query=query, keep=keep)


def _none(status: int) -> bool:
    """No exchange gets a record for its status (a sampled trace still does)."""
    return False
