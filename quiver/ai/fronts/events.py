"""The data of server-sent events as a relayed stream goes by (WHATWG HTML, section
9.2.6 "Interpreting an event stream"): lines end in CRLF, LF or CR, ``data:`` lines
of one event are joined by LF, a blank line ends the event, comments are skipped.

The fronts only look into events (for usage, or to drop what the client did not ask
for); what they forward is the provider's bytes or events they write themselves.
"""

from __future__ import annotations


class EventSplitter:
    """Feeds on stream pieces cut anywhere; gives ``(event name, data)`` per event."""

    __slots__ = ("_buffer", "_data", "_name")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._name: bytes | None = None

    def feed(self, piece: bytes) -> list[tuple[bytes | None, bytes]]:
        buffer = self._buffer + piece
        if b"\r" in buffer:
            # a CR at the very end may be the first half of a CRLF: keep it for later
            held = buffer.endswith(b"\r")
            text = buffer[:-1] if held else buffer
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = text.split(b"\n")
            self._buffer = lines.pop() + (b"\r" if held else b"")
        else:
            lines = buffer.split(b"\n")
            self._buffer = lines.pop()
        events: list[tuple[bytes | None, bytes]] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._name, b"\n".join(self._data)))
                self._data = []
                self._name = None
                continue
            field, colon, value = line.partition(b":")
            if not colon or not field:
                if not field:
                    continue  # a comment
                value = b""
            elif value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value)
            elif field == b"event":
                self._name = value
        return events
