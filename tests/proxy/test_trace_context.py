"""W3C trace context through the gateway: what the node is told of the trace.

With ``tracing`` on, a node gets a ``traceparent`` naming the caller's trace (or a
new one) and the gateway's upstream call as its parent; without it, the fields
pass as the client sent them.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from quiver.config.tracing import Tracing
from quiver.http.tracecontext import TraceContext, parse_traceparent
from quiver.proxy.tracecontext import Propagator
from tests.support.process import catch_all_config, serving, write_config
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(30)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE}-{SPAN}-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")


def sent_upstream(
    headers: dict[str, str], tracing: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """The trace context fields the node got for one request with ``headers``."""
    with Upstream(echo) as node:
        config = make_config({"backend": node.url}, tracing=tracing or {})
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/items", headers)
    assert response.status == 200
    return [
        (name.lower(), value)
        for name, value in response.json()["headers"]
        if name.lower() in ("traceparent", "tracestate")
    ]


def parts(traceparent: str) -> tuple[str, str, str]:
    match = TRACEPARENT.match(traceparent)
    assert match is not None, traceparent
    trace_id, parent_id, flags = match.groups()
    assert trace_id != "0" * 32 and parent_id != "0" * 16
    return trace_id, parent_id, flags


def test_the_node_gets_the_callers_trace_with_the_gateway_as_parent() -> None:
    fields = sent_upstream({"traceparent": PARENT, "tracestate": "rojo=00f067aa0ba902b7"})
    assert [name for name, _ in fields] == ["traceparent", "tracestate"]
    trace_id, parent_id, flags = parts(fields[0][1])
    assert (trace_id, flags) == (TRACE, "01")
    assert parent_id != SPAN  # the gateway's call, not the caller's span
    assert fields[1] == ("tracestate", "rojo=00f067aa0ba902b7")


def test_a_request_without_trace_context_begins_a_trace() -> None:
    first = sent_upstream({})
    second = sent_upstream({})
    assert [name for name, _ in first] == ["traceparent"]
    assert parts(first[0][1])[0] != parts(second[0][1])[0]


@pytest.mark.parametrize(
    "invalid",
    [
        f"00-{TRACE.upper()}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01-extra",
    ],
)
def test_an_invalid_traceparent_is_replaced_by_a_new_trace(invalid: str) -> None:
    fields = sent_upstream({"traceparent": invalid, "tracestate": "rojo=1"})
    assert [name for name, _ in fields] == ["traceparent"]  # its tracestate goes with it
    assert parts(fields[0][1])[0] != TRACE


def test_two_traceparent_fields_are_no_valid_one() -> None:
    with Upstream(echo) as node:
        config = make_config({"backend": node.url}, tracing={})
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            client.send(
                f"GET / HTTP/1.1\r\nHost: x\r\ntraceparent: {PARENT}\r\n"
                f"traceparent: {PARENT}\r\n\r\n".encode()
            )
            response = client.read_response()
    sent = [v for n, v in response.json()["headers"] if n.lower() == "traceparent"]
    assert len(sent) == 1 and parts(sent[0])[0] != TRACE


def test_the_callers_sampled_flag_is_followed_unless_told_otherwise() -> None:
    unsampled = f"00-{TRACE}-{SPAN}-00"
    [(_, value)] = sent_upstream({"traceparent": unsampled}, {"sample": 1.0})
    assert parts(value)[2] == "00"
    ignored = {"sample": 0.0, "respect_parent": False}
    [(_, value)] = sent_upstream({"traceparent": PARENT}, ignored)
    assert parts(value)[:1] == (TRACE,) and parts(value)[2] == "00"


def test_without_tracing_the_fields_pass_as_sent() -> None:
    with (
        Upstream(echo) as node,
        RunningProxy(make_config({"backend": node.url})) as proxy,
        Client(proxy.port) as client,
    ):
        response = client.request("GET", "/", {"traceparent": "junk", "tracestate": "a=1"})
    fields = {n.lower(): v for n, v in response.json()["headers"]}
    assert (fields["traceparent"], fields["tracestate"]) == ("junk", "a=1")


def test_a_served_gateway_propagates_trace_context(tmp_path: Path) -> None:
    with Upstream(echo) as node:
        text = catch_all_config(node.url) + "tracing:\n  sample: 0\n"
        path = write_config(tmp_path, text)
        with serving(path) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/", {"traceparent": PARENT})
    fields = {n.lower(): v for n, v in response.json()["headers"]}
    trace_id, parent_id, flags = parts(fields["traceparent"])
    assert (trace_id, flags) == (TRACE, "01") and parent_id != SPAN


class Head:
    """What ``Propagator.begin`` reads of an exchange."""

    def __init__(self, traceparent: bytes | None = None) -> None:
        self.traceparent = traceparent
        self.tracestate: bytes | None = None
        self.forward: list[tuple[bytes, bytes]] = []
        self.host_header = b"api.example:8080"
        self.query = b""
        self.version = b"1.1"
        self.trace: TraceContext | None = None
        self.began = 0.0
        self.client = SimpleNamespace(scheme=b"https")


def begin(propagator: Propagator, traceparent: bytes | None = None) -> Head:
    head = Head(traceparent)
    propagator.begin(head)  # type: ignore[arg-type]
    [value] = [value for name, value in head.forward if name == b"traceparent"]
    assert parse_traceparent(value) is not None
    return head


def sampled(propagator: Propagator, traceparent: bytes | None = None) -> bool:
    return begin(propagator, traceparent).trace is not None


def test_sampled_requests_come_at_geometric_gaps() -> None:
    # each gap: floor(log(1 - u) / log(1 - sample)) + 1 decisions
    draws = iter([0.5, 0.0, 0.9, 0.5])  # gaps of 7, 1, 22 at sample 0.1
    propagator = Propagator(Tracing(sample=0.1), rng=lambda: next(draws))
    decisions = [sampled(propagator) for _ in range(30)]
    assert [n for n, chosen in enumerate(decisions, 1) if chosen] == [7, 8, 30]


def test_the_share_sampled_is_the_setting() -> None:
    rng = random.Random(7)
    propagator = Propagator(Tracing(sample=0.01), rng=rng.random)
    count = sum(sampled(propagator) for _ in range(100_000))
    assert 900 < count < 1100
    assert not any(sampled(Propagator(Tracing(sample=0))) for _ in range(100))
    assert all(sampled(Propagator(Tracing(sample=1))) for _ in range(100))


def test_a_callers_decision_counts_unless_told_otherwise() -> None:
    unsampled = b"00-" + TRACE.encode() + b"-" + SPAN.encode() + b"-00"
    assert not sampled(Propagator(Tracing(sample=1)), unsampled)
    assert sampled(Propagator(Tracing(sample=1, respect_parent=False)), unsampled)
    assert not sampled(Propagator(Tracing(sample=0, respect_parent=False)), PARENT.encode())


def test_a_sampled_trace_keeps_what_its_spans_need() -> None:
    head = begin(Propagator(Tracing(sample=1.0)))
    trace = head.trace
    assert trace is not None and head.began > 0
    assert (trace.scheme, trace.host) == (b"https", b"api.example:8080")
    assert trace.parent_id is None and trace.state is None
    sent = parse_traceparent(head.forward[0][1])
    assert sent is not None
    assert (sent.trace_id, sent.span_id, sent.flags) == (trace.trace_id, trace.upstream_id, 1)
    assert len({trace.span_id, trace.upstream_id}) == 2


def test_a_sampled_child_trace_keeps_the_callers_ids_and_state() -> None:
    head = Head(PARENT.encode())
    head.tracestate = b"rojo=1"
    Propagator(Tracing()).begin(head)  # type: ignore[arg-type]
    trace = head.trace
    assert trace is not None
    assert (trace.trace_id, trace.parent_id, trace.state) == (
        TRACE.encode(),
        SPAN.encode(),
        b"rojo=1",
    )


def test_new_unsampled_traces_have_ids_of_their_own() -> None:
    propagator = Propagator(Tracing(sample=0))
    values = [begin(propagator).forward[0][1] for _ in range(3000)]  # (past one bulk)
    assert len({value[3:35] for value in values}) == 3000


def test_unsampled_new_traces_take_their_ids_from_the_bytes_drawn() -> None:
    drawn: list[int] = []

    def randbytes(n: int) -> bytes:
        drawn.append(n)
        return bytes(i % 251 for i in range(n))

    propagator = Propagator(Tracing(sample=0), bits=lambda k: (1 << k) - 1, randbytes=randbytes)
    values = [begin(propagator).forward[0][1] for _ in range(1025)]
    assert drawn == [16 * 1024, 16 * 1024]  # a thousand at a time
    tail = b"-ffffffffffffffff-00"  # the worker's one parent id (bits), not sampled
    taken = bytes(i % 251 for i in range(16 * 1024))
    assert values[0] == b"00-" + taken[-16:].hex().encode() + tail  # (taken from the end)
    assert values[1023] == b"00-" + taken[:16].hex().encode() + tail
    assert values[1024] == values[0]  # (the next thousand drew the same bytes here)
