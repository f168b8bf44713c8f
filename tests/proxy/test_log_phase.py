"""The log phase runs once for every exchange whose plugins began, however it ended:
answered, refused, failed upstream, upgraded, or abandoned by its client."""

from __future__ import annotations

import asyncio
import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import Field

from quiver.plugins.base import AccessResult, Plugin, PluginConfig, PluginRequest
from quiver.proxy.phases import PhaseRunner
from quiver.proxy.server import ProxyState
from tests.support.catalog import built_in
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo, json_response, silent_until_closed

pytestmark = pytest.mark.timeout(30)


class Ended:
    """How exchanges ended, as the log phase saw them (path and status)."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, int]] = []
        self.changed = threading.Condition()

    def add(self, path: bytes, status: int) -> None:
        with self.changed:
            self.seen.append((path, status))
            self.changed.notify_all()

    def wait_for(self, path: bytes) -> list[int]:
        """The statuses logged for ``path`` once there is one."""
        with self.changed:
            assert self.changed.wait_for(lambda: any(p == path for p, _ in self.seen), 10)
            return [status for p, status in self.seen if p == path]


ENDED = Ended()
ENTERED = Ended()  # (access phases that began, with the count of logged ones)


class RecordConfig(PluginConfig):
    wait: bool = Field(False, description="Make access wait on an event that never comes.")


class Record(Plugin[RecordConfig]):
    """Records each exchange's end; with ``wait``, its access phase never finishes."""

    name = "test-ended"
    priority = 500
    Config = RecordConfig

    def access(self, request: PluginRequest) -> AccessResult:
        ENTERED.add(request.raw_path, len(ENDED.seen))  # (how many were logged by then)
        if self.config.wait and request.raw_path == b"/wait":
            return asyncio.Event().wait()  # type: ignore[return-value]
        return None

    def log(self, request: PluginRequest) -> None:
        ENDED.add(request.raw_path, request.status)


CATALOG = built_in().with_plugins(Record)


def running(url: str, **plugin: Any) -> RunningProxy:
    route = {"name": "r", "paths": ["/"], "target": "b", "plugins": {"test-ended": plugin}}
    return RunningProxy(make_config({"b": url}, [route]), CATALOG)


def reset(client: Client) -> None:
    """Leave as a client that gives up does: the connection reset (a FIN alone reads
    as a half-closed client still waiting for its answer)."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.sock.close()


def logged_once(client_port: int, path: bytes) -> list[int]:
    """The statuses logged for ``path``, read after a later exchange's log so that a
    second run for ``path`` would have shown (the loop runs them in order)."""
    marker = b"/after" + path
    with Client(client_port) as client:
        client.request("GET", marker.decode())
    ENDED.wait_for(marker)
    return ENDED.wait_for(path)


def test_an_answered_request_is_logged_once_with_its_status() -> None:
    with Upstream(echo) as node, running(node.url) as proxy, Client(proxy.port) as client:
        assert client.request("GET", "/answered").status == 200
        assert logged_once(proxy.port, b"/answered") == [200]


def test_a_client_leaving_while_the_node_thinks_is_logged_as_499() -> None:
    reached = threading.Event()

    def hold(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None and request.path != "/left":
            json_response(conn, request)
            return
        reached.set()
        silent_until_closed(conn)

    with Upstream(hold) as node, running(node.url) as proxy:
        with Client(proxy.port) as client:
            client.send(b"GET /left HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reached.wait(5)
            reset(client)
        assert logged_once(proxy.port, b"/left") == [499]


def test_a_client_leaving_while_an_access_phase_waits_is_logged_as_499() -> None:
    with Upstream(echo) as node, running(node.url, wait=True) as proxy:
        with Client(proxy.port) as client:
            client.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            ENTERED.wait_for(b"/wait")
            reset(client)
        assert logged_once(proxy.port, b"/wait") == [499]


def test_a_client_leaving_during_the_response_body_keeps_the_status_sent() -> None:
    def half(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None and request.path != "/cut":
            json_response(conn, request)
        elif request is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
            conn.sock.recv(1)  # until the proxy gives up on it

    with Upstream(half) as node, running(node.url) as proxy:
        with Client(proxy.port) as client:
            client.send(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.sock.recv(1)  # the response has begun
            reset(client)
        assert logged_once(proxy.port, b"/cut") == [200]


def test_an_unreachable_node_is_logged_once_with_the_error_status() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening
    with running(url) as proxy, Client(proxy.port) as client:
        assert client.request("GET", "/down").status == 502
        assert logged_once(proxy.port, b"/down") == [502]
    closed.close()


def test_an_accepted_upgrade_is_logged_as_101_when_the_tunnel_closes() -> None:
    def tunnel(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\nConnection: Upgrade\r\n\r\n"
            )
            while conn.sock.recv(65536):
                pass

    with Upstream(tunnel) as node, running(node.url) as proxy, Client(proxy.port) as client:
        client.send(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n")
        assert client.read_response().status == 101
        client.send(b"still tunnelled")
        with Client(proxy.port) as other:  # an exchange logged after the upgrade began
            other.request("GET", "/while-open")
        ENDED.wait_for(b"/while-open")
        assert not any(path == b"/up" for path, _ in ENDED.seen)
        client.close()
        assert logged_once(proxy.port, b"/up") == [101]


def test_an_exchange_is_logged_before_the_next_request_on_its_connection_starts() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # refused: its 502 is answered from a task
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with running(url) as proxy, Client(proxy.port) as client:
        for _ in range(20):  # (a fast client often came before a deferred log)
            assert client.request("GET", "/first").status == 502
            assert client.request("GET", "/then").status == 502
        logged_before = ENTERED.wait_for(b"/then")
        firsts = [index for index, (path, _) in enumerate(ENDED.seen) if path == b"/first"]
    closed.close()
    assert all(logged > first for logged, first in zip(logged_before, firsts, strict=True))


def test_exchanges_ending_in_one_turn_schedule_one_log_step() -> None:
    """However many exchanges end before the loop turns, and even when a request's
    start ran the log step meanwhile, one callback is scheduled; it logs what is left,
    and the next exchange to end schedules the next one."""
    scheduled: list[Any] = []
    state = ProxyState.__new__(ProxyState)
    state.loop = SimpleNamespace(call_soon=scheduled.append)  # type: ignore[assignment]
    state.ended, state.log_scheduled = [], False
    state.recording, state.record_writer = True, None
    logged: list[int] = []

    def ended(number: int) -> None:
        runner = SimpleNamespace(
            logged=False,
            chain=SimpleNamespace(log=[]),
            trace=None,
            client=SimpleNamespace(server=state),
            run_log=lambda: logged.append(number),
        )
        PhaseRunner._log_later(runner)  # type: ignore[arg-type]

    ended(1)
    ended(2)
    state.log_ended()  # (a request starting on a connection runs it first)
    ended(3)
    assert logged == [1, 2]
    assert len(scheduled) == 1
    scheduled.pop()()
    assert logged == [1, 2, 3]
    assert not state.log_scheduled and state.ended == []
    ended(4)
    assert len(scheduled) == 1
