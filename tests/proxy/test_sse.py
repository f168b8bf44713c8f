"""Server-sent event streams through the proxy: every event reaches the client before
the node sends the next (nothing on the way holds them back), Last-Event-ID goes
upstream as sent, and heartbeats keep idle streams alive between events only."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from quiver.plugins.base import Plugin, PluginConfig, PluginRequest
from quiver.plugins.sse import EventSplitter
from quiver.proxy.sse import Heartbeat, ends_event, is_event_stream
from tests.support.catalog import built_in
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.sse import EventNode, StreamClient
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(60)

KEY = "sse-key-" + "k" * 24
CONSUMERS = [{"name": "alice", "credentials": {"key-auth": [{"key": KEY}]}}]
AUTH = {"apikey": KEY}
EVENTS = [b"id: %d\nevent: tick\ndata: %d\n\n" % (i, i) for i in range(1, 6)]


class Upper(Plugin[PluginConfig]):
    """A response_body plugin: upper-cases the body as it streams."""

    name = "test-upper"
    priority = 10
    Config = PluginConfig

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        return chunk.upper()


class DropDebug(Plugin[PluginConfig]):
    """A response_body plugin that sees whole events: drops those of type "debug"."""

    name = "test-drop-debug"
    priority = 10
    Config = PluginConfig

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        splitter = request.ctx.setdefault(self.name, EventSplitter())
        kept = [e.raw for e in splitter.feed(chunk) if e.event != "debug"]
        if last:
            kept.append(splitter.rest())
        return b"".join(kept)


CATALOG = built_in().with_plugins(Upper, DropDebug)


def start(
    node: Upstream, *, extra_plugins: dict[str, Any] | None = None, **route: Any
) -> RunningProxy:
    plugins: dict[str, Any] = {
        "key-auth": {},
        "rate-limit": {"limit": 1000, "window": 60},
        **(extra_plugins or {}),
    }
    spec = {"name": "events", "paths": ["/"], "target": "b", "plugins": plugins, **route}
    config = make_config({"b": node.url}, [spec], consumers=CONSUMERS)
    return RunningProxy(config, CATALOG)


def relay_in_lockstep(stream: StreamClient, events: list[bytes], node: EventNode) -> list[bytes]:
    got = []
    for index in range(len(events)):
        got.append(stream.next_event())
        node.acks[index].set()  # only now does the node send the next one
    stream.finish()
    return got


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="plain"),
        pytest.param({"plugins": {"test-upper": {}}}, id="response_body-plugin"),
        pytest.param({"call_log": {"bodies": True}}, id="call-log-capture"),
        pytest.param(
            {"plugins": {"response-transformer": {"remove": {"json": ["secret"]}}}},
            id="json-response-transformer",
        ),
        pytest.param({"sse": {"heartbeat": "60s"}}, id="heartbeat-route"),
        pytest.param(
            {"sse": {"heartbeat": "60s"}, "plugins": {"test-upper": {}}},
            id="heartbeat-route-with-response_body-plugin",
        ),
    ],
)
def test_every_event_reaches_the_client_before_the_next_is_sent(
    framing: str, extra: dict[str, Any]
) -> None:
    events = EventNode(EVENTS, framing=framing)
    extra = dict(extra)
    plugins = extra.pop("plugins", None)
    with (
        Upstream(events) as node,
        start(node, extra_plugins=plugins, **extra) as proxy,
        StreamClient(proxy.port, headers=AUTH) as stream,
    ):
        got = relay_in_lockstep(stream, EVENTS, events)
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
    expected = [e.upper() for e in EVENTS] if plugins and "test-upper" in plugins else EVENTS
    assert got == expected


def test_a_plugin_sees_whole_events_and_passes_each_on_at_once() -> None:
    # each event comes in two pieces, cut inside a line: the plugin holds the first
    # piece back and sends the event once whole, before the node sends the next
    sent = [b"event: tick\ndata: 1\n\n", b"event: debug\ndata: x\n\n", b"data: 2\n\n"]
    # (cut in the middle: an empty piece would be a chunk of length 0, the body's end)
    pieces = [piece for e in sent for piece in (e[: len(e) // 2], e[len(e) // 2 :])]
    node_script = EventNode(pieces)
    with (
        Upstream(node_script) as node,
        start(node, extra_plugins={"test-drop-debug": {}}) as proxy,
        StreamClient(proxy.port, headers=AUTH) as stream,
    ):
        for index, event in enumerate(sent):
            node_script.acks[2 * index].set()  # the first piece needs no ack
            if index != 1:
                assert stream.next_event() == event
            node_script.acks[2 * index + 1].set()
        stream.finish()
    assert stream.body == sent[0] + sent[2]


def test_an_access_log_does_not_hold_events_back(tmp_path: Any) -> None:
    events = EventNode(EVENTS)
    log = tmp_path / "access.log"
    spec = {
        "name": "events",
        "paths": ["/"],
        "target": "b",
        "plugins": {"key-auth": {}, "rate-limit": {"limit": 1000, "window": 60}},
    }
    with Upstream(events) as node:
        config = make_config(
            {"b": node.url}, [spec], consumers=CONSUMERS, access_log={"to": str(log)}
        )
        with RunningProxy(config, CATALOG) as proxy, StreamClient(proxy.port, headers=AUTH) as s:
            assert relay_in_lockstep(s, EVENTS, events) == EVENTS


def test_a_refused_stream_request_gets_a_problem() -> None:
    events = EventNode(EVENTS)
    with Upstream(events) as node, start(node) as proxy, StreamClient(proxy.port) as stream:
        stream.finish()
        assert stream.status == 401
        assert stream.headers["content-type"] == "application/problem+json"


def test_last_event_id_reaches_the_node_unchanged() -> None:
    events = EventNode(EVENTS[:1])
    odd = "42-\u00e9v\u00e9nement:7"  # sent as UTF-8 bytes, relayed byte for byte
    headers = {**AUTH, "Last-Event-ID": odd.encode().decode("latin-1")}
    with (
        Upstream(events) as node,
        start(node) as proxy,
        StreamClient(proxy.port, headers=headers) as stream,
    ):
        relay_in_lockstep(stream, EVENTS[:1], events)
    assert events.last_event_ids == [odd.encode().decode("latin-1")]


# --------------------------------------------------------------------------- heartbeats


def heartbeats_running(proxy: RunningProxy) -> int:
    def count() -> int:
        assert proxy.server is not None
        return sum(isinstance(m, Heartbeat) for m in proxy.server.sweeper.members)

    return proxy.call(count)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_an_idle_stream_gets_heartbeats_between_events_only(framing: str) -> None:
    # the node pauses twice: between two events, then inside one (after "data: pa")
    events = [b"data: one\n\n", b"data: two\n\n", b"data: part\ndata: three\n\n"]
    node_a = EventNode(events[:2], framing=framing, pause_before=1)
    node_b = EventNode(events, framing=framing, pause_before=2, split_at=8)
    with Upstream(node_a) as a, Upstream(node_b) as b:
        routes = [
            {
                "name": name,
                "paths": [f"/{name}"],
                "target": name,
                "strip_path": True,
                "plugins": {"key-auth": {}, "rate-limit": {"limit": 1000, "window": 60}},
                "sse": {"heartbeat": "50ms"},
            }
            for name in ("a", "b")
        ]
        config = make_config({"a": a.url, "b": b.url}, routes, consumers=CONSUMERS)
        with (
            RunningProxy(config, CATALOG) as proxy,
            StreamClient(proxy.port, "/a", AUTH) as idle,
            StreamClient(proxy.port, "/b", AUTH) as mid_event,
        ):
            assert idle.next_event() == b"data: one\n\n"
            node_a.acks[0].set()
            assert mid_event.next_event() == b"data: one\n\n"
            node_b.acks[0].set()
            assert mid_event.next_event() == b"data: two\n\n"
            node_b.acks[1].set()
            assert node_b.paused.wait(10) and node_a.paused.wait(10)
            # the stream paused between events gets heartbeats; once it has had
            # three, the sweeper has passed the other's deadline more than once too
            for _ in range(3):
                assert idle.next_event() == b": keep-alive\n\n"
            assert heartbeats_running(proxy) == 2
            node_b.resume.set()
            node_a.resume.set()
            assert mid_event.next_event() == b"data: part\ndata: three\n\n"
            node_b.acks[2].set()
            mid_event.finish()
            # (heartbeats may have come after the first two events: never inside one)
            second = idle.until(b"data: two\n\n")
            assert second.replace(b": keep-alive\n\n", b"") == b"data: two\n\n"
            node_a.acks[1].set()
            idle.finish()
            assert heartbeats_running(proxy) == 0  # they stop with their streams
    body = mid_event.body.replace(b": keep-alive\n\n", b"")
    assert body == b"".join(events)
    assert b"data: pa: keep-alive" not in mid_event.body


def test_heartbeats_leave_other_responses_of_the_route_as_they_are(node: Upstream) -> None:
    with start(node, sse={"heartbeat": "50ms"}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/plain", headers=AUTH)
        assert response.status == 200
        assert response.header("content-length") is not None
        assert response.header("transfer-encoding") is None
        assert heartbeats_running(proxy) == 0


# ---------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("tail", "between"),
    [
        (b"", True),
        (b"a\n\n", True),
        (b"\r\n\r\n", True),
        (b"\n\r\n", True),
        (b"a\r\r", True),
        (b"\r\r\n", True),
        (b"\n\r", True),
        (b"\n", True),  # a stream that starts with a blank line
        (b"a\r\n", False),
        (b"a\n", False),
        (b"a\r", False),
        (b"ata", False),
    ],
)
def test_where_an_event_ends(tail: bytes, between: bool) -> None:
    assert ends_event(tail) is between


def test_event_stream_content_types() -> None:
    assert is_event_stream(b"text/event-stream")
    assert is_event_stream(b"Text/Event-Stream; charset=utf-8")
    assert not is_event_stream(b"text/plain")
    assert not is_event_stream(None)


def test_an_http10_client_gets_heartbeats_in_a_body_ended_by_closing() -> None:
    events = [b"data: one\n\n", b"data: two\n\n"]
    script = EventNode(events, pause_before=1)
    with Upstream(script) as node, start(node, sse={"heartbeat": "50ms"}) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        with sock:
            sock.sendall(b"GET /events HTTP/1.0\r\napikey: " + KEY.encode() + b"\r\n\r\n")
            received = b""
            while received.count(b": keep-alive\n\n") < 2:
                data = sock.recv(65536)
                assert data, received
                received += data
            script.acks[0].set()
            script.resume.set()
            while b"data: two\n\n" not in received:
                data = sock.recv(65536)
                assert data, received
                received += data
            script.acks[1].set()
            while data := sock.recv(65536):
                received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head
    assert body.replace(b": keep-alive\n\n", b"") == b"".join(events)
    assert body.startswith(b"data: one\n\n: keep-alive\n\n")
