"""Spans of exchanges through a running gateway: the server span tells what the
client asked, and each try of the upstream call is a client span of its own (the
semantic conventions' one span per attempt), with its outcome; the workers' status
documents count the spans their exporters lost."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from quiver.proxy.status import read_status
from tests.observe.collector import Collector, attributes
from tests.support.nodes import wait_until
from tests.support.process import catch_all_config, run_quiver, serving, write_config
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Request, Upstream, echo, json_response

pytestmark = pytest.mark.timeout(60)

ROUTES = [{"name": "open", "paths": ["/open"], "target": "backend"}]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def traced(target: str | dict[str, Any]) -> Iterator[tuple[Client, Collector]]:
    """A gateway sampling every request, its target ``target``, its spans exported
    to an in-test collector; and a client of it."""
    collector = Collector()
    try:
        tracing = {"sample": 1, "otlp": {"endpoint": collector.url}}
        config = make_config({"backend": target}, ROUTES, tracing=tracing)
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            yield client, collector
    finally:
        collector.close()


def spans_of(collector: Collector, count: int) -> tuple[Span, list[Span]]:
    """The server span and the client spans (in order of their start) of the one
    exchange, once its ``count`` spans are exported."""
    wait_until(lambda: len(collector.spans) >= count, f"{count} spans exported")
    spans = collector.spans
    assert len(spans) == count
    [server] = [span for span in spans if span.kind == Span.SPAN_KIND_SERVER]
    calls = sorted(
        (span for span in spans if span.kind == Span.SPAN_KIND_CLIENT),
        key=lambda span: span.start_time_unix_nano,
    )
    return server, calls


def answers_after(failures: int, fail: Callable[[Conn, Request], None]) -> Callable[[Conn], None]:
    """A node whose first ``failures`` requests ``fail`` and whose next ones are echoed."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if len(conn.server.requests) <= failures:
                fail(conn, request)
            else:
                json_response(conn, request)

    return handler


def test_the_server_span_has_the_query_and_the_route_pattern() -> None:
    with Upstream(echo) as node, traced(node.url) as (client, collector):
        response = client.request("GET", "/open/x?q=1&b=2")
        server, [call] = spans_of(collector, 2)
    assert response.status == 200
    found = attributes(server.attributes)
    assert (found["url.path"], found["url.query"]) == ("/open/x", "q=1&b=2")
    assert (found["url.scheme"], found["http.route"]) == ("http", "/open")
    assert (found["http.request.method"], found["http.response.status_code"]) == ("GET", 200)
    assert found["network.protocol.version"] == "1.1"
    assert found["client.address"] == "127.0.0.1"
    assert attributes(call.attributes)["url.full"] == f"{node.url}/open/x?q=1&b=2"


def test_each_try_of_a_node_that_refuses_connections_is_an_error_span() -> None:
    port = closed_port()
    retries = {"on": ["connect_error"], "attempts": 3, "backoff": 0}
    with traced({"url": f"http://127.0.0.1:{port}", "retries": retries}) as (client, collector):
        response = client.request("GET", "/open/x?q=1")
        server, calls = spans_of(collector, 4)
    assert response.status == 502
    assert server.status.code == Status.STATUS_CODE_ERROR
    assert attributes(server.attributes)["error.type"] == "502"
    assert len({call.span_id for call in calls}) == 3
    assert {call.parent_span_id for call in calls} == {server.span_id}
    assert {call.trace_id for call in calls} == {server.trace_id}
    found = [attributes(call.attributes) for call in calls]
    assert [f.get("http.request.resend_count") for f in found] == [None, 1, 2]
    assert {f["error.type"] for f in found} == {"connect_error"}
    assert {f["url.full"] for f in found} == {f"http://127.0.0.1:{port}/open/x?q=1"}
    assert {(f["server.address"], f["server.port"]) for f in found} == {("127.0.0.1", port)}
    assert all("http.response.status_code" not in f for f in found)  # nothing answered
    assert {call.status.code for call in calls} == {Status.STATUS_CODE_ERROR}
    for earlier, later in pairwise(calls):  # one after the other
        assert earlier.end_time_unix_nano <= later.start_time_unix_nano
    assert server.start_time_unix_nano <= calls[0].start_time_unix_nano
    assert calls[-1].end_time_unix_nano <= server.end_time_unix_nano


def test_a_try_answered_503_and_tried_again_is_a_span_and_a_parent_of_its_own() -> None:
    """The node is told of each try's span as its parent: the spans of the tries and
    the traceparent each request carried agree."""
    busy_once = answers_after(1, lambda conn, _: conn.respond(503, b"busy"))
    retries = {"on": ["503"], "backoff": 0}
    with (
        Upstream(busy_once) as node,
        traced({"url": node.url, "retries": retries}) as (
            client,
            collector,
        ),
    ):
        response = client.request("GET", "/open/y")
        server, calls = spans_of(collector, 3)
    assert response.status == 200
    told = [request.header("traceparent") for request in node.requests]
    assert [value.split("-")[2] for value in told if value] == [c.span_id.hex() for c in calls]
    first, second = (attributes(call.attributes) for call in calls)
    assert (first["http.response.status_code"], first["error.type"]) == (503, "503")
    assert calls[0].status.code == Status.STATUS_CODE_ERROR
    assert (second["http.response.status_code"], second["http.request.resend_count"]) == (200, 1)
    assert "error.type" not in second and calls[1].status.code == Status.STATUS_CODE_UNSET
    assert second["url.full"] == f"{node.url}/open/y"
    assert server.status.code == Status.STATUS_CODE_UNSET


def test_a_try_that_timed_out_is_an_error_span() -> None:
    def hang(conn: Conn, _: Request) -> None:
        conn.sock.recv(1)  # until the gateway gives up on it

    retries = {"on": ["timeout"], "per_try_timeout": 0.2, "backoff": 0}
    with (
        Upstream(answers_after(1, hang)) as node,
        traced({"url": node.url, "retries": retries}) as (client, collector),
    ):
        response = client.request("GET", "/open/z")
        _, calls = spans_of(collector, 3)
    assert response.status == 200
    first, second = (attributes(call.attributes) for call in calls)
    assert first["error.type"] == "timeout" and "http.response.status_code" not in first
    assert calls[0].end_time_unix_nano - calls[0].start_time_unix_nano >= 150_000_000
    assert second["http.response.status_code"] == 200 and "error.type" not in second


def test_the_status_counts_the_spans_each_worker_could_not_export(tmp_path: Path) -> None:
    """Each worker exports its own spans: its status document counts those lost (no
    collector listens), and ``quiver status`` sums them over the workers."""
    run_dir = tmp_path / "run"
    with Upstream(echo) as node:
        config = catch_all_config(node.url, workers=2) + (
            f"run_dir: {run_dir}\n"
            "tracing:\n"
            "  sample: 1\n"
            f"  otlp: {{endpoint: 'http://127.0.0.1:{closed_port()}/v1/traces', timeout: 1s}}\n"
        )
        with serving(write_config(tmp_path, config)) as proxy:
            for index in range(20):  # each on a connection of its own: both workers take some
                with Client(proxy.port) as client:
                    response: Response = client.request("GET", f"/n{index}?q={index}")
                    assert response.status == 200

            def failed() -> int:
                return sum(
                    worker.get("tracing", {}).get("failed", 0) for worker in read_status(run_dir)
                )

            wait_until(lambda: failed() == 40, "40 spans counted as failed", timeout=20)
            workers = json.loads(run_quiver("status", "--run-dir", str(run_dir), "--json").stdout)
            shown = run_quiver("status", "--run-dir", str(run_dir)).stdout
    assert len(workers) == 2
    assert sum(worker["tracing"]["failed"] for worker in workers) == 40
    assert {worker["tracing"]["exported"] for worker in workers} == {0}
    assert re.search(r"2 worker\(s\), .*spans: 0 exported, 0 dropped, 40 failed", shown)
