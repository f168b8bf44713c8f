"""Spans of sampled exchanges, exported over OTLP: the ``tracing`` record output.

The proxy gives a sampled exchange a :class:`~quiver.http.tracecontext.TraceContext`
(:mod:`quiver.proxy.tracecontext`) and its record carries it.  This output makes
two spans of such a record, on the writer thread: the gateway's (kind SERVER, the
child of the caller's span when there is one) and, when a node was asked, the
upstream call's (kind CLIENT, the child of the gateway's, under the id the node was
told of).  Their times are the record's, their attributes those of the HTTP
semantic conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/)
and a few of the gateway's own (``quiver.route``, ...).  Spans are encoded as they
are made (:mod:`quiver.observe.otlp`) and exported on a thread of their own
(:mod:`quiver.observe.exporter`).
"""

from __future__ import annotations

from binascii import a2b_hex
from typing import Any

from quiver import __version__
from quiver.config.tracing import Tracing
from quiver.http.tracecontext import TraceContext
from quiver.observe import otlp
from quiver.observe.exporter import SpanExporter
from quiver.observe.otlp import CLIENT, SERVER, Envelope, key, number, text
from quiver.observe.record import ExchangeRecord

#: methods the semantic conventions name; others are "_OTHER" (with the original)
_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH"}
)
_CLIENT_CLOSED = 499  # the record's status when the client left: nothing was answered
_METHOD = key("http.request.method")
_METHOD_ORIGINAL = key("http.request.method_original")
_PATH = key("url.path")
_QUERY = key("url.query")
_SCHEME = key("url.scheme")
_SERVER_ADDRESS = key("server.address")
_SERVER_PORT = key("server.port")
_CLIENT_ADDRESS = key("client.address")
_USER_AGENT = key("user_agent.original")
_STATUS = key("http.response.status_code")
_ERROR_TYPE = key("error.type")
_RESEND_COUNT = key("http.request.resend_count")
_REQUEST_ID = key("quiver.request_id")
#: the record's names the spans carry as quiver.<name> when set
_OWN = tuple(
    (name, key("quiver." + name))
    for name in ("route", "target", "consumer", "answered_by", "cache")
)


class TracingOutput:
    """Exports the spans of sampled exchanges; ``write`` runs on the writer thread."""

    name = "tracing"

    def __init__(self, settings: Tracing) -> None:
        resource = [("service.name", settings.service_name), ("service.version", __version__)]
        self.exporter = SpanExporter(
            settings.otlp, Envelope(resource, "quiver", __version__), limit=settings.queue
        )

    def open(self) -> None:
        self.exporter.start()

    def write(self, batch: list[ExchangeRecord]) -> None:
        made: list[bytes] = []
        for record in batch:
            if record.trace is not None:  # (only sampled exchanges have one)
                made += spans(record, record.trace)
        if made:
            self.exporter.add(made)

    def reopen(self) -> None:
        """Nothing to reopen: spans go over the network."""

    def close(self) -> None:
        """Export what is queued (until an export fails), then stop."""
        self.exporter.stop()

    def status(self) -> dict[str, Any]:
        return self.exporter.status()


def spans(record: ExchangeRecord, trace: TraceContext) -> list[bytes]:
    """The gateway's span of ``record``, and the upstream call's when a node was asked,
    encoded."""
    trace_id = a2b_hex(trace.trace_id)
    own_id = a2b_hex(trace.span_id)
    start = int(record.time * 1e9)
    end = start + int(record.latency_ms * 1e6)
    method = record.method
    if method in _METHODS:
        methods = text(_METHOD, method)
    else:
        methods = text(_METHOD, b"_OTHER") + text(_METHOD_ORIGINAL, method)
        method = b"HTTP"
    status = record.status
    failed = status >= 500 and status != _CLIENT_CLOSED
    answer = b""  # what the gateway answered (nothing when the client left first)
    if status != _CLIENT_CLOSED:
        answer = number(_STATUS, status)
    if failed:
        answer += text(_ERROR_TYPE, b"%d" % status)
    path, _, query = record.path.partition(b"?")
    attributes = [
        methods,
        text(_PATH, path),
        text(_SCHEME, trace.scheme),
        text(_CLIENT_ADDRESS, record.client_ip),
        text(_REQUEST_ID, record.request_id),
        answer,
    ]
    if query:
        attributes.append(text(_QUERY, query))
    if trace.host:
        attributes.append(_address(trace.host))
    if record.user_agent is not None:
        attributes.append(text(_USER_AGENT, record.user_agent))
    for name, attribute in _OWN:
        value = getattr(record, name)
        if value is not None:
            attributes.append(text(attribute, value.encode()))
    route = record.route
    made = [
        otlp.span(
            trace_id,
            own_id,
            a2b_hex(trace.parent_id) if trace.parent_id is not None else None,
            trace.state,
            method + b" " + route.encode() if route is not None else method,
            SERVER,
            start,
            end,
            b"".join(attributes),
            failed,
        )
    ]
    if record.node is not None and record.upstream_ms is not None:
        call = [methods, _address(record.node.encode()), answer]
        if record.retries:
            call.append(number(_RESEND_COUNT, record.retries))
        made.append(
            otlp.span(
                trace_id,
                a2b_hex(trace.upstream_id),
                own_id,
                trace.state,
                method,
                CLIENT,
                end - int(record.upstream_ms * 1e6),
                end,
                b"".join(call),
                failed,
            )
        )
    return made


def _address(authority: bytes) -> bytes:
    """``server.address`` and ``server.port`` of a ``host[:port]``, as attributes."""
    if authority.startswith(b"["):  # an IPv6 literal (RFC 3986 §3.2.2)
        host, _, rest = authority[1:].partition(b"]")
        port = rest[1:] if rest.startswith(b":") else b""
    else:
        host, _, port = authority.partition(b":")
    if port.isdigit():
        return text(_SERVER_ADDRESS, host) + number(_SERVER_PORT, int(port))
    return text(_SERVER_ADDRESS, host)
