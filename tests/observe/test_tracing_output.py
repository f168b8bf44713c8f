"""The tracing output: spans of sampled exchanges, exported over OTLP/HTTP to a
collector simulated in the test (it decodes what it is sent with the OTLP protobufs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from quiver.config.access_log import AccessLog
from quiver.config.models import CallLogSettings
from quiver.config.tracing import Tracing
from quiver.http.tracecontext import TraceContext, Try
from quiver.observe.exporter import INTERVAL as EXPORT_INTERVAL
from quiver.observe.record import ExchangeRecord
from quiver.observe.tracing import TracingOutput
from quiver.observe.writer import FLUSH_EVERY, writer_for
from tests.observe.collector import Collector, attributes
from tests.support.nodes import wait_until
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(30)

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = b"00f067aa0ba902b7"
GATEWAY = b"1111111111111111"
CALL = b"2222222222222222"
T0 = 1_800_000_000.25  # the record's time: when the head was read


@contextmanager
def collecting(
    path: str = "/v1/traces", **settings: Any
) -> Iterator[tuple[TracingOutput, Collector]]:
    """An opened tracing output exporting to an in-test collector (at ``path``: it
    answers 404 elsewhere); closed after."""
    collector = Collector()
    endpoint = collector.url.replace("/v1/traces", path)
    otlp = {"endpoint": endpoint, **settings.pop("otlp", {})}
    output = TracingOutput(Tracing.model_validate({"otlp": otlp, **settings}))
    output.open()
    try:
        yield output, collector
    finally:
        output.close()
        collector.close()


def trace(parent: bytes | None = CALLER) -> TraceContext:
    context = TraceContext(TRACE, GATEWAY, CALL, parent, b"https", b"api.example:8443")
    context.state = b"rojo=1"
    return context


def record(context: TraceContext | None, **fields: Any) -> ExchangeRecord:
    values: dict[str, Any] = {
        "time": T0,
        "request_id": b"6f1c0001",
        "client_ip": b"10.0.0.7",
        "method": b"GET",
        "path": b"/items/42",
        "status": 200,
        "route": "items",
        "target": "backend",
        "node": "127.0.0.1:9001",
        "latency_ms": 12.5,
        "upstream_ms": 10.0,
        "user_agent": b"probe/1.0",
        "trace": context,
        **fields,
    }
    return ExchangeRecord(**values)


def test_a_sampled_exchange_is_a_server_span_and_a_client_span_over_otlp() -> None:
    with collecting(service_name="edge") as (output, collector):
        output.write([record(trace(), retries=1, consumer="alice")])
        output.close()  # (exports what is queued)
    [request] = collector.requests
    [resource] = request.resource_spans
    assert attributes(resource.resource.attributes)["service.name"] == "edge"
    assert resource.scope_spans[0].scope.name == "quiver"
    server, client = (
        next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER),
        next(s for s in collector.spans if s.kind == Span.SPAN_KIND_CLIENT),
    )
    assert server.trace_id == client.trace_id == bytes.fromhex(TRACE.decode())
    assert server.span_id == bytes.fromhex(GATEWAY.decode())
    assert server.parent_span_id == bytes.fromhex(CALLER.decode())
    assert client.span_id == bytes.fromhex(CALL.decode())  # the parent the node was told of
    assert client.parent_span_id == server.span_id
    assert server.trace_state == client.trace_state == "rojo=1"
    assert server.name == "GET items" and client.name == "GET"
    start = int(T0 * 1e9)
    assert (server.start_time_unix_nano, server.end_time_unix_nano) == (start, start + 12_500_000)
    assert client.start_time_unix_nano == start + 2_500_000
    assert client.end_time_unix_nano == server.end_time_unix_nano
    assert attributes(server.attributes) == {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "https",
        "network.protocol.version": "1.1",
        "server.address": "api.example",
        "server.port": 8443,
        "client.address": "10.0.0.7",
        "user_agent.original": "probe/1.0",
        "http.response.status_code": 200,
        "quiver.request_id": "6f1c0001",
        "quiver.route": "items",
        "quiver.target": "backend",
        "quiver.consumer": "alice",
    }
    assert attributes(client.attributes) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": 9001,
        "http.response.status_code": 200,
        "http.request.resend_count": 1,
    }
    assert server.status.code == client.status.code == Status.STATUS_CODE_UNSET
    assert output.status()["exported"] == 2


def test_only_sampled_exchanges_become_spans() -> None:
    with collecting() as (output, collector):
        output.write([record(None), record(trace()), record(None)])
        output.close()
    assert len(collector.spans) == 2
    assert output.status() == {
        "to": collector.url,
        "queued": 0,
        "exported": 2,
        "dropped": 0,
        "failed": 0,
    }


def test_long_values_are_encoded_whole() -> None:
    path = b"/" + b"p" * 300
    with collecting() as (output, collector):
        output.write([record(trace(None), path=path, user_agent=b"u" * 1000)])
        output.close()
    server = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER)
    found = attributes(server.attributes)
    assert found["url.path"] == path.decode()
    assert found["user_agent.original"] == "u" * 1000


def test_bytes_that_are_not_utf8_are_replaced() -> None:
    """OTLP strings are UTF-8: a collector refuses an export holding anything else."""
    with collecting() as (output, collector):
        output.write([record(trace(), user_agent=b"caf\xe9/1", path=b"/\xff")])
        output.close()
    found = attributes(collector.spans[0].attributes)
    assert (found["user_agent.original"], found["url.path"]) == ("caf\ufffd/1", "/\ufffd")


def test_the_writes_queued_together_are_one_export() -> None:
    """Each write is a request of its own; those waiting are sent as one body, which
    a collector reads as one request (one resource_spans entry per write)."""
    collector = Collector()
    output = TracingOutput(Tracing.model_validate({"otlp": {"endpoint": collector.url}}))
    try:
        output.write([record(trace())])
        output.write([record(trace(None), node=None, upstream_ms=None)])
        output.open()  # (the exporter's thread starts with both writes queued)
        output.close()
    finally:
        collector.close()
    [request] = collector.requests
    assert [len(r.scope_spans[0].spans) for r in request.resource_spans] == [2, 1]
    assert {attributes(r.resource.attributes)["service.name"] for r in request.resource_spans} == {
        "quiver"
    }
    assert output.status()["exported"] == 3


def test_spans_beyond_the_queue_are_dropped_and_counted() -> None:
    with collecting(queue=3) as (output, collector):
        output.write([record(trace()), record(trace())])  # four spans
        output.close()
    assert len(collector.spans) == 3
    assert (output.status()["exported"], output.status()["dropped"]) == (3, 1)


def test_a_5xx_is_an_error_and_a_new_trace_has_no_parent() -> None:
    with collecting() as (output, collector):
        output.write([record(trace(None), status=503, method=b"PURGE")])
        output.close()
    server = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER)
    assert server.parent_span_id == b""
    assert server.name == "HTTP items"
    assert server.status.code == Status.STATUS_CODE_ERROR
    found = attributes(server.attributes)
    assert found["error.type"] == "503"
    assert found["http.request.method"] == "_OTHER"
    assert found["http.request.method_original"] == "PURGE"


def test_an_exchange_no_node_answered_is_one_span() -> None:
    refused = record(trace(), status=401, node=None, upstream_ms=None, answered_by="key-auth")
    unrouted = record(trace(), status=404, route=None, target=None, node=None, upstream_ms=None)
    with collecting() as (output, collector):
        output.write([refused, unrouted])
        output.close()
    assert [s.kind for s in collector.spans] == [Span.SPAN_KIND_SERVER] * 2
    names = sorted(s.name for s in collector.spans)
    assert names == ["GET", "GET items"]
    assert any(
        attributes(s.attributes).get("quiver.answered_by") == "key-auth" for s in collector.spans
    )


def test_each_try_is_a_client_span_with_its_outcome() -> None:
    """The tries the proxy noted: a failed connect, a 503 tried again, then the one
    whose response the client got (it lasts until the exchange ended)."""
    context = trace()
    node = "http://127.0.0.1:9001"
    context.tries = [
        Try(1, b"a" * 16, node, b"/v1/items/42?q=1", 0.001, 0.002, "connect_error"),
        Try(2, b"b" * 16, node, b"/v1/items/42?q=1", 0.003, 0.004, "503", 503),
        Try(3, CALL, node, b"/v1/items/42?q=1", 0.005),
    ]
    with collecting() as (output, collector):
        output.write([record(context, retries=2)])
        output.close()
    server = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER)
    calls = [s for s in collector.spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert [s.span_id.hex() for s in calls] == ["a" * 16, "b" * 16, CALL.decode()]
    assert {s.parent_span_id for s in calls} == {server.span_id}
    start = int(T0 * 1e9)
    assert [(s.start_time_unix_nano - start, s.end_time_unix_nano - start) for s in calls] == [
        (1_000_000, 2_000_000),
        (3_000_000, 4_000_000),
        (5_000_000, 12_500_000),
    ]
    found = [attributes(s.attributes) for s in calls]
    assert {f["url.full"] for f in found} == {"http://127.0.0.1:9001/v1/items/42?q=1"}
    assert [f.get("http.request.resend_count") for f in found] == [None, 1, 2]
    assert [f.get("error.type") for f in found] == ["connect_error", "503", None]
    assert [f.get("http.response.status_code") for f in found] == [None, 503, 200]
    assert [s.status.code for s in calls] == [Status.STATUS_CODE_ERROR] * 2 + [
        Status.STATUS_CODE_UNSET
    ]
    assert found[0]["server.address"] == "127.0.0.1" and found[0]["server.port"] == 9001
    assert found[0]["network.protocol.version"] == "1.1"
    assert server.status.code == Status.STATUS_CODE_UNSET  # (the client got a 200)


def test_a_4xx_fails_the_client_span_but_not_the_server_span() -> None:
    """Semantic conventions, "Status": a server that answers a 4xx did its job."""
    with collecting() as (output, collector):
        output.write([record(trace(), status=404)])
        output.close()
    server = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER)
    call = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_CLIENT)
    assert server.status.code == Status.STATUS_CODE_UNSET
    assert "error.type" not in attributes(server.attributes)
    assert call.status.code == Status.STATUS_CODE_ERROR
    assert attributes(call.attributes)["error.type"] == "404"


def test_the_query_comes_from_the_trace_and_signatures_are_redacted() -> None:
    context = trace()
    context.query = b"q=1&Signature=s3cr3t&sig=abc&b=2"
    context.route = "/items/{id}"
    context.tries = [Try(1, CALL, "https://[::1]:9443", b"/items/42?X-Goog-Signature=x&q=1", 0.0)]
    with collecting() as (output, collector):
        output.write([record(context)])  # (the record's path has no query: not logged)
        output.close()
    server = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER)
    call = next(s for s in collector.spans if s.kind == Span.SPAN_KIND_CLIENT)
    found = attributes(server.attributes)
    assert found["url.path"] == "/items/42"
    assert found["url.query"] == "q=1&Signature=REDACTED&sig=REDACTED&b=2"
    assert found["http.route"] == "/items/{id}"
    found = attributes(call.attributes)
    assert found["url.full"] == "https://[::1]:9443/items/42?X-Goog-Signature=REDACTED&q=1"
    assert (found["server.address"], found["server.port"]) == ("::1", 9443)


def test_the_exports_carry_the_configured_headers() -> None:
    with collecting(otlp={"headers": {"authorization": "Bearer t0ken"}}) as (output, collector):
        output.write([record(trace())])
        output.close()
    assert collector.headers[0]["authorization"] == "Bearer t0ken"


def test_spans_that_cannot_be_exported_are_counted_and_the_output_goes_on() -> None:
    collector = Collector()
    collector.close()  # nothing listens there any more
    settings = {"endpoint": collector.url, "timeout": "200ms"}
    output = TracingOutput(Tracing.model_validate({"otlp": settings}))
    output.open()
    output.write([record(trace())])
    output.close()
    assert output.status()["failed"] == 2


def test_an_error_status_loses_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    with collecting(path="/elsewhere") as (output, _):
        output.write([record(trace())])
        output.close()
    assert output.status()["failed"] == 2
    assert "404" in caplog.text


def test_a_gateways_spans_and_the_traceparent_its_node_got_agree() -> None:
    """Through a running gateway: its record writer hands the sampled exchange to
    the tracing output, which exports both spans to the collector."""
    caller = f"00-{TRACE.decode()}-{CALLER.decode()}-01"
    collector = Collector()
    try:
        with Upstream(echo) as node:
            tracing = {"sample": 0, "otlp": {"endpoint": collector.url}}
            config = make_config({"backend": node.url}, tracing=tracing)
            with RunningProxy(config) as proxy, Client(proxy.port) as client:
                client.request("GET", "/items")  # a new trace, not sampled: no span
                response = client.request("GET", "/items?q=1", {"traceparent": caller})
                wait_until(lambda: len(collector.spans) == 2, "the exchange's spans")
    finally:
        collector.close()
    sent = {n.lower(): v for n, v in response.json()["headers"]}["traceparent"]
    _, trace_id, parent_id, flags = sent.split("-")
    server, client_span = (
        next(s for s in collector.spans if s.kind == Span.SPAN_KIND_SERVER),
        next(s for s in collector.spans if s.kind == Span.SPAN_KIND_CLIENT),
    )
    assert (trace_id, flags) == (TRACE.decode(), "01")
    assert {span.trace_id.hex() for span in collector.spans} == {TRACE.decode()}
    assert client_span.span_id.hex() == parent_id  # the node's parent is the call's span
    assert client_span.parent_span_id == server.span_id
    assert server.parent_span_id.hex() == CALLER.decode()
    found = attributes(server.attributes)
    assert (found["url.path"], found["url.scheme"]) == ("/items", "http")
    assert found["server.address"] == "test.local"  # the Host the client sent
    assert found["http.response.status_code"] == 200
    assert attributes(client_span.attributes)["server.port"] == node.port
    assert server.start_time_unix_nano < client_span.start_time_unix_nano
    assert client_span.end_time_unix_nano == server.end_time_unix_nano


def test_records_go_to_tracing_alone_only_for_sampled_exchanges() -> None:
    """What the worker's writer is made of: tracing alone keeps no record but the
    sampled ones; beside an output that reads every exchange it takes all."""
    tracing = Tracing.model_validate({"otlp": {"endpoint": "http://127.0.0.1:9/v1/traces"}})
    alone = writer_for(None, CallLogSettings(), None, None, tracing)
    assert alone is not None and not alone.recording
    assert alone.keep is not None and not alone.keep(500)
    sampled_log = AccessLog(to="stdout", sample=0.1)
    beside = writer_for(sampled_log, CallLogSettings(), None, None, tracing)
    assert beside is not None and beside.recording and beside.keep is None
    only_log = writer_for(sampled_log, CallLogSettings(), None)
    assert only_log is not None and only_log.recording and only_log.keep is not None


def test_spans_alone_wait_for_the_writer_as_long_as_for_their_export() -> None:
    """A writer with only the spans wakes once per export round; beside the access
    log, its records wait no longer than the access log allows."""
    tracing = Tracing.model_validate({"otlp": {"endpoint": "http://127.0.0.1:9/v1/traces"}})
    alone = writer_for(None, CallLogSettings(), None, None, tracing)
    assert alone is not None and alone.flush_every == EXPORT_INTERVAL == 1.0
    beside = writer_for(AccessLog(to="stdout"), CallLogSettings(), None, None, tracing)
    assert beside is not None and beside.flush_every == FLUSH_EVERY == 0.1
