"""What the call log keeps of an exchange beyond the call, for the routes that ask
(``routes[].call_log.bodies``): the header fields both ways and the first
``max_body`` bytes of each body, copied as they stream by (the proxy fills it:
quiver.proxy.capture).  Redaction and encoding wait for the record writer's
thread (:func:`document`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"

Tap = Callable[[bytes, bool], None]


class Capture:
    """What one exchange keeps for its call: the fields both ways, the first ``limit``
    bytes of each body, and each body's whole size; fields named in ``redacted``
    (lowercase) are kept without their values."""

    __slots__ = (
        "limit",
        "passed_on",
        "redacted",
        "request_body",
        "request_fields",
        "request_size",
        "response_body",
        "response_fields",
        "response_size",
    )

    def __init__(
        self, limit: int, redacted: frozenset[bytes], request_fields: list[tuple[bytes, bytes]]
    ) -> None:
        self.limit = limit
        self.redacted = redacted
        #: the request's fields as they stand (plugins' changes included)
        self.request_fields = request_fields
        self.request_body = b""
        self.request_size = 0
        self.response_fields: list[tuple[bytes, bytes]] | None = None
        self.response_body = b""
        self.response_size = 0
        #: a plugin's tap (a cache's), which gets the response body after this one
        self.passed_on: Tap | None = None

    def request_chunk(self, chunk: bytes) -> None:
        self.request_size += len(chunk)
        room = self.limit - len(self.request_body)
        if room > 0:
            self.request_body += chunk[:room]

    def response_chunk(self, chunk: bytes, last: bool) -> None:
        self.response_size += len(chunk)
        room = self.limit - len(self.response_body)
        if room > 0 and chunk:
            self.response_body += chunk[:room]
        if self.passed_on is not None:
            self.passed_on(chunk, last)


def document(capture: Capture) -> dict[str, Any]:
    """The capture as the call keeps it: fields with secrets redacted, bodies as text
    (base64 when they are not UTF-8), and how long each body really was."""
    redacted = capture.redacted
    response_fields = capture.response_fields
    return {
        "request": {
            "headers": _fields(capture.request_fields, redacted),
            **_body(capture.request_body, capture.request_size),
        },
        "response": {
            "headers": _fields(response_fields, redacted) if response_fields is not None else None,
            **_body(capture.response_body, capture.response_size),
        },
    }


def _fields(fields: list[tuple[bytes, bytes]], redacted: frozenset[bytes]) -> list[list[str]]:
    return [
        [name.decode("latin-1"), REDACTED if name.lower() in redacted else value.decode("latin-1")]
        for name, value in fields
    ]


def _body(body: bytes, size: int) -> dict[str, Any]:
    try:
        return {"body": body.decode(), "encoding": "utf-8", "size": size}
    except UnicodeDecodeError:  # (binary, or UTF-8 cut in the middle of a character)
        return {"body": base64.b64encode(body).decode(), "encoding": "base64", "size": size}
