"""The access log: one of a worker's record outputs (quiver.observe.writer).

On the writer thread it draws the sample (every 5xx is kept), formats the kept
records as lines and writes them to its sink in one write per batch.  When it is
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
        self.written = 0
        self.reopened = 0  # times the destination was reopened (SIGUSR1)

    def wants(self, status: int) -> bool:
        """Whether an exchange that ended with ``status`` is logged (sampling; every
        5xx is)."""
        sample = self.sample
        return sample >= 1.0 or status >= 500 or self._rng() < sample

    def open(self) -> None:
        if self._sink is None:
            self._sink = open_sink(self.settings)

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
        assert self._sink is not None
        self._sink.write(lines)
        self.written += len(lines)

    def reopen(self) -> None:
        assert self._sink is not None
        self._sink.reopen()
        self.reopened += 1

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()

    def status(self) -> dict[str, Any]:
        return {"to": self.settings.to, "written": self.written, "reopened": self.reopened}
