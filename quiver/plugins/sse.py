"""Server-sent events for ``response_body`` phases: an incremental splitter.

A ``text/event-stream`` body reaches a ``response_body`` phase in pieces cut
anywhere (inside a line, between a CR and its LF, inside a UTF-8 sequence).  The
:class:`EventSplitter` takes those pieces and hands back whole events, each with
its fields read (HTML Living Standard, 9.2.6, "Interpreting an event stream") and
the exact bytes it came as, so a phase can pass events on unchanged, drop them or
write its own in their place::

    def response_body(self, request, chunk, last):
        splitter = request.ctx.setdefault(self.name, EventSplitter())
        out = []
        for event in splitter.feed(chunk):
            if event.event != "debug":
                out.append(event.raw)
        if last:
            out.append(splitter.rest())
        return b"".join(out)

What a phase holds back (the part of an event not yet complete) is sent on with
the event once its blank line comes.  Lines end with CRLF, LF or CR; a UTF-8 BOM
opening the stream is skipped (it stays in ``raw``); ``data`` lines of one event
are joined with LF.  Every block that a blank line ends is handed out, also one
with no ``data`` line (comments alone, a heartbeat): its ``data`` is None, and a
browser would not dispatch it.  An event of more than ``max_event`` bytes raises
:class:`EventTooLarge`, whether it came whole or is still growing (in a phase: the
client is cut off, its response having begun).  The ``raw`` of the events and
:meth:`EventSplitter.rest` together are the stream, byte for byte; one thing moves
between events: when a piece ends with the CR of an event's blank line, the event
is handed out at once (a stream of CR line ends is not held back), and the LF that
may follow it, pairing with that CR, opens the next event's ``raw``.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EventSplitter", "EventTooLarge", "SSEEvent", "is_event_stream", "render_event"]

_BOM = b"\xef\xbb\xbf"
_CR, _LF = 13, 10
MAX_EVENT = 1024 * 1024


def is_event_stream(content_type: bytes | None) -> bool:
    """Whether a Content-Type value names ``text/event-stream`` (parameters aside)."""
    if content_type is None:
        return False
    return content_type.partition(b";")[0].strip().lower() == b"text/event-stream"


class EventTooLarge(ValueError):
    """An event grew past the splitter's ``max_event`` bytes before it ended."""


class SSEEvent(NamedTuple):
    """One block of an event stream, up to and including the blank line that ends it."""

    raw: bytes  # the bytes as they came (concatenated, the ``raw`` of all blocks is the stream)
    data: str | None  # the data lines joined with LF; None when there was none
    event: str | None  # the event type (None: "message")
    id: str | None  # this block's own ``id`` field ("" resets the last event id)
    retry: int | None  # the reconnection time in milliseconds, when given
    comments: tuple[str, ...]  # the comment lines (":" and one space dropped)


def render_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comments: tuple[str, ...] = (),
) -> bytes:
    """An event on the wire (LF line ends), fields in the usual order."""
    lines = [f": {comment}" for comment in comments]
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if data is not None:
        lines += [
            f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        ]
    return ("\n".join(lines) + "\n\n").encode()


class EventSplitter:
    """Splits one event stream into :class:`SSEEvent` values; one per stream."""

    __slots__ = (
        "_buffer",
        "_comments",
        "_data",
        "_event",
        "_id",
        "_pos",
        "_retry",
        "_skip_lf",
        "_started",
        "last_event_id",
        "max_event",
    )

    def __init__(self, max_event: int | None = MAX_EVENT) -> None:
        #: most bytes one event may take before its blank line (None: no limit)
        self.max_event = max_event
        #: the last event id the stream set (what a client would send as Last-Event-ID)
        self.last_event_id = ""
        self._buffer = b""  # the raw bytes of the event being read
        self._pos = 0  # where in ``_buffer`` the next unread line starts
        self._skip_lf = False  # a CR ended the last line: an LF right after it pairs
        self._started = False  # the stream's start (and a BOM there) is behind us
        self._data: list[bytes] = []
        self._event: bytes | None = None
        self._id: bytes | None = None
        self._retry: int | None = None
        self._comments: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that ``chunk`` completes (possibly none)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        pos = self._pos
        size = len(buffer)
        if not self._started:
            if size < 3 and _BOM.startswith(buffer):
                self._buffer = buffer  # maybe a BOM, not whole yet
                return []
            self._started = True
            if buffer.startswith(_BOM):
                pos = 3
        if self._skip_lf and pos < size:
            self._skip_lf = False
            if buffer[pos] == _LF:
                pos += 1
        events: list[SSEEvent] = []
        limit = self.max_event
        start = 0  # where the raw bytes of the event being read begin
        find = buffer.find
        next_cr = find(b"\r", pos)
        next_lf = find(b"\n", pos)
        while next_cr >= 0 or next_lf >= 0:
            if next_lf < 0 or 0 <= next_cr < next_lf:
                end = next_cr
                if end + 1 < size:
                    after = end + 2 if buffer[end + 1] == _LF else end + 1
                else:
                    after = end + 1
                    self._skip_lf = True
                next_cr = find(b"\r", end + 1)
                if after > next_lf >= 0:
                    next_lf = find(b"\n", after)
            else:
                end = next_lf
                after = end + 1
                next_lf = find(b"\n", after)
            if end > pos:
                self._line(buffer[pos:end])
            else:
                raw = buffer[start:after]
                if limit is not None and len(raw) > limit:
                    raise EventTooLarge(f"an event of the stream exceeds {limit} bytes")
                events.append(self._dispatch(raw))
                start = after
            pos = after
        if start:
            buffer = buffer[start:]
            pos -= start
        self._buffer = buffer
        self._pos = pos
        if limit is not None and len(buffer) > limit:
            raise EventTooLarge(f"an event of the stream exceeds {limit} bytes")
        return events

    def rest(self) -> bytes:
        """At the stream's end: the bytes of an event it did not finish (a client
        drops such an event), and the splitter starts over."""
        rest = self._buffer
        self._buffer = b""
        self._pos = 0
        self._clear()
        return rest

    def _line(self, line: bytes) -> None:
        if line[0] == 58:  # ":" a comment
            self._comments.append(line[2:] if line[1:2] == b" " else line[1:])
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id" and b"\0" not in value:
            self._id = value
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # other field names are ignored, as a client ignores them

    def _dispatch(self, raw: bytes) -> SSEEvent:
        data = self._data
        event_id = None if self._id is None else self._id.decode("utf-8", "replace")
        if event_id is not None:
            self.last_event_id = event_id
        event = SSEEvent(
            raw,
            b"\n".join(data).decode("utf-8", "replace") if data else None,
            None if self._event is None else self._event.decode("utf-8", "replace"),
            event_id,
            self._retry,
            tuple(c.decode("utf-8", "replace") for c in self._comments),
        )
        self._clear()
        return event

    def _clear(self) -> None:
        if self._data:
            self._data = []
        if self._comments:
            self._comments = []
        self._event = self._id = self._retry = None
