"""Server-sent events as an MCP server sends them (HTML Living Standard, 9.2.6).

Both HTTP transports of MCP carry JSON-RPC messages in ``text/event-stream``
bodies: the Streamable HTTP answer to a POST, and the long GET stream of the older
HTTP+SSE transport (its first event, ``endpoint``, names where to POST).  The
decoder takes the body in chunks cut anywhere and returns the events they
complete::

    decoder = EventDecoder(max_event=1 << 20)
    async for chunk in response.stream():
        for event in decoder.feed(chunk):
            handle(event.name, event.data)

Lines end with CRLF, LF or CR; the ``data`` lines of an event are joined with LF;
comments (``:`` lines, the keep-alive pings) and unknown fields are skipped; an
event without data is not dispatched.  An event (or a line) longer than
``max_event`` bytes raises :class:`EventTooLarge`, so a server cannot make the
gateway buffer without bound.
"""

from __future__ import annotations

from typing import NamedTuple


class EventTooLarge(ValueError):
    """An event grew past the decoder's limit."""


class Event(NamedTuple):
    """One dispatched event: its type (``message`` when unnamed) and its data."""

    name: str
    data: str
    id: str | None


class EventDecoder:
    """Turns one ``text/event-stream`` body into :class:`Event` values."""

    __slots__ = ("_data", "_id", "_line", "_max", "_name", "_pending_cr", "_size")

    def __init__(self, max_event: int) -> None:
        self._max = max_event
        self._line = bytearray()
        self._data: list[str] = []
        self._size = 0
        self._name = ""
        self._id: str | None = None
        self._pending_cr = False  # the last chunk ended in CR: a leading LF pairs with it

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes (possibly none)."""
        events: list[Event] = []
        start = 0
        if self._pending_cr and chunk[:1] == b"\n":
            start = 1
        self._pending_cr = False
        size = len(chunk)
        while start < size:
            ends = [i for i in (chunk.find(b"\n", start), chunk.find(b"\r", start)) if i >= 0]
            if not ends:
                self._line += chunk[start:]
                if len(self._line) > self._max:
                    raise EventTooLarge(f"an event line is longer than {self._max} bytes")
                break
            end = min(ends)
            self._line += chunk[start:end]
            event = self._end_line(bytes(self._line))
            self._line.clear()
            if event is not None:
                events.append(event)
            if chunk[end : end + 1] == b"\r":
                if end + 1 == size:
                    self._pending_cr = True
                elif chunk[end + 1 : end + 2] == b"\n":
                    end += 1
            start = end + 1
        return events

    def _end_line(self, line: bytes) -> Event | None:
        if not line:  # a blank line dispatches the event
            if not self._data:
                self._name = ""
                return None
            event = Event(self._name or "message", "\n".join(self._data), self._id)
            self._data.clear()
            self._size = 0
            self._name = ""
            return event
        if line.startswith(b":"):
            return None
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if field == b"data":
            self._size += len(value) + 1
            if self._size > self._max:
                raise EventTooLarge(f"an event is larger than {self._max} bytes")
            self._data.append(text)
        elif field == b"event":
            self._name = text
        elif field == b"id" and "\0" not in text:
            self._id = text
        return None
