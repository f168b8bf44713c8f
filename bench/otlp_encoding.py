"""What the spans of sampled exchanges cost to encode as OTLP, per exchange.

Makes the spans of ``--count`` sampled exchanges (a proxied GET each: a server
span and a client span, the attributes the tracing output gives them) and
encodes them as ExportTraceServiceRequest messages of 512 spans, the exporter's
batch, one of three ways:

  hand   quiver's own encoder before opentelemetry-proto (quiver.observe.otlp)
  proto  the generated classes of opentelemetry-proto (protobuf's upb backend)
  sdk    the SDK's span objects (ReadableSpan) and the OTLP exporter's encoder

Nothing is sent: the POST costs the same whatever made the bytes.  Run it under
callgrind twice, with two counts, and divide the difference by the extra
exchanges:  bench/otlp_encoding.sh [hand|proto|sdk]
"""

from __future__ import annotations

import sys
from binascii import a2b_hex
from collections.abc import Callable

from quiver.http.tracecontext import TraceContext
from quiver.observe.record import ExchangeRecord

BATCH = 512  # spans per export (quiver.observe.exporter.BATCH)


def record(number: int) -> ExchangeRecord:
    """A sampled exchange: a GET proxied to a node, in its caller's trace."""
    trace = TraceContext(
        b"%032x" % (number + 1),
        b"%016x" % (2 * number + 1),
        b"%016x" % (2 * number + 2),
        b"00f067aa0ba902b7",
        b"https",
        b"api.example:8443",
    )
    return ExchangeRecord(
        time=1_800_000_000.25 + number,
        request_id=b"6f1c%08x" % number,
        client_ip=b"10.0.0.7",
        method=b"GET",
        path=b"/items/42?x=1",
        status=200,
        route="items",
        target="backend",
        consumer="alice",
        node="127.0.0.1:9001",
        latency_ms=12.5,
        upstream_ms=10.0,
        user_agent=b"probe/1.0",
        trace=trace,
    )


def hand(records: list[ExchangeRecord]) -> int:
    from quiver.observe.otlp import Envelope
    from quiver.observe.tracing import spans

    envelope = Envelope([("service.name", "quiver"), ("service.version", "0.1.0")], "quiver", "0.1.0")
    made: list[bytes] = []
    for one in records:
        assert one.trace is not None
        made += spans(one, one.trace)
    return sum(
        len(envelope.request(made[at : at + BATCH])) for at in range(0, len(made), BATCH)
    )


def proto(records: list[ExchangeRecord]) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    def text(span: Span, key: str, value: bytes) -> None:
        span.attributes.add(key=key).value.string_value = value.decode(errors="replace")

    def number(span: Span, key: str, value: int) -> None:
        span.attributes.add(key=key).value.int_value = value

    made: list[Span] = []
    for one in records:
        trace = one.trace
        assert trace is not None
        trace_id = a2b_hex(trace.trace_id)
        own_id = a2b_hex(trace.span_id)
        start = int(one.time * 1e9)
        end = start + int(one.latency_ms * 1e6)
        state = trace.state.decode() if trace.state else ""
        server = Span(
            trace_id=trace_id,
            span_id=own_id,
            trace_state=state,
            parent_span_id=a2b_hex(trace.parent_id) if trace.parent_id else b"",
            name="GET " + (one.route or ""),
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        path, _, query = one.path.partition(b"?")
        host, _, port = trace.host.partition(b":")
        text(server, "http.request.method", one.method)
        text(server, "url.path", path)
        text(server, "url.scheme", trace.scheme)
        text(server, "client.address", one.client_ip)
        text(server, "quiver.request_id", one.request_id)
        number(server, "http.response.status_code", one.status)
        text(server, "url.query", query)
        text(server, "server.address", host)
        number(server, "server.port", int(port))
        if one.user_agent is not None:
            text(server, "user_agent.original", one.user_agent)
        for name in ("route", "target", "consumer", "answered_by", "cache"):
            value = getattr(one, name)
            if value is not None:
                server.attributes.add(key="quiver." + name).value.string_value = value
        made.append(server)
        assert one.node is not None and one.upstream_ms is not None
        node, _, node_port = one.node.partition(":")
        client = Span(
            trace_id=trace_id,
            span_id=a2b_hex(trace.upstream_id),
            trace_state=state,
            parent_span_id=own_id,
            name="GET",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=end - int(one.upstream_ms * 1e6),
            end_time_unix_nano=end,
        )
        text(client, "http.request.method", one.method)
        client.attributes.add(key="server.address").value.string_value = node
        number(client, "server.port", int(node_port))
        number(client, "http.response.status_code", one.status)
        made.append(client)
    envelope = ExportTraceServiceRequest()
    resource_spans = envelope.resource_spans.add()
    resource = resource_spans.resource
    resource.attributes.add(key="service.name").value.string_value = "quiver"
    resource.attributes.add(key="service.version").value.string_value = "0.1.0"
    resource_spans.scope_spans.add(scope=InstrumentationScope(name="quiver", version="0.1.0"))
    size = 0
    for at in range(0, len(made), BATCH):
        request = ExportTraceServiceRequest()
        request.CopyFrom(envelope)
        request.resource_spans[0].scope_spans[0].spans.extend(made[at : at + BATCH])
        size += len(request.SerializeToString())
    return size


def sdk(records: list[ExchangeRecord]) -> int:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState

    resource = Resource({"service.name": "quiver", "service.version": "0.1.0"})
    scope = InstrumentationScope("quiver", "0.1.0")
    sampled = TraceFlags(TraceFlags.SAMPLED)
    made: list[ReadableSpan] = []
    for one in records:
        trace = one.trace
        assert trace is not None
        trace_id = int(trace.trace_id, 16)
        state = TraceState.from_header([trace.state.decode()]) if trace.state else None
        own = SpanContext(trace_id, int(trace.span_id, 16), False, sampled, state)
        caller = (
            SpanContext(trace_id, int(trace.parent_id, 16), True, sampled, state)
            if trace.parent_id is not None
            else None
        )
        start = int(one.time * 1e9)
        end = start + int(one.latency_ms * 1e6)
        host, _, port = trace.host.partition(b":")
        path, _, query = one.path.partition(b"?")
        made.append(
            ReadableSpan(
                "GET " + (one.route or ""),
                own,
                caller,
                resource=resource,
                attributes={
                    "http.request.method": one.method.decode(),
                    "url.path": path.decode(),
                    "url.query": query.decode(),
                    "url.scheme": trace.scheme.decode(),
                    "server.address": host.decode(),
                    "server.port": int(port),
                    "client.address": one.client_ip.decode(),
                    "user_agent.original": (one.user_agent or b"").decode(),
                    "http.response.status_code": one.status,
                    "quiver.request_id": one.request_id.decode(),
                    "quiver.route": one.route,
                    "quiver.target": one.target,
                    "quiver.consumer": one.consumer,
                },
                kind=SpanKind.SERVER,
                start_time=start,
                end_time=end,
                instrumentation_scope=scope,
            )
        )
        assert one.node is not None and one.upstream_ms is not None
        node, _, node_port = one.node.partition(":")
        made.append(
            ReadableSpan(
                "GET",
                SpanContext(trace_id, int(trace.upstream_id, 16), False, sampled, state),
                own,
                resource=resource,
                attributes={
                    "http.request.method": one.method.decode(),
                    "server.address": node,
                    "server.port": int(node_port),
                    "http.response.status_code": one.status,
                },
                kind=SpanKind.CLIENT,
                start_time=end - int(one.upstream_ms * 1e6),
                end_time=end,
                instrumentation_scope=scope,
            )
        )
    return sum(
        len(encode_spans(made[at : at + BATCH]).SerializeToString())
        for at in range(0, len(made), BATCH)
    )


ENCODERS: dict[str, Callable[[list[ExchangeRecord]], int]] = {
    "hand": hand,
    "proto": proto,
    "sdk": sdk,
}


def main() -> None:
    encoder = ENCODERS[sys.argv[1]]
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 1024
    encoder([record(0)])  # imports and first calls, in every run alike
    distinct = [record(number) for number in range(256)]
    records = [distinct[number % 256] for number in range(count)]
    size = encoder(records)
    print(f"{count} exchanges, {size} bytes of OTLP")


if __name__ == "__main__":
    main()
