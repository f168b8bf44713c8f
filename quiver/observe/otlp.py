"""OTLP spans in protobuf, written directly: the few messages a span export needs.

An OTLP/HTTP trace export is an ``ExportTraceServiceRequest`` (opentelemetry-proto,
``collector/trace/v1``): resource spans holding a resource, and scope spans holding
an instrumentation scope and the spans (``trace/v1/trace.proto``).  Encoding them
here, from the values as they are, costs a small share of what building the SDK's
span objects and having its exporter encode them does (a sampled exchange would
otherwise cost more than the requests of the 99 that are not).  Only what spans
use is here: length-delimited fields, varints and fixed64 times, in the protobuf
wire format (https://protobuf.dev/programming-guides/encoding/).  The tests decode
what this writes with the generated classes of opentelemetry-proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

# Span.SpanKind and Status.StatusCode (trace.proto)
SERVER = 2
CLIENT = 3
STATUS_ERROR = 2

_TIMES = struct.Struct("<BQBQ")  # start_time_unix_nano (7) and end_time_unix_nano (8)
_ERROR_STATUS = b"\x7a\x02\x18%c" % STATUS_ERROR  # Span.status (15) {code (3)}


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (number << 3 | 2), the length, the bytes."""
    size = len(payload)
    if size < 0x80:  # a one-byte length
        return b"%c%c%s" % (tag, size, payload)
    return b"%c%s%s" % (tag, varint(size), payload)


def key(name: str) -> bytes:
    """The ``key`` field of a KeyValue, made once per attribute name."""
    return field(0x0A, name.encode())


def text(name: bytes, value: bytes) -> bytes:
    """A span attribute (Span.attributes, 9) holding a string; ``name`` from :func:`key`."""
    size = len(value)
    if size + len(name) < 124:  # every length fits one byte (the usual case, spelled out)
        return b"\x4a%c%s\x12%c\x0a%c%s" % (size + len(name) + 4, name, size + 2, size, value)
    return field(0x4A, name + field(0x12, field(0x0A, value)))


def number(name: bytes, value: int) -> bytes:
    """A span attribute holding a non-negative integer (AnyValue.int_value, 3)."""
    encoded = varint(value)
    return b"\x4a%c%s\x12%c\x18%s" % (len(name) + len(encoded) + 3, name, len(encoded) + 1, encoded)


def span(
    trace_id: bytes,
    span_id: bytes,
    parent_id: bytes | None,
    state: bytes | None,
    name: bytes,
    kind: int,
    start: int,
    end: int,
    attributes: bytes,
    error: bool,
) -> bytes:
    """One Span message (ids as raw bytes, times in ns since the epoch, ``attributes``
    the joined fields :func:`text` and :func:`number` make); framed as a
    ScopeSpans.spans field (2), ready to join."""
    body = b"".join(
        (
            b"\x0a\x10",
            trace_id,
            b"\x12\x08",
            span_id,
            field(0x1A, state) if state else b"",
            b"\x22\x08" + parent_id if parent_id is not None else b"",
            field(0x2A, name),
            b"\x30%c" % kind,
            _TIMES.pack(0x39, start, 0x41, end),
            attributes,
            _ERROR_STATUS if error else b"",
        )
    )
    return field(0x12, body)


class Envelope:
    """What surrounds the spans of every export from one process: the Resource (its
    attributes: ``service.name``, ...) and the InstrumentationScope; made once."""

    def __init__(self, resource: Iterable[tuple[str, str]], scope: str, version: str) -> None:
        attributes = b"".join(
            field(0x0A, key(name) + field(0x12, field(0x0A, value.encode())))
            for name, value in resource
        )
        self.resource = field(0x0A, attributes)  # ResourceSpans.resource (1)
        # ScopeSpans.scope (1): InstrumentationScope {name (1), version (2)}
        self.scope = field(0x0A, field(0x0A, scope.encode()) + field(0x12, version.encode()))

    def request(self, spans: list[bytes]) -> bytes:
        """An ExportTraceServiceRequest of ``spans`` (as :func:`span` made them):
        one ResourceSpans (1) holding one ScopeSpans (2)."""
        return field(0x0A, self.resource + field(0x12, self.scope + b"".join(spans)))
