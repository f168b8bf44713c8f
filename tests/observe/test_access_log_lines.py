"""The access log's JSON lines, field by field, for each way an exchange ends:
proxied, failed upstream, refused by a plugin, answered from the cache, retried,
abandoned by its client, upgraded."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from quiver.config.access_log import ACCESS_LOG_FIELDS
from tests.observe.support import line_for, wait_lines
from tests.support.nodes import wait_until
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo

pytestmark = pytest.mark.timeout(30)


def answering(status: int, body: bytes = b"ok", **headers: str) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(status, body, list(headers.items()))

    return handler


@contextmanager
def logged(
    tmp_path: Path,
    *nodes: Callable[[Conn], None],
    route: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    **access_log: Any,
) -> Iterator[tuple[list[Upstream], Client, Path]]:
    """Nodes behind target ``backend``, route ``api``, an access log in ``tmp_path``,
    and a client of the proxy."""
    path = tmp_path / "access.log"
    with ExitStack() as stack:
        upstreams = [stack.enter_context(Upstream(node)) for node in nodes]
        spec = {"nodes": [{"url": u.url} for u in upstreams], **(target or {})}
        routes = [{"name": "api", "paths": ["/"], "target": "backend", **(route or {})}]
        config = make_config({"backend": spec}, routes, access_log={"to": str(path), **access_log})
        proxy = stack.enter_context(RunningProxy(config))
        yield upstreams, stack.enter_context(Client(proxy.port)), path


def test_a_proxied_request_is_one_line_with_every_field(tmp_path: Path) -> None:
    with logged(tmp_path, echo) as ([node], client, path):
        before = time.time()
        response = client.request(
            "POST", "/items/7?secret=1", {"User-Agent": "probe/1.0"}, body=b"12345"
        )
        assert response.status == 200
        [line] = wait_lines(path, 1)
    assert list(line) == list(ACCESS_LOG_FIELDS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["request_id"] == response.header("x-request-id")
    assert line["client_ip"] == "127.0.0.1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/items/7", 200)
    assert (line["route"], line["target"]) == ("api", "backend")
    assert line["node"] == f"127.0.0.1:{node.port}"
    assert line["consumer"] is None
    assert line["bytes_in"] == 5
    assert line["bytes_out"] > len(response.body)  # the head is counted too
    assert 0 <= line["upstream_ms"] <= line["latency_ms"] < (time.time() - before) * 1000 + 1
    assert line["gateway_ms"] == pytest.approx(line["latency_ms"] - line["upstream_ms"], abs=0.01)
    assert (line["retries"], line["cache"], line["answered_by"]) == (0, None, None)
    assert line["user_agent"] == "probe/1.0"


def test_the_query_is_kept_when_configured(tmp_path: Path) -> None:
    with logged(tmp_path, echo, query=True) as (_, client, path):
        assert client.request("GET", "/a?b=1").status == 200
        [line] = wait_lines(path, 1)
    assert line["path"] == "/a?b=1"


def test_an_upstream_error_is_a_502_line_naming_the_node(tmp_path: Path) -> None:
    def resetting(conn: Conn) -> None:
        conn.read_request()
        conn.reset()

    with logged(tmp_path, resetting) as ([node], client, path):
        assert client.request("GET", "/boom").status == 502
        [line] = wait_lines(path, 1)
    assert (line["status"], line["node"], line["answered_by"]) == (
        502,
        f"127.0.0.1:{node.port}",
        None,
    )


def test_a_plugin_refusal_names_the_plugin(tmp_path: Path) -> None:
    route: dict[str, Any] = {"plugins": {"key-auth": {}}}
    with logged(tmp_path, echo, route=route) as (_, client, path):
        response = client.request("GET", "/private")
        assert response.status == 401
        [line] = wait_lines(path, 1)
    assert (line["status"], line["answered_by"], line["node"], line["upstream_ms"]) == (
        401,
        "key-auth",
        None,
        None,
    )
    assert line["gateway_ms"] == line["latency_ms"]
    assert line["bytes_out"] > 0


def test_a_cache_hit_is_reported_by_the_cache(tmp_path: Path) -> None:
    route: dict[str, Any] = {"plugins": {"proxy-cache": {}}}
    cacheable = answering(200, b"fresh", **{"Cache-Control": "max-age=60"})
    with logged(tmp_path, cacheable, route=route) as (_, client, path):
        statuses = [client.request("GET", "/doc").header("x-cache-status") for _ in range(2)]
        assert statuses == ["MISS", "HIT"]
        first, second = wait_lines(path, 2)
    assert (first["cache"], first["answered_by"]) == ("MISS", None)
    assert (second["cache"], second["answered_by"], second["status"]) == ("HIT", "proxy-cache", 200)


def test_retries_are_counted(tmp_path: Path) -> None:
    target = {"retries": {"on": ["503"]}, "balance": {"algorithm": "round_robin"}}
    with logged(tmp_path, answering(503), answering(200), target=target) as (
        [_, good],
        client,
        path,
    ):
        assert [client.request("GET", f"/{i}").status for i in range(2)] == [200, 200]
        lines = wait_lines(path, 2)
    retried = [line for line in lines if line["retries"] == 1]
    assert retried, lines
    assert retried[0]["node"] == f"127.0.0.1:{good.port}"


def test_a_client_that_leaves_is_logged_499(tmp_path: Path) -> None:
    arrived = threading.Event()

    def holding(conn: Conn) -> None:
        conn.read_request()
        arrived.set()
        conn.sock.settimeout(10)
        with contextlib.suppress(OSError):
            conn.sock.recv(1)  # until the proxy lets go

    with logged(tmp_path, holding) as (_, client, path):
        client.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        assert arrived.wait(10)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        client.sock.close()
        line = line_for(path, "path", "/slow")
    assert line["status"] == 499
    assert line["bytes_out"] == 0


def test_a_websocket_upgrade_is_logged_101_when_the_tunnel_closes(tmp_path: Path) -> None:
    release = threading.Event()

    def upgrading(conn: Conn) -> None:
        conn.read_request()
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        release.wait(10)
        conn.send(b"bye")
        conn.close()

    with logged(tmp_path, upgrading) as (_, client, path):
        client.send(
            b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert client.read_response().status == 101
        port = client.sock.getpeername()[1]
        with Client(port) as other:  # an exchange that ends while the tunnel is open
            other.request("GET", "/marker")  # (502: the node switches protocols unasked)
        line_for(path, "path", "/marker")
        assert '"/chat"' not in path.read_text()
        release.set()  # the node ends the tunnel
        line = line_for(path, "path", "/chat")
    assert (line["status"], line["method"]) == (101, "GET")
    assert line["latency_ms"] > 0  # the life of the connection


def test_fields_select_and_order_what_is_written(tmp_path: Path) -> None:
    with logged(tmp_path, echo, fields=["status", "request_id"]) as (_, client, path):
        response = client.request("GET", "/")
        [line] = wait_lines(path, 1)
    assert list(line.items()) == [("status", 200), ("request_id", response.header("x-request-id"))]


def test_text_format_is_one_readable_line(tmp_path: Path) -> None:
    with logged(tmp_path, echo, format="text") as (_, client, path):
        client.request("GET", "/x", {"User-Agent": "a b"})
        wait_until(lambda: path.read_text().endswith("\n"), "a text line")
        text = path.read_text()
    assert re.match(
        r"^\d{4}-\S+Z 127\.0\.0\.1 GET /x 200 request_id=[0-9a-f]{32} "
        r"route=api target=backend node=127\.0\.0\.1:\d+ "
        r"consumer=- bytes_in=0 bytes_out=\d+ latency_ms=[\d.]+ upstream_ms=[\d.]+ "
        r'gateway_ms=[\d.]+ retries=0 cache=- answered_by=- user_agent="a b"\n$',
        text,
    ), text
