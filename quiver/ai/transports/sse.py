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

__all__ = ["Event", "SSEParser", "event"]


class Event(NamedTuple):
    """One dispatched event: its type (None = "message"), its data, the last event id."""

    event: str | None
    data: str
    id: str | None


class SSEParser:
    """Turns a byte stream into :class:`Event` values; one parser per stream."""

    __slots__ = ("_buffer", "_data", "_event", "_first", "_id", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None
        self._id: str | None = None
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one pairs
        self._first = True  # a UTF-8 BOM at the very start of the stream is dropped

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data`` (possibly none)."""
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        buffer = self._buffer + data if self._buffer else data
        if self._first:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                self._buffer = buffer
                return []
            self._first = False
            if buffer.startswith(b"\xef\xbb\xbf"):
                buffer = buffer[3:]
        if b"\r" in buffer:
            lines = buffer.replace(b"\r\n", b"\n").split(b"\n")
            # a CR is a line end of its own; a trailing CR may be half of a CRLF
            if lines[-1].endswith(b"\r"):
                self._skip_lf = True
                lines[-1] = lines[-1][:-1]
                lines.append(b"")
            expanded: list[bytes] = []
            for line in lines[:-1]:
                expanded.extend(line.split(b"\r"))
            tail = lines[-1].split(b"\r")
            expanded.extend(tail[:-1])
            self._buffer = tail[-1]
            lines = expanded
        else:
            lines = buffer.split(b"\n")
            self._buffer = lines.pop()
        events: list[Event] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(
                        Event(
                            self._event.decode("utf-8", "replace") if self._event else None,
                            b"\n".join(self._data).decode("utf-8", "replace"),
                            self._id,
                        )
                    )
                    self._data = []
                self._event = None
                continue
            if line[0] == 58:  # ":" comment
                continue
            name, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            elif name == b"id" and b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
            # "retry" and unknown fields: nothing a proxy needs
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
