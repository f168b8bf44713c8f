"""Spans of sampled exchanges, exported over OTLP: the ``tracing`` record output.

The proxy gives a sampled exchange a :class:`~quiver.http.tracecontext.TraceContext`
(:mod:`quiver.proxy.tracecontext`) and its record carries it.  This output makes
two spans of such a record, on the writer thread: the gateway's (kind SERVER, the
child of the caller's span when there is one) and, when a node was asked, the
upstream call's (kind CLIENT, the child of the gateway's, under the id the node was
told of).  Their times are the record's, their attributes those of the HTTP
semantic conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/)
and a few of the gateway's own (``quiver.route``, ...).  Spans are made as
opentelemetry-proto messages, in place in the export request of their write
(:mod:`quiver.observe.otlp`), and exported on a thread of their own
(:mod:`quiver.observe.exporter`).
"""

from __future__ import annotations

from binascii import a2b_hex
from typing import Any

from quiver import __version__
from quiver.config.tracing import Tracing
from quiver.http.tracecontext import TraceContext
from quiver.observe.exporter import SpanExporter
from quiver.observe.otlp import (
    CLIENT,
    SERVER,
    STATUS_ERROR,
    Attributes,
    Envelope,
    Spans,
    number,
    text,
)
from quiver.observe.record import ExchangeRecord

#: methods the semantic conventions name; others are "_OTHER" (with the original)
_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH"}
)
_CLIENT_CLOSED = 499  # the record's status when the client left: nothing was answered
#: the record's names the spans carry as quiver.<name> when set
_OWN = tuple(
    (name, "quiver." + name) for name in ("route", "target", "consumer", "answered_by", "cache")
)


class TracingOutput:
    """Exports the spans of sampled exchanges; ``write`` runs on the writer thread."""

    name = "tracing"

    def __init__(self, settings: Tracing) -> None:
        resource = [("service.name", settings.service_name), ("service.version", __version__)]
        self.envelope = Envelope(resource, "quiver", __version__)
        self.exporter = SpanExporter(settings.otlp, limit=settings.queue)

    def open(self) -> None:
        self.exporter.start()

    def write(self, batch: list[ExchangeRecord]) -> None:
        """One export request of the spans of the batch's sampled exchanges, if any."""
        request = None
        for record in batch:
            if record.trace is not None:  # (only sampled exchanges have one)
                if request is None:
                    request, spans = self.envelope.request()
                add_spans(spans, record, record.trace)
        if request is not None:
            self.exporter.add(request, spans)

    def reopen(self) -> None:
        """Nothing to reopen: spans go over the network."""

    def close(self) -> None:
        """Export what is queued (until an export fails), then stop."""
        self.exporter.stop()

    def status(self) -> dict[str, Any]:
        return self.exporter.status()


def add_spans(spans: Spans, record: ExchangeRecord, trace: TraceContext) -> None:
    """Add the gateway's span of ``record`` to ``spans``, and the upstream call's when
    a node was asked."""
    trace_id = a2b_hex(trace.trace_id)
    own_id = a2b_hex(trace.span_id)
    state = trace.state.decode() if trace.state is not None else ""
    start = int(record.time * 1e9)
    end = start + int(record.latency_ms * 1e6)
    method = record.method
    known = method in _METHODS
    name = method.decode() if known else "HTTP"
    status = record.status
    failed = status >= 500 and status != _CLIENT_CLOSED
    route = record.route
    server = spans.add(
        trace_id=trace_id,
        span_id=own_id,
        trace_state=state,
        parent_span_id=a2b_hex(trace.parent_id) if trace.parent_id is not None else b"",
        name=name + " " + route if route is not None else name,
        kind=SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    attributes = server.attributes
    _request(attributes, method, known, status, failed)
    path, _, query = record.path.partition(b"?")
    text(attributes, "url.path", path)
    text(attributes, "url.scheme", trace.scheme)
    text(attributes, "client.address", record.client_ip)
    text(attributes, "quiver.request_id", record.request_id)
    if query:
        text(attributes, "url.query", query)
    if trace.host:
        _address(attributes, trace.host)
    if record.user_agent is not None:
        text(attributes, "user_agent.original", record.user_agent)
    for field, key in _OWN:
        value = getattr(record, field)
        if value is not None:
            attributes.add(key=key).value.string_value = value
    if failed:
        server.status.code = STATUS_ERROR
    if record.node is None or record.upstream_ms is None:
        return
    call = spans.add(
        trace_id=trace_id,
        span_id=a2b_hex(trace.upstream_id),
        trace_state=state,
        parent_span_id=own_id,
        name=name,
        kind=CLIENT,
        start_time_unix_nano=end - int(record.upstream_ms * 1e6),
        end_time_unix_nano=end,
    )
    attributes = call.attributes
    _request(attributes, method, known, status, failed)
    _address(attributes, record.node.encode())
    if record.retries:
        number(attributes, "http.request.resend_count", record.retries)
    if failed:
        call.status.code = STATUS_ERROR


def _request(attributes: Attributes, method: bytes, known: bool, status: int, failed: bool) -> None:
    """The method, and what the gateway answered (nothing when the client left first)."""
    if known:
        text(attributes, "http.request.method", method)
    else:
        attributes.add(key="http.request.method").value.string_value = "_OTHER"
        text(attributes, "http.request.method_original", method)
    if status != _CLIENT_CLOSED:
        number(attributes, "http.response.status_code", status)
    if failed:
        attributes.add(key="error.type").value.string_value = str(status)


def _address(attributes: Attributes, authority: bytes) -> None:
    """``server.address`` and ``server.port`` of a ``host[:port]``."""
    if authority.startswith(b"["):  # an IPv6 literal (RFC 3986 §3.2.2)
        host, _, rest = authority[1:].partition(b"]")
        port = rest[1:] if rest.startswith(b":") else b""
    else:
        host, _, port = authority.partition(b":")
    text(attributes, "server.address", host)
    if port.isdigit():
        number(attributes, "server.port", int(port))
