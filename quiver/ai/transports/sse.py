"""Server-sent events: an incremental parser and a writer (HTML Living Standard, 9.2.6).

The parser takes the body as it arrives, in chunks cut anywhere (inside a line, inside
a CRLF, inside a UTF-8 sequence), and returns the events completed so far::

    parser = SSEParser()
    for piece in body_chunks:
        for event in parser.feed(piece):
            handle(event.event, event.data)

Lines end with CRLF, LF or CR; ``data`` lines of one event are joined with LF; comment
lines (``:``) and unknown fields are skipped; an event without data is not dispatched;
``id`` persists from event to event as the last event id, as the standard says.
"""

from __future__ import annotations

from typing import NamedTuple

from quiver.plugins.sse import EventSplitter

__all__ = ["Event", "SSEParser", "event"]


class Event(NamedTuple):
    """One dispatched event: its type (None = "message"), its data, the last event id."""

    event: str | None
    data: str
    id: str | None


class SSEParser:
    """Turns a byte stream into :class:`Event` values; one parser per stream (the
    splitting is :class:`quiver.plugins.sse.EventSplitter`'s, the one the proxy's
    plugins use)."""

    __slots__ = ("_id", "_splitter")

    def __init__(self) -> None:
        self._splitter = EventSplitter(max_event=None)  # (the provider's stream: no limit)
        self._id: str | None = None

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data`` (possibly none)."""
        events: list[Event] = []
        for block in self._splitter.feed(data):
            if block.id is not None:
                self._id = block.id
            if block.data is not None:
                events.append(Event(block.event, block.data, self._id))
        return events


def event(data: bytes, name: bytes | None = None) -> bytes:
    """One event on the wire: ``event:`` (when named), a ``data:`` line per line, a blank line."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    if name is None:
        return body + b"\n"
    return b"event: " + name + b"\n" + body + b"\n"
