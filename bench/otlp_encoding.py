"""What the spans of sampled exchanges cost, per exchange, in OTLP.

Makes the spans of ``--count`` sampled exchanges (a proxied GET each: a server
span and a client span, the attributes the tracing output gives them), one of
three ways:

  output  the tracing output as a worker runs it: a write per exchange (the usual
          case at a 1% sample), exported by its thread to a stand-in collector (a
          child process, not counted); ``--per-write N``: N exchanges a write
  proto   the encoding alone: quiver.observe.tracing.add_spans into requests of
          512 spans (the exporter's batch), serialized
  sdk     the encoding alone, the SDK's way: its span objects (ReadableSpan) and
          its OTLP exporter's encoder (opentelemetry-sdk and
          opentelemetry-exporter-otlp-proto-common, installed by hand)

Run it under callgrind twice, with two counts, and divide the difference by the
extra exchanges:  bench/otlp_encoding.sh [output|proto|sdk] [--per-write N]
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
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


def output(records: list[ExchangeRecord], per_write: int = 1) -> int:
    from quiver.config.tracing import Tracing
    from quiver.observe.tracing import TracingOutput

    collector = subprocess.Popen([sys.executable, "-c", COLLECTOR], stdout=subprocess.PIPE)
    assert collector.stdout is not None
    endpoint = f"http://127.0.0.1:{int(collector.stdout.readline())}/v1/traces"
    tracing = TracingOutput(
        Tracing.model_validate({"queue": 1 << 20, "otlp": {"endpoint": endpoint}})
    )
    tracing.open()
    for at in range(0, len(records), per_write):
        tracing.write(records[at : at + per_write])
    tracing.close()
    collector.terminate()
    collector.wait()
    exported: int = tracing.status()["exported"]
    return exported


COLLECTOR = """
from http.server import BaseHTTPRequestHandler, HTTPServer

class Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Collector)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def proto(records: list[ExchangeRecord]) -> int:
    from quiver.observe.otlp import Envelope
    from quiver.observe.tracing import add_spans

    envelope = Envelope(
        [("service.name", "quiver"), ("service.version", "0.1.0")], "quiver", "0.1.0"
    )
    size = 0
    for at in range(0, len(records), BATCH // 2):
        request, spans = envelope.request()
        for one in records[at : at + BATCH // 2]:
            assert one.trace is not None
            add_spans(spans, one, one.trace)
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
        host, _, port = (trace.host or b"").partition(b":")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["output", "proto", "sdk"])
    parser.add_argument("--count", type=int, default=1024, help="sampled exchanges")
    parser.add_argument("--per-write", type=int, default=1, help="exchanges a write (output)")
    args = parser.parse_args()
    encoders: dict[str, Callable[[list[ExchangeRecord]], int]] = {
        "output": functools.partial(output, per_write=args.per_write),
        "proto": proto,
        "sdk": sdk,
    }
    encoder = encoders[args.mode]
    encoder([record(0)])  # imports and first calls, in every run alike
    distinct = [record(number) for number in range(256)]
    records = [distinct[number % 256] for number in range(args.count)]
    print(f"{args.count} exchanges: {encoder(records)} (bytes of OTLP, or spans exported)")


if __name__ == "__main__":
    main()
