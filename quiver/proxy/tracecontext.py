"""Trace context on every request when tracing is on: taken from the caller, or begun.

When the ``tracing`` setting is on, a worker's field names treat ``traceparent``
and ``tracestate`` as fields the proxy reads (``FieldNames(traced=True)``): they
are not copied upstream, and the request head keeps their values.  Once the head
is complete, :meth:`Propagator.begin` adds the fields the node gets instead: the
same trace (or a new one), with the gateway's upstream call as parent (W3C Trace
Context §3.2, §3.3).  A sampled exchange also gets its :class:`TraceContext`, from
which its spans are made later, off the event loop (:mod:`quiver.observe.tracing`).

Most requests are new traces that are not sampled, and for them only the field is
made, as cheaply as Python allows: a sample is drawn as the gap to the next sampled
request (one draw per sampled request, not one per request), trace ids are made a
thousand at a time, and the parent the node is told of is one id per worker (no
span is recorded under it: any non-zero id will do, §3.2.2.4).

The tries of a sampled exchange's upstream call are noted for their spans: one
that fails (:func:`try_failed`, on the way to its retry or error), a retry (which
also tells the node of the new try's span: :meth:`Propagator.retry`), and the last
one when the exchange ends (:func:`trace_ended`, as its record is made).  None of
it runs for an exchange that is not sampled.

Without the setting there is no propagator, the fields pass upstream like any
other, and a request pays for none of this.
"""

from __future__ import annotations

import math
import os
import random
from binascii import b2a_hex
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from quiver.config.tracing import Tracing
from quiver.http.tracecontext import (
    SAMPLED,
    TRACEPARENT,
    TRACESTATE,
    Parent,
    TraceContext,
    Try,
    bounded_tracestate,
    parse_traceparent,
    traceparent,
)

if TYPE_CHECKING:
    from quiver.proxy.exchange import Exchange

_BULK = 1024  # trace ids made at once, at most
#: the last bit of each id of a sampled trace set, so that none is all zeros (invalid)
_NON_ZERO = (1 << 128) | (1 << 64) | 1


class Propagator:
    """A worker's trace decisions: ``begin`` runs once per request head.

    ``fresh`` holds the fields of the next new traces, up to the next one sampled;
    the worker takes the usual case, a new trace that is not sampled, from it
    without a call.  ``rng`` draws the sample (uniform in [0, 1)), ``bits`` the ids
    of sampled traces and spans, ``randbytes`` those of the unsampled new traces made
    ahead (tests give their own; the random module reseeds in each forked worker, and
    ``os.urandom`` needs no seed).
    """

    def __init__(
        self,
        settings: Tracing,
        *,
        rng: Callable[[], float] = random.random,
        bits: Callable[[int], int] = random.getrandbits,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.sample = settings.sample
        self.respect_parent = settings.respect_parent
        self._rng = rng
        self._bits = bits
        self._randbytes = randbytes
        self._log_unsampled = math.log1p(-self.sample) if 0.0 < self.sample < 1.0 else 0.0
        #: ``-<parent id>-00``: how the upstream field of every unsampled new trace ends
        self._unsampled_tail = b"-%016x-00" % (bits(64) | 1)
        #: the traceparent values of unsampled new traces, made ahead (taken from the end)
        self.fresh: list[bytes] = []
        #: unsampled new traces before the next sampled one, beyond those in ``fresh``
        self._ahead: float = self._gap() - 1

    def begin(self, exchange: Exchange) -> None:
        """Add the trace context fields ``exchange`` carries upstream (and its
        TraceContext, when sampled)."""
        received = exchange.traceparent
        if received is None:
            if not self.fresh and self._ahead:
                self._refill()
            if self.fresh:
                exchange.forward.append((TRACEPARENT, self.fresh.pop()))
                return
            self._sampled(exchange, None)
            self._ahead = self._gap() - 1
            return
        parent = parse_traceparent(received)
        if parent is None:  # invalid: a new trace (its tracestate goes with it, §3.3.1)
            exchange.traceparent = None
            self.begin(exchange)
            return
        if parent.sampled if self.respect_parent else self._rng() < self.sample:
            self._sampled(exchange, parent)
            return
        span_id = b"%016x" % (self._bits(64) | 1)
        flags = parent.flags & ~SAMPLED
        exchange.forward.append((TRACEPARENT, traceparent(parent.trace_id, span_id, flags)))
        self._forward_state(exchange)

    def _sampled(self, exchange: Exchange, parent: Parent | None) -> None:
        """A sampled exchange: its spans' ids and times are kept for its record."""
        ids = b2a_hex((self._bits(256) | _NON_ZERO).to_bytes(32))
        if parent is None:
            trace_id, parent_id, flags = ids[:32], None, SAMPLED
        else:
            trace_id, parent_id, flags = parent.trace_id, parent.span_id, parent.flags | SAMPLED
        trace = TraceContext(
            trace_id,
            ids[32:48],
            ids[48:],
            parent_id,
            exchange.client.scheme,
            exchange.host_header,
            exchange.query,
            exchange.version,
        )
        exchange.trace = trace
        if not exchange.began:  # (read already when every exchange is recorded)
            exchange.began = monotonic()
        exchange.forward.append((TRACEPARENT, traceparent(trace_id, trace.upstream_id, flags)))
        if parent is not None:
            trace.state = self._forward_state(exchange)

    def retry(self, exchange: Exchange, kind: str) -> None:
        """A sampled exchange's try failed with ``kind`` and is tried again: a try the
        node answered (``kind`` its status) is noted now, one that failed otherwise
        was already (:func:`try_failed`); the next try is a span of its own, its id
        the parent the node is told of this time."""
        trace = exchange.trace
        assert trace is not None
        if kind.isdigit():
            _note_try(exchange, trace, kind, int(kind))
        trace.upstream_id = span_id = b"%016x" % (self._bits(64) | 1)
        forward = exchange.forward
        for index, (name, value) in enumerate(forward):
            if name == TRACEPARENT:  # 00-<trace id>-<parent id>-<flags>
                forward[index] = (TRACEPARENT, value[:36] + span_id + value[52:])
                break
        exchange.connecting_at = 0.0

    def _forward_state(self, exchange: Exchange) -> bytes | None:
        """Pass the caller's tracestate on (bounded), with its valid traceparent."""
        state = exchange.tracestate
        if state is None:
            return None
        state = bounded_tracestate(state)
        if state:
            exchange.forward.append((TRACESTATE, state))
        return state or None

    def _gap(self) -> float:
        """How many new traces until the next sampled one, itself included: each is
        sampled with probability ``sample``, so the gap is geometric (drawn by
        inverse transform: one draw per sampled trace, not one per request)."""
        if self.sample >= 1.0:
            return 1.0
        if self.sample <= 0.0:
            return math.inf
        return math.floor(math.log1p(-self._rng()) / self._log_unsampled) + 1

    def _refill(self) -> None:
        """Make the upstream fields of the next unsampled new traces at once: one
        draw of bytes (no detour through an integer), and C loops rather than Python
        per field."""
        count = int(min(self._ahead, _BULK))
        self._ahead -= count
        ids = b2a_hex(self._randbytes(16 * count), b" ", 16)  # "id id ..."
        tail = self._unsampled_tail
        self.fresh = (b"00-" + ids.replace(b" ", tail + b" 00-") + tail).split(b" ")


# -- the tries of a sampled exchange, noted for their spans (off the usual path) -------


def try_failed(exchange: Exchange, kind: str) -> None:
    """A try of a sampled exchange failed (to connect, or after it was sent):
    ``kind`` names how (``connect_error``, ``timeout``, ...)."""
    trace = exchange.trace
    assert trace is not None
    status = exchange.status if exchange.response_started else None
    _note_try(exchange, trace, kind, status)


def trace_ended(exchange: Exchange) -> None:
    """A sampled exchange ended: its route's pattern and its last try (unless it
    failed, noted then) go to its trace."""
    trace = exchange.trace
    assert trace is not None
    route = exchange.route
    trace.route = route.http_route if route is not None else None
    tries = trace.tries
    if exchange.node is not None and not (tries and tries[-1].attempt == exchange.attempt):
        start = _try_start(exchange, tries)
        if start is not None:
            node = exchange.node
            trace.tries.append(
                Try(exchange.attempt, trace.upstream_id, node.url, exchange.upstream_path, start)
            )


def _note_try(exchange: Exchange, trace: TraceContext, kind: str, status: int | None) -> None:
    node = exchange.node
    start = _try_start(exchange, trace.tries)
    if node is None or start is None:
        return
    end = monotonic() - exchange.began
    trace.tries.append(
        Try(
            exchange.attempt,
            trace.upstream_id,
            node.url,
            exchange.upstream_path,
            start,
            end,
            kind,
            status,
        )
    )


def _try_start(exchange: Exchange, tries: list[Try]) -> float | None:
    """When the exchange's current try began, in seconds after its head was read:
    when it began to connect, else when it was sent on a pooled connection; None
    when it has not begun (the client left while a retry waited, say)."""
    if exchange.connecting_at:
        return exchange.connecting_at - exchange.began
    if exchange.upstream_at:
        start = exchange.upstream_at - exchange.began
        if not tries or start >= (tries[-1].end or 0.0):
            return start
    return None
