"""Spans of sampled exchanges, exported over OTLP: the ``tracing`` record output.

The proxy gives a sampled exchange a :class:`~quiver.http.tracecontext.TraceContext`
(:mod:`quiver.proxy.tracecontext`) and its record carries it.  This output makes
the spans of such a record, on the writer thread: the gateway's (kind SERVER, the
child of the caller's span when there is one) and one for each try of the upstream
call (kind CLIENT, the children of the gateway's, each under the id its node was
told of): the semantic conventions make each attempt of an HTTP client a span,
failed or not.  Their times are the record's and its tries', their attributes
those of the HTTP semantic conventions
(https://opentelemetry.io/docs/specs/semconv/http/http-spans/) and a few of the
gateway's own (``quiver.route``, ...), all made here rather than on the event
loop, which keeps only what they are made of.  Spans are made as
opentelemetry-proto messages, in place in the export request of their write
(:mod:`quiver.observe.otlp`), and exported on a thread of their own
(:mod:`quiver.observe.exporter`).
"""

from __future__ import annotations

import re
from binascii import a2b_hex
from typing import Any

from quiver import __version__
from quiver.config.tracing import Tracing
from quiver.http.tracecontext import TraceContext, Try
from quiver.observe.exporter import INTERVAL as EXPORT_INTERVAL
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
#: query parameters whose values the semantic conventions have redacted (``url.query``)
_SECRETS = rb"AWSAccessKeyId|Signature|sig|X-Goog-Signature"
_SECRET_PARAMS = re.compile(rb"(?:^|&)(?:" + _SECRETS + rb")=")
_SECRET_VALUES = re.compile(rb"((?:^|&)(?:" + _SECRETS + rb")=)[^&]*")
#: the record's names the spans carry as quiver.<name> when set
_OWN = tuple(
    (name, "quiver." + name) for name in ("route", "target", "consumer", "answered_by", "cache")
)


class TracingOutput:
    """Exports the spans of sampled exchanges; ``write`` runs on the writer thread."""

    name = "tracing"
    #: its records may wait for the writer as long as spans wait for their export
    patience = EXPORT_INTERVAL

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
    """Add the gateway's span of ``record`` to ``spans``, and a span for each try of
    its upstream call."""
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
    _request(attributes, method, known)
    _response(attributes, status, failed)
    path, _, query = record.path.partition(b"?")  # (the query when the access log keeps it)
    query = trace.query or query
    text(attributes, "url.path", path)
    if query:
        text(attributes, "url.query", _redacted(query))
    text(attributes, "url.scheme", trace.scheme)
    if trace.route is not None:
        attributes.add(key="http.route").value.string_value = trace.route
    text(attributes, "network.protocol.version", trace.version)
    text(attributes, "client.address", record.client_ip)
    text(attributes, "quiver.request_id", record.request_id)
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
    if trace.tries:
        for attempt in trace.tries:
            _add_try(spans, attempt, trace_id, own_id, state, name, record, start, end)
    elif record.node is not None and record.upstream_ms is not None:
        # a record made without its tries: one span of the last, over upstream_ms
        began = end - int(record.upstream_ms * 1e6)
        call = _client_span(spans, trace_id, trace.upstream_id, state, own_id, name, began, end)
        attributes = call.attributes
        _request(attributes, method, known)
        _address(attributes, record.node.encode())
        if record.retries:
            number(attributes, "http.request.resend_count", record.retries)
        if _response(attributes, status, status >= 400 and status != _CLIENT_CLOSED):
            call.status.code = STATUS_ERROR


def _client_span(
    spans: Spans,
    trace_id: bytes,
    span_id: bytes | str,
    state: str,
    parent_id: bytes,
    name: str,
    start: int,
    end: int,
) -> Any:
    """A CLIENT span of the upstream call, from ``start`` to ``end`` (epoch ns)."""
    return spans.add(
        trace_id=trace_id,
        span_id=a2b_hex(span_id),
        trace_state=state,
        parent_span_id=parent_id,
        name=name,
        kind=CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )


def _add_try(
    spans: Spans,
    attempt: Try,
    trace_id: bytes,
    parent_id: bytes,
    state: str,
    name: str,
    record: ExchangeRecord,
    start: int,
    end: int,
) -> None:
    """The span of one try of the upstream call (the child of the gateway's)."""
    if attempt.end is not None:
        end = start + int(attempt.end * 1e9)  # (else it lasted until the exchange ended)
    began = start + int(attempt.start * 1e9)
    call = _client_span(spans, trace_id, attempt.span_id, state, parent_id, name, began, end)
    attributes = call.attributes
    method = record.method
    _request(attributes, method, method in _METHODS)
    authority = attempt.url.partition("://")[2]
    _address(attributes, authority.encode())
    path, mark, query = attempt.target.partition(b"?")
    target = path + mark + _redacted(query) if mark else path
    attributes.add(key="url.full").value.string_value = attempt.url + target.decode(
        errors="replace"
    )
    text(attributes, "network.protocol.version", b"1.1")  # (what the gateway speaks to nodes)
    if attempt.attempt > 1:
        number(attributes, "http.request.resend_count", attempt.attempt - 1)
    if attempt.error is not None:  # the try failed: its own status, if the node answered
        if attempt.status is not None:
            number(attributes, "http.response.status_code", attempt.status)
        attributes.add(key="error.type").value.string_value = attempt.error
        call.status.code = STATUS_ERROR
        return
    status = record.status  # the last try's response is what the client got
    if _response(attributes, status, status >= 400 and status != _CLIENT_CLOSED):
        call.status.code = STATUS_ERROR


def _request(attributes: Attributes, method: bytes, known: bool) -> None:
    """The method: ``_OTHER`` (with the original) for one the conventions do not name."""
    if known:
        text(attributes, "http.request.method", method)
    else:
        attributes.add(key="http.request.method").value.string_value = "_OTHER"
        text(attributes, "http.request.method_original", method)


def _response(attributes: Attributes, status: int, failed: bool) -> bool:
    """What was answered (nothing when the client left first), and ``failed``'s
    ``error.type``; returns ``failed``.  A server span fails on a 5xx only, a client
    span on a 4xx too (semantic conventions, "Status")."""
    if status != _CLIENT_CLOSED:
        number(attributes, "http.response.status_code", status)
    if failed:
        attributes.add(key="error.type").value.string_value = str(status)
    return failed


def _redacted(query: bytes) -> bytes:
    """``query`` with the values of the keys that carry signatures and keys replaced
    by ``REDACTED``, as the semantic conventions ask of ``url.query``."""
    if not _SECRET_PARAMS.search(query):
        return query
    return _SECRET_VALUES.sub(rb"\1REDACTED", query)


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
