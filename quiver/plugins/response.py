"""The response head as ``response_headers`` plugins see and change it."""

from __future__ import annotations


class ResponseHead:
    """Status and header fields of a response from a node, before the client gets them.

    Names compare case-insensitively; values are bytes as sent.  Framing fields
    (Content-Length, Transfer-Encoding, Connection) are the proxy's to manage: a
    plugin should leave them alone.
    """

    __slots__ = ("fields", "status", "status_line")

    def __init__(self, raw: bytes) -> None:
        lines = raw[:-4].split(b"\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(b" ", 2)[1])
        self.fields: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.fields.append((name, value.strip(b" \t")))

    def get(self, name: bytes) -> bytes | None:
        lname = name.lower()
        values = [value for field, value in self.fields if field.lower() == lname]
        return b", ".join(values) if values else None

    def add(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def set(self, name: bytes, value: bytes) -> None:
        self.remove(name)
        self.fields.append((name, value))

    def remove(self, name: bytes) -> None:
        lname = name.lower()
        self.fields = [(field, value) for field, value in self.fields if field.lower() != lname]

    def render(self) -> bytes:
        parts = [self.status_line, b"\r\n"]
        for name, value in self.fields:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)
