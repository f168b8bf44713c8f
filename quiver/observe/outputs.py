"""What a worker's records are written to: the outputs of its record writer.

An output (the access log, the call spool, ...) gets every record the worker
made, a batch at a time, on the writer thread (quiver.observe.writer); what it
keeps of them (the access log's sampling) it decides there, never on the event
loop.  Several outputs often write the same JSON line (the access log in JSON with
every field, and the call spool): a :class:`Batch` makes it once for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from quiver.config.access_log import ACCESS_LOG_FIELDS
from quiver.observe.formats import Formatter, formatter
from quiver.observe.record import ExchangeRecord


class RecordOutput(Protocol):
    """One destination of records.  All but ``open`` and ``status`` run on the
    writer thread; ``status`` is read from the event loop (plain counters).  An
    output whose records may wait longer than the writer's usual round (the spans,
    exported once a second) says how long, in seconds, as ``patience``."""

    #: "access_log", "call_log", ...: its key in the worker's status document
    name: str

    def open(self) -> None:
        """Get ready (open a file...) on the worker before it serves; an error
        stops the worker's start."""

    def write(self, batch: Batch) -> None:
        """Write what it keeps of ``batch``; raise when it cannot (the batch is lost
        for this output, counted, and the writer goes on)."""

    def reopen(self) -> None:
        """Reopen files by their names (SIGUSR1); nothing where that means nothing."""

    def close(self) -> None:
        """After the last write: flush and let go."""

    def status(self) -> dict[str, Any]:
        """Its counters, for the worker's status document."""


@runtime_checkable
class Periodic(Protocol):
    """An output with work due in time rather than on records (the call spool
    finishes its file every second, so that a quiet gateway's last calls are
    ingested too): the writer thread calls ``tick`` about every ``interval``
    seconds, between batches."""

    interval: float

    def tick(self) -> None: ...


class FullLines:
    """The JSON line of every field (the access log's default, the call spool's
    only format); one per writer, as it keeps caches across lines."""

    def __init__(self) -> None:
        self.format: Formatter = formatter("json", ACCESS_LOG_FIELDS)


class Batch(list[ExchangeRecord]):
    """Records written together, with their every-field JSON lines made on first
    demand and shared by the outputs that write them."""

    __slots__ = ("_full", "_lines")

    def __init__(self, records: Iterable[ExchangeRecord], full: FullLines) -> None:
        super().__init__(records)
        self._full = full
        self._lines: list[bytes] | None = None

    def full_lines(self) -> list[bytes]:
        """One JSON line per record, every field in the access log's order."""
        if self._lines is None:
            form = self._full.format
            self._lines = [form(record) for record in self]
        return self._lines
