"""WebSocket connections when the gateway lets go of them: a worker draining on
SIGTERM, and a reload that removes their route, with a real ``quiver serve``."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.process import serving
from tests.support.websocket import EchoServer, echo_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server() as server:
        yield server


def config_text(echo: EchoServer, routes: dict[str, str], drain: str = "10s") -> str:
    """One target, and a route per entry of ``routes``: its name and websocket settings."""
    lines = [
        "listen: 127.0.0.1:0",
        f"drain_timeout: {drain}",
        "targets:",
        f"  - {{name: chat, url: {echo.url}}}",
        "routes:",
    ]
    for name, settings in routes.items():
        lines.append(f"  - {{name: {name}, paths: [/{name}], target: chat, websocket: {settings}}}")
    return "\n".join(lines) + "\n"


@contextmanager
def open_ws(port: int, path: str) -> Iterator[ClientConnection]:
    url = f"ws://127.0.0.1:{port}/{path}"
    with connect(url, compression=None, ping_interval=None, open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        yield ws


def ended(ws: ClientConnection) -> tuple[int | None, float]:
    """The close code the gateway sent (None: the connection just ended), and when."""
    try:
        while True:
            ws.recv(timeout=20)
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd is not None else None), time.monotonic()


def test_sigterm_lets_sockets_live_until_the_route_drain_timeout_then_sends_1001(
    tmp_path: Path, echo: EchoServer
) -> None:
    config = tmp_path / "quiver.yaml"
    routes = {
        "framed": "{max_message_size: 1MiB, drain_timeout: 1s}",
        "opaque": "{drain_timeout: 1s}",
    }
    config.write_text(config_text(echo, routes))
    with serving(config) as proc:
        with open_ws(proc.port, "framed") as framed, open_ws(proc.port, "opaque") as opaque:
            signalled = time.monotonic()
            proc.signal(signal.SIGTERM)
            framed.send("still served while draining")
            assert framed.recv(timeout=5) == "still served while draining"
            code, at = ended(framed)
            assert code == 1001
            assert 0.8 < at - signalled < 5
            opaque_code, _ = ended(opaque)
            assert opaque_code is None  # no frames read: its TCP connections are closed
        assert proc.wait(20) == 0


def test_the_process_drain_bounds_a_longer_route_drain(tmp_path: Path, echo: EchoServer) -> None:
    config = tmp_path / "quiver.yaml"
    config.write_text(config_text(echo, {"chat": "{idle_timeout: 1m, drain_timeout: 1h}"}, "2s"))
    with serving(config) as proc:
        with open_ws(proc.port, "chat") as ws:
            signalled = time.monotonic()
            proc.signal(signal.SIGTERM)
            code, at = ended(ws)
        assert code == 1001
        assert at - signalled < 2.5  # a second before the drain ends, for the handshake
        assert proc.wait(20) == 0


def test_a_reload_removing_a_route_ends_its_sockets_with_1001_and_spares_the_rest(
    tmp_path: Path, echo: EchoServer
) -> None:
    config = tmp_path / "quiver.yaml"
    kept = "{max_message_size: 1MiB}"
    config.write_text(
        config_text(echo, {"gone": "{max_message_size: 1MiB, drain_timeout: 0.5s}", "kept": kept})
    )
    with serving(config) as proc:
        with open_ws(proc.port, "gone") as gone, open_ws(proc.port, "kept") as stays:
            config.write_text(config_text(echo, {"kept": kept}))
            reloaded = time.monotonic()
            proc.signal(signal.SIGHUP)
            proc.wait_for("config reloaded from")
            code, at = ended(gone)
            assert code == 1001
            assert 0.4 < at - reloaded < 5
            stays.send("untouched by the reload")
            assert stays.recv(timeout=5) == "untouched by the reload"
        proc.wait_for("config reloaded from")


def test_a_reload_sending_a_route_elsewhere_ends_its_sockets(
    tmp_path: Path, echo: EchoServer
) -> None:
    config = tmp_path / "quiver.yaml"
    text = config_text(echo, {"chat": "{idle_timeout: 1m, drain_timeout: 0s}"})
    config.write_text(text)
    moved = text.replace("target: chat", "target: other").replace(
        "targets:\n", f"targets:\n  - {{name: other, url: {echo.url}}}\n"
    )
    with serving(config) as proc, open_ws(proc.port, "chat") as ws:
        config.write_text(moved)
        proc.signal(signal.SIGHUP)
        proc.wait_for("config reloaded from")
        code, _ = ended(ws)
        assert code == 1001
        with open_ws(proc.port, "chat") as again:  # new sockets go to the new target
            again.send("on")
            assert again.recv(timeout=5) == "on"
