"""W3C Trace Context: the ``traceparent`` and ``tracestate`` fields, read and written.

``traceparent`` names the trace a request belongs to and the span that sent it
(https://www.w3.org/TR/trace-context/ §3.2)::

    00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
    version-trace id (32 hex)---------parent id (16 hex)-flags (bit 0: sampled)

Ids stay the lowercase hex bytes they are on the wire: the gateway only compares
and copies them; whoever exports spans turns them into numbers, off the hot path.
"""

from __future__ import annotations

import re

TRACEPARENT = b"traceparent"
TRACESTATE = b"tracestate"

# version 00 exactly (§3.2.2.1-§3.2.2.5): lowercase hex only, nothing after the flags
_VERSION_00 = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")
# a later version (§4.3): its first fields read as version 00's, and either the value
# ends after the flags or a "-" begins what that version adds
_LATER_VERSION = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|\Z)")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
SAMPLED = 0x01  # the only flag version 00 defines (§3.2.2.5)

#: tracestate is passed on whole up to this size, the least the spec has vendors keep
#: (§3.3.1.5); a longer one loses entries
MAX_TRACESTATE = 512
_LARGE_ENTRY = 128  # entries this long go first when tracestate must shrink (§3.3.1.5)


class Parent:
    """A valid ``traceparent`` as received: the caller's trace and span."""

    __slots__ = ("flags", "span_id", "trace_id")

    def __init__(self, trace_id: bytes, span_id: bytes, flags: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)


class TraceContext:
    """The trace of a sampled exchange: the ids and facts its spans are made of.

    The gateway's own span (``span_id``) is the child of the caller's (``parent_id``,
    None for a new trace); the span of the upstream call's current try
    (``upstream_id``) is the child of the gateway's, and the parent the node was told
    of.  ``scheme``, ``host``, ``query`` and ``version`` are the request's (``host``
    as sent, None without one; ``query`` without its ``?``, empty without one).
    """

    __slots__ = (
        "host",
        "parent_id",
        "query",
        "route",
        "scheme",
        "span_id",
        "state",
        "trace_id",
        "tries",
        "upstream_id",
        "version",
    )

    def __init__(
        self,
        trace_id: bytes,
        span_id: bytes,
        upstream_id: bytes,
        parent_id: bytes | None,
        scheme: bytes = b"http",
        host: bytes | None = None,
        query: bytes = b"",
        version: bytes = b"1.1",
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.upstream_id = upstream_id
        self.parent_id = parent_id
        self.scheme = scheme
        self.host = host
        self.query = query
        self.version = version
        self.state: bytes | None = None  # tracestate, as passed on (None: none)
        #: the route's path pattern, the semantic conventions' ``http.route`` (None:
        #: not routed, or the route has no single pattern that is not a regex)
        self.route: str | None = None
        #: the tries of the upstream call, in order, as the exchange ended (empty: no
        #: node was asked)
        self.tries: list[Try] = []


class Try:
    """One try of a sampled exchange's upstream call: what its span is made of.

    ``start`` and ``end`` are seconds after the request head was read (``end`` None:
    the try lasted until the exchange ended); ``url`` is the node's
    (``http://host:port``), ``target`` the path and query it was sent.  ``error``
    names how the try failed (``timeout``, ``connect_error``, ``503``, ...; None: it
    did not); ``status`` is what the node answered (None: nothing, or the exchange's
    status when the try is its last).
    """

    __slots__ = ("attempt", "end", "error", "span_id", "start", "status", "target", "url")

    def __init__(
        self,
        attempt: int,
        span_id: bytes,
        url: str,
        target: bytes,
        start: float,
        end: float | None = None,
        error: str | None = None,
        status: int | None = None,
    ) -> None:
        self.attempt = attempt  # 1 for the first try
        self.span_id = span_id  # the parent id the node was told of
        self.url = url
        self.target = target
        self.start = start
        self.end = end
        self.error = error
        self.status = status


def parse_traceparent(value: bytes) -> Parent | None:
    """The caller's trace, or None when ``value`` is not a valid ``traceparent``
    (the trace then restarts: §4.3, "If the vendor failed to parse traceparent")."""
    match = _VERSION_00.match(value)
    if match is not None:
        trace_id, span_id, flags = match.group(1, 2, 3)
        known = 0xFF  # flags this version does not define are passed on as they came
    else:
        match = _LATER_VERSION.match(value)
        # version ff is forbidden; a later version only from 55 characters on (§4.3)
        if match is None or match.group(1) in (b"00", b"ff"):
            return None
        trace_id, span_id, flags = match.group(2, 3, 4)
        known = SAMPLED  # a later version's other flags mean nothing in version 00
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return Parent(trace_id, span_id, int(flags, 16) & known)


def bounded_tracestate(value: bytes) -> bytes:
    """``value`` as passed on: whole when it is short enough, else without its
    largest entries, then its last ones, until it is (§3.3.1.5)."""
    if len(value) <= MAX_TRACESTATE:
        return value
    entries = [entry.strip(b" \t") for entry in value.split(b",")]
    entries = [entry for entry in entries if entry and len(entry) <= _LARGE_ENTRY]
    while entries and len(b",".join(entries)) > MAX_TRACESTATE:
        entries.pop()
    return b",".join(entries)


def traceparent(trace_id: bytes, span_id: bytes, flags: int) -> bytes:
    """A version 00 ``traceparent`` value."""
    return b"00-%s-%s-%02x" % (trace_id, span_id, flags)
