"""WebSocket connections through the gateway: the plugin chain on the upgrade, and
the frame-aware relay of routes with ``websocket:`` limits (close codes of RFC 6455
§7.4.1), with the ``websockets`` library on both sides."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.sync.server import ServerConnection, serve

from quiver.config.models import RouteWebSocket
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.websocket import EchoServer, RawSocket, echo_server, frame

pytestmark = pytest.mark.timeout(30)

ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
CONSUMERS = [
    {"name": "alice", "groups": ["chat"], "credentials": {"key-auth": [{"key": ALICE}]}},
    {"name": "bob", "groups": ["staff"], "credentials": {"key-auth": [{"key": BOB}]}},
]
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server() as server:
        yield server


def gateway(
    echo: EchoServer, websocket: dict[str, Any] | None = None, plugins: dict[str, Any] | None = None
) -> RunningProxy:
    route: dict[str, Any] = {"name": "chat", "paths": ["/ws"], "target": "chat"}
    if websocket is not None:
        route["websocket"] = websocket
    if plugins is not None:
        route["plugins"] = plugins
    return RunningProxy(make_config({"chat": echo.url}, [route], consumers=CONSUMERS))


def open_ws(proxy: RunningProxy, key: str | None = None) -> ClientConnection:
    headers = {"apikey": key} if key is not None else None
    return connect(
        f"ws://127.0.0.1:{proxy.port}/ws",
        additional_headers=headers,
        compression=None,
        ping_interval=None,
        open_timeout=5,
        close_timeout=5,
    )


def closed_with(ws: ClientConnection) -> int:
    """The code of the close frame the gateway sent, read after what came before it."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None, "no close frame came"
    return info.value.rcvd.code


# -- config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"max_message_size": "1MiB", "idle_timeout": "60s", "message_rate": 100},
        {"message_rate": 0.5, "message_burst": 3, "drain_timeout": "0s"},
    ],
)
def test_valid_websocket_settings(settings: dict[str, Any]) -> None:
    RouteWebSocket.model_validate(settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_message_size": 0},
        {"idle_timeout": "0s"},
        {"message_rate": -1},
        {"message_burst": 5},  # without a rate
        {"drain_timeout": "soon"},
        {"max_size": "1MiB"},
    ],
)
def test_invalid_websocket_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        RouteWebSocket.model_validate(settings)


def test_sizes_read_as_elsewhere_and_frames_read_only_with_a_limit() -> None:
    assert RouteWebSocket.model_validate({"max_message_size": "1MiB"}).max_message_size == 2**20
    assert not RouteWebSocket.model_validate({"drain_timeout": "5s"}).frame_aware
    assert RouteWebSocket.model_validate({"idle_timeout": "5s"}).frame_aware


# -- relaying -----------------------------------------------------------------------


@pytest.mark.parametrize("limits", [None, {"max_message_size": "1MiB", "message_rate": 1000}])
def test_messages_are_echoed_through_the_gateway(
    echo: EchoServer, limits: dict[str, Any] | None
) -> None:
    with gateway(echo, limits) as proxy, open_ws(proxy) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        binary = os.urandom(70_000)  # a 64-bit length (§5.2)
        ws.send(binary)
        assert ws.recv(timeout=5) == binary
        ws.send(iter([b"frag", b"ment", b"ed"]))  # one message in three frames
        assert ws.recv(timeout=5) == b"fragmented"
        ws.send(iter(["te", "xt"]))
        assert ws.recv(timeout=5) == "text"
        assert ws.ping(b"are you there").wait(5)
        ws.close()
    assert ws.close_code == 1000


def test_frames_split_byte_by_byte_are_read_whole(echo: EchoServer) -> None:
    with gateway(echo, {"max_message_size": 1000}) as proxy, RawSocket(proxy.port) as raw:
        assert raw.status == 101
        frames = (
            frame(0x1, b"split ", fin=False)
            + frame(0x9, b"ping amid fragments")  # a control frame between fragments
            + frame(0x0, b"apart")
            + frame(0x2, os.urandom(300))  # a 16-bit length
        )
        for byte in frames:
            raw.send(bytes([byte]))
        assert raw.read_frame() == (0xA, b"ping amid fragments")
        assert raw.read_frame() == (0x1, b"split apart")
        opcode, payload = raw.read_frame()
        assert (opcode, len(payload)) == (0x2, 300)


# -- the plugin chain on the upgrade ------------------------------------------------


def test_an_upgrade_without_a_key_is_401_problem_json(echo: EchoServer) -> None:
    with gateway(echo, plugins={"key-auth": {}}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/ws", headers=UPGRADE)
    assert_problem(response, 401)
    with gateway(echo, plugins={"key-auth": {}}) as proxy, open_ws(proxy, ALICE) as ws:
        ws.send("in")
        assert ws.recv(timeout=5) == "in"


def test_the_acl_keeps_other_groups_from_upgrading(echo: EchoServer) -> None:
    plugins = {"key-auth": {}, "acl": {"allow": ["chat"]}}
    with gateway(echo, plugins=plugins) as proxy:
        with Client(proxy.port) as client:
            response = client.request("GET", "/ws", headers={**UPGRADE, "apikey": BOB})
        assert_problem(response, 403)
        with open_ws(proxy, ALICE) as ws:
            ws.send("allowed")
            assert ws.recv(timeout=5) == "allowed"


def test_a_rate_limit_refuses_upgrades_over_it_with_429(echo: EchoServer) -> None:
    plugins = {"key-auth": {}, "rate-limit": {"limit": 1, "window": "1m", "by": "consumer"}}
    with gateway(echo, plugins=plugins) as proxy:
        with open_ws(proxy, ALICE) as ws:
            ws.send("first")
            assert ws.recv(timeout=5) == "first"
        with Client(proxy.port) as client:
            response = client.request("GET", "/ws", headers={**UPGRADE, "apikey": ALICE})
        assert_problem(response, 429)


def test_a_concurrency_limit_counts_open_sockets_per_consumer(echo: EchoServer) -> None:
    plugins = {"key-auth": {}, "concurrency-limit": {"limit": 1, "by": "consumer"}}
    with gateway(echo, plugins=plugins) as proxy:
        with open_ws(proxy, ALICE):
            with Client(proxy.port) as client:
                refused = client.request("GET", "/ws", headers={**UPGRADE, "apikey": ALICE})
            assert_problem(refused, 429)
            with open_ws(proxy, BOB) as other:  # another consumer has slots of its own
                other.send("bob")
                assert other.recv(timeout=5) == "bob"
        deadline = time.monotonic() + 10
        while True:  # (the slot comes back once the gateway saw the socket close)
            try:
                with open_ws(proxy, ALICE) as again:
                    again.send("again")
                    assert again.recv(timeout=5) == "again"
                break
            except InvalidStatus as exc:
                assert exc.response.status_code == 429
                assert time.monotonic() < deadline, "the slot never came back"
                time.sleep(0.01)


# -- limits and close codes ---------------------------------------------------------


def test_a_message_over_the_size_limit_closes_with_1009_both_ways(echo: EchoServer) -> None:
    with gateway(echo, {"max_message_size": "64k"}) as proxy, open_ws(proxy) as ws:
        ws.send(os.urandom(60_000))
        assert len(ws.recv(timeout=5)) == 60_000
        # too big only together; the gateway's close may come while the second
        # fragment is still going out, and then the send itself sees it
        with contextlib.suppress(ConnectionClosed):
            ws.send(iter([os.urandom(40_000), os.urandom(40_000)]))
        assert closed_with(ws) == 1009
    echo.server.shutdown()  # (waits for the echo's connection to end)
    assert echo.closes == [1009]


def test_a_node_message_over_the_limit_closes_with_1009_too() -> None:
    node_closes: list[int | None] = []

    def bigger(ws: ServerConnection) -> None:
        try:
            for message in ws:
                ws.send(message * 20)  # 10 bytes in, 200 out
        except ConnectionClosed:
            pass
        node_closes.append(ws.close_code)

    with serve(bigger, "127.0.0.1", 0, compression=None) as node:
        thread = threading.Thread(target=node.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{node.socket.getsockname()[1]}"
        route: dict[str, Any] = {"name": "chat", "paths": ["/ws"], "target": "chat"}
        route["websocket"] = {"max_message_size": 100}
        with RunningProxy(make_config({"chat": url}, [route])) as proxy, open_ws(proxy) as ws:
            ws.send("0123456789")
            assert closed_with(ws) == 1009
        node.shutdown()
        thread.join(5)
    assert node_closes == [1009]


def test_messages_faster_than_the_rate_close_with_1008(echo: EchoServer) -> None:
    settings = {"message_rate": 2, "message_burst": 5}
    with gateway(echo, settings) as proxy, open_ws(proxy) as ws:
        for n in range(5):  # the burst passes
            ws.send(f"m{n}")
            assert ws.recv(timeout=5) == f"m{n}"
        try:
            for n in range(5, 50):
                ws.send(f"m{n}")
        except ConnectionClosed:
            pass
        assert closed_with(ws) == 1008


def test_a_silent_connection_closes_with_1001_after_the_idle_timeout(echo: EchoServer) -> None:
    with gateway(echo, {"idle_timeout": 0.3}) as proxy, open_ws(proxy) as ws:
        ws.send("awake")
        assert ws.recv(timeout=5) == "awake"
        started = time.monotonic()
        assert closed_with(ws) == 1001
        assert 0.25 < time.monotonic() - started < 5


@pytest.mark.parametrize(
    "bad",
    [
        frame(0x1, b"unmasked", mask=False),
        frame(0x3, b"reserved opcode"),
        frame(0x9, b"p" * 126),  # a control frame over 125 bytes
        frame(0x9, b"ping", fin=False),  # a fragmented control frame
        frame(0x0, b"continuation of nothing"),
        frame(0x1, b"a", fin=False) + frame(0x1, b"new message amid fragments"),
    ],
    # the frames' masks are random: ids of their own keep the names the same in
    # every process that collects them
    ids=[
        "unmasked",
        "reserved-opcode",
        "long-control-frame",
        "fragmented-control-frame",
        "continuation-of-nothing",
        "new-message-amid-fragments",
    ],
)
def test_a_protocol_error_from_the_client_closes_with_1002(echo: EchoServer, bad: bytes) -> None:
    with gateway(echo, {"max_message_size": "1MiB"}) as proxy, RawSocket(proxy.port) as raw:
        raw.send(frame(0x1, b"fine"))
        assert raw.read_frame() == (0x1, b"fine")
        raw.send(bad)
        assert raw.read_close_code() == 1002
    echo.server.shutdown()
    assert echo.closes == [1002]  # the node got a close frame too
