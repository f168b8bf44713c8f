"""Location, Content-Location and Set-Cookie paths mapped back to the client's view."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.proxy.redirects import Redirects
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream

NODE = b"http://10.0.0.5:9001"


@pytest.mark.parametrize(
    ("client_path", "upstream_path", "value", "expected"),
    [
        # the node's own origin becomes the gateway's
        (b"/x", b"/x", b"http://10.0.0.5:9001/login", b"/login"),
        (b"/x", b"/x", b"http://10.0.0.5:9001", b"/"),
        (b"/x", b"/x", b"http://10.0.0.5:9001?a=1", b"/?a=1"),
        # strip_path on /api: the node's paths live under /api for the client
        (b"/api/x", b"/x", b"/login", b"/api/login"),
        (b"/api/x", b"/x", b"http://10.0.0.5:9001/login", b"/api/login"),
        (b"/api", b"/", b"/login", b"/api/login"),
        # a base path on the target, a prefix on the route
        (b"/api/users/1", b"/v1/users/1", b"/v1/users/2", b"/api/users/2"),
        (b"/api/users/1", b"/v1/users/1", b"http://10.0.0.5:9001/v1/u", b"/api/u"),
        # left alone: other hosts, other ports, relative references
        (b"/api/x", b"/x", b"https://elsewhere.example/login", b"https://elsewhere.example/login"),
        (b"/x", b"/x", b"http://10.0.0.5:90010/login", b"http://10.0.0.5:90010/login"),
        (b"/api/x", b"/x", b"//evil.example/", b"//evil.example/"),
        (b"/api/x", b"/x", b"next", b"next"),
    ],
)
def test_automatic_mapping(
    client_path: bytes, upstream_path: bytes, value: bytes, expected: bytes
) -> None:
    raw = b"HTTP/1.1 302 Found\r\nLocation: " + value + b"\r\n\r\n"
    out = Redirects([NODE]).apply(raw, client_path, upstream_path)
    assert out == b"HTTP/1.1 302 Found\r\nLocation: " + expected + b"\r\n\r\n"


def test_cookie_paths_and_content_location_follow_the_same_mapping() -> None:
    raw = (
        b"HTTP/1.1 201 Created\r\nContent-Location: /items/7\r\n"
        b"set-cookie: sid=1; Path=/; HttpOnly\r\nSet-Cookie: b=2\r\n\r\n"
    )
    out = Redirects([NODE]).apply(raw, b"/shop/items", b"/items")
    assert b"Content-Location: /shop/items/7\r\n" in out
    assert b"set-cookie: sid=1; Path=/shop/; HttpOnly\r\n" in out
    assert b"Set-Cookie: b=2\r\n" in out


def test_explicit_rules_replace_the_automatic_mapping() -> None:
    rules = [(b"http://old.internal/", b"https://api.example.com/"), (b"/legacy/", b"/v2/")]
    raw = b"HTTP/1.1 301 Moved\r\nLocation: http://old.internal/a\r\n\r\n"
    out = Redirects(rules=rules).apply(raw, b"/a", b"/a")
    assert b"Location: https://api.example.com/a\r\n" in out
    raw = b"HTTP/1.1 301 Moved\r\nLocation: /legacy/b\r\n\r\n"
    assert b"Location: /v2/b\r\n" in Redirects(rules=rules).apply(raw, b"/a", b"/a")


def redirecting(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        port = conn.server.port
        headers = [
            ("Location", f"http://127.0.0.1:{port}/login?next={request.path}"),
            ("Set-Cookie", "sid=1; Path=/"),
        ]
        conn.respond(302, b"", headers, reason="Found")


@pytest.mark.parametrize(
    ("route", "location", "cookie"),
    [
        ({"strip_path": True}, "/api/login?next=/x", "sid=1; Path=/api/"),
        ({}, "/login?next=/api/x", "sid=1; Path=/"),
        ({"redirects": "off"}, "http://127.0.0.1:{port}/login?next=/api/x", "sid=1; Path=/"),
    ],
    ids=["strip_path", "same paths", "off"],
)
def test_a_node_redirecting_to_itself_keeps_clients_on_the_gateway(
    route: dict[str, Any], location: str, cookie: str
) -> None:
    with Upstream(redirecting) as node:
        routes = [{"name": "api", "paths": ["/api"], "target": "backend", **route}]
        with (
            RunningProxy(make_config({"backend": node.url}, routes)) as proxy,
            Client(proxy.port) as client,
        ):
            response = client.request("GET", "/api/x")
    assert response.status == 302
    assert response.header("Location") == location.format(port=node.port)
    assert response.header("Set-Cookie") == cookie
