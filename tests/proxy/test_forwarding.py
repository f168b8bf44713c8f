"""What the proxy sends upstream and back: request line, headers it adds, removes and keeps."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.proxy import Client, RunningProxy, make_config, serve
from tests.support.streams import Wire, WireResponse
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)


def call(port: int, raw: bytes) -> WireResponse:
    with Wire(port) as wire:
        wire.send(raw)
        return wire.read_response()


def get(
    port: int,
    path: str = "/",
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    body: bytes = b"",
    host: str = "test.local",
) -> WireResponse:
    with Wire(port) as wire:
        wire.send(wire.request(method, path, headers, body, host=host))
        return wire.read_response()


def seen(response: WireResponse) -> dict[str, Any]:
    """What the echo node saw, as it reported it in the body."""
    assert response.status == 200, response.body
    reported: dict[str, Any] = response.json()
    return reported


def upstream_values(report: dict[str, Any], name: str) -> list[str]:
    return [v for n, v in report["headers"] if n.lower() == name.lower()]


def upstream_names(report: dict[str, Any]) -> list[str]:
    return [n.lower() for n, _ in report["headers"]]


# ----------------------------------------------------------------------- request line


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_method_path_and_query_reach_the_node_unchanged(proxy: RunningProxy, method: str) -> None:
    body = b"payload" if method in ("POST", "PUT", "PATCH") else b""
    report = seen(get(proxy.port, "/items/7?x=1&y=a%20b&z=", method=method, body=body))
    assert report["method"] == method
    assert report["path"] == "/items/7?x=1&y=a%20b&z="
    assert report["body"] == body.decode()


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        ("/a/./b/../c", "/a/c"),
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E/b", "/a/b"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/%7euser/%41", "/~user/A"),
        ("/a/b%2fc", "/a/b%2Fc"),
        ("/x/../y?p=/../q", "/y?p=/../q"),
    ],
)
def test_path_is_forwarded_in_normal_form(proxy: RunningProxy, sent: str, forwarded: str) -> None:
    assert seen(get(proxy.port, sent))["path"] == forwarded


def test_path_is_normalised_before_routing() -> None:
    with Upstream() as public, Upstream() as admin:
        config = make_config(
            {"public": public.url, "admin": admin.url},
            [
                {"name": "public", "paths": ["/public"], "target": "public"},
                {"name": "admin", "paths": ["/admin"], "target": "admin"},
            ],
        )
        with RunningProxy(config) as proxy:
            for sent in (
                "/public/../admin/keys",
                "/public/%2e%2e/admin/keys",
                "/public/%2E%2E/admin/keys",
            ):
                report = seen(get(proxy.port, sent))
                assert report["path"] == "/admin/keys"
            assert [r.path for r in admin.requests] == ["/admin/keys"] * 3
            assert public.requests == []


# ----------------------------------------------------------------------- Host


def test_host_sent_upstream_is_the_nodes_address_by_default(
    proxy: RunningProxy, node: Upstream
) -> None:
    report = seen(get(proxy.port, "/", host="api.example.com"))
    assert upstream_values(report, "host") == [f"127.0.0.1:{node.port}"]


def test_preserve_host_forwards_the_clients_host(node: Upstream) -> None:
    routes = [{"name": "all", "paths": ["/"], "target": "backend", "preserve_host": True}]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        report = seen(get(proxy.port, "/", host="api.example.com:8443"))
    assert upstream_values(report, "host") == ["api.example.com:8443"]


# ----------------------------------------------------------------------- X-Forwarded-*


def test_x_forwarded_for_is_the_client_address_when_absent(proxy: RunningProxy) -> None:
    report = seen(get(proxy.port))
    assert upstream_values(report, "x-forwarded-for") == ["127.0.0.1"]


def test_x_forwarded_for_appends_the_client_address(proxy: RunningProxy) -> None:
    report = seen(get(proxy.port, headers=[("X-Forwarded-For", "203.0.113.9")]))
    assert upstream_values(report, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]


def test_repeated_x_forwarded_for_fields_are_joined_in_order(proxy: RunningProxy) -> None:
    headers = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.2, 10.0.0.1")]
    report = seen(get(proxy.port, headers=headers))
    assert upstream_values(report, "x-forwarded-for") == [
        "203.0.113.9, 198.51.100.2, 10.0.0.1, 127.0.0.1"
    ]


def test_x_forwarded_proto_is_set_by_the_proxy_not_the_client(proxy: RunningProxy) -> None:
    report = seen(get(proxy.port, headers=[("X-Forwarded-Proto", "https")]))
    assert upstream_values(report, "x-forwarded-proto") == ["http"]


def test_x_forwarded_host_is_the_clients_host(proxy: RunningProxy) -> None:
    report = seen(
        get(proxy.port, headers=[("X-Forwarded-Host", "spoofed.example")], host="api.example.com")
    )
    assert upstream_values(report, "x-forwarded-host") == ["api.example.com"]


# ----------------------------------------------------------------------- X-Request-ID and Via


def test_request_id_is_generated_and_returned_to_the_client(proxy: RunningProxy) -> None:
    first = get(proxy.port)
    second = get(proxy.port)
    ids = []
    for response in (first, second):
        sent = upstream_values(seen(response), "x-request-id")
        assert len(sent) == 1
        assert re.fullmatch(r"[0-9a-f]{32}", sent[0])
        assert response.head.all("x-request-id") == sent
        ids.append(sent[0])
    assert ids[0] != ids[1]


def test_request_id_sent_by_the_client_is_kept(proxy: RunningProxy) -> None:
    response = get(proxy.port, headers=[("X-Request-ID", "trace-4711.abc")])
    assert upstream_values(seen(response), "x-request-id") == ["trace-4711.abc"]
    assert response.head.all("x-request-id") == ["trace-4711.abc"]


def test_via_is_added_on_both_sides(proxy: RunningProxy) -> None:
    response = get(proxy.port)
    assert upstream_values(seen(response), "via") == ["1.1 quiver"]
    assert response.head.all("via") == ["1.1 quiver"]


def test_via_from_the_client_is_kept_before_the_proxys(proxy: RunningProxy) -> None:
    report = seen(get(proxy.port, headers=[("Via", "1.0 edge")]))
    values = upstream_values(report, "via")
    assert values[0] == "1.0 edge"
    assert values[-1] == "1.1 quiver"


# ----------------------------------------------------------------------- hop-by-hop fields


def test_hop_by_hop_request_headers_are_not_forwarded(proxy: RunningProxy) -> None:
    headers = [
        ("Connection", "keep-alive, X-Secret"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Secret", "1"),
        ("X-Kept", "yes"),
    ]
    report = seen(get(proxy.port, headers=headers))
    names = upstream_names(report)
    for hop in ("keep-alive", "te", "trailer", "proxy-connection", "x-secret"):
        assert hop not in names, hop
    assert upstream_values(report, "connection") in ([], ["keep-alive"])
    assert upstream_values(report, "x-kept") == ["yes"]


def test_connection_option_names_are_matched_case_insensitively(proxy: RunningProxy) -> None:
    headers = [
        ("Connection", "x-secret, X-Other"),
        ("X-SECRET", "1"),
        ("x-other", "2"),
        ("X-Kept", "yes"),
    ]
    report = seen(get(proxy.port, headers=headers))
    names = upstream_names(report)
    assert "x-secret" not in names
    assert "x-other" not in names
    assert upstream_values(report, "x-kept") == ["yes"]


def test_upgrade_without_connection_upgrade_is_not_forwarded(proxy: RunningProxy) -> None:
    # RFC 9110 §7.8: Upgrade is only meaningful when listed in Connection; a stray
    # one must not turn the upstream request into an upgrade request.
    report = seen(get(proxy.port, headers=[("Upgrade", "h2c"), ("X-Kept", "yes")]))
    assert "upgrade" not in upstream_names(report)
    assert all("upgrade" not in v.lower() for v in upstream_values(report, "connection"))
    assert upstream_values(report, "x-kept") == ["yes"]


def test_hop_by_hop_response_headers_are_not_relayed() -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(
                200,
                b"ok",
                [
                    ("Connection", "keep-alive, X-Hop"),
                    ("X-Hop", "1"),
                    ("Keep-Alive", "timeout=5"),
                    ("Proxy-Connection", "keep-alive"),
                    ("X-Kept", "yes"),
                ],
            )

    with serve(handler) as (_, proxy):
        response = get(proxy.port)
    assert response.status == 200
    assert response.body == b"ok"
    names = response.head.names
    for hop in ("x-hop", "keep-alive", "proxy-connection"):
        assert hop not in names, hop
    assert response.head.all("connection") in ([], ["keep-alive"])
    assert response.head.all("x-kept") == ["yes"]


# ----------------------------------------------------------------------- fields dropped on arrival


def test_identity_fields_sent_by_the_client_are_dropped(proxy: RunningProxy) -> None:
    # only the gateway says who the consumer is: every X-Consumer-* name, in any case
    headers = [
        ("X-Consumer-ID", "42"),
        ("X-Consumer-Username", "alice"),
        ("x-consumer-foo", "bar"),
        ("X-CONSUMER-GROUPS", "admins"),
        ("X-Consumerism", "kept"),
        ("X-Kept", "yes"),
    ]
    report = seen(get(proxy.port, headers=headers))
    assert [n for n in upstream_names(report) if n.startswith("x-consumer")] == ["x-consumerism"]
    assert upstream_values(report, "x-kept") == ["yes"]


def test_header_names_with_underscores_are_dropped(proxy: RunningProxy) -> None:
    headers = [
        ("Transfer_Encoding", "chunked"),
        ("X_Forwarded_For", "10.0.0.1"),
        ("X_Custom", "1"),
        ("X-Kept", "yes"),
    ]
    report = seen(get(proxy.port, headers=headers))
    assert [n for n in upstream_names(report) if "_" in n] == []
    assert upstream_values(report, "x-kept") == ["yes"]
    assert upstream_values(report, "x-forwarded-for") == ["127.0.0.1"]


def test_underscores_in_headers_keeps_them_but_not_lookalikes_of_managed_fields(
    node: Upstream,
) -> None:
    config = make_config({"backend": node.url}, limits={"underscores_in_headers": True})
    headers = [
        ("X_Custom", "1"),
        ("Transfer_Encoding", "chunked"),
        ("X_Consumer_ID", "42"),
        ("X-Kept", "yes"),
    ]
    with RunningProxy(config) as proxy:
        report = seen(get(proxy.port, headers=headers))
    assert [n for n in upstream_names(report) if "_" in n] == ["x_custom"]
    assert upstream_values(report, "x-kept") == ["yes"]


# ----------------------------------------------------------------------- other fields


def test_end_to_end_request_headers_keep_their_order_and_repeats(proxy: RunningProxy) -> None:
    headers = [
        ("X-A", "1"),
        ("Accept", "application/json"),
        ("X-A", "2"),
        ("Cookie", "a=1"),
        ("X-A", "3"),
    ]
    report = seen(get(proxy.port, headers=headers))
    forwarded = [
        (n.lower(), v) for n, v in report["headers"] if n.lower() in ("x-a", "accept", "cookie")
    ]
    assert forwarded == [(n.lower(), v) for n, v in headers]


def test_end_to_end_response_headers_keep_their_order_and_repeats() -> None:
    fields = [
        ("Set-Cookie", "a=1; Path=/"),
        ("Cache-Control", "no-cache"),
        ("Set-Cookie", "b=2; HttpOnly"),
        ("X-Custom", "value with spaces"),
    ]

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"{}", [("Content-Type", "application/json"), *fields])

    with serve(handler) as (_, proxy):
        response = get(proxy.port)
    relayed = [
        (n, v)
        for n, v in response.head.headers
        if n.lower() in ("set-cookie", "cache-control", "x-custom")
    ]
    assert relayed == fields
    assert response.header("content-type") == "application/json"
    assert response.body == b"{}"


def test_response_status_and_reason_are_relayed() -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(418, b"short and stout", reason="I'm a teapot")

    with serve(handler) as (_, proxy):
        response = get(proxy.port)
    assert (response.status, response.head.reason) == (418, "I'm a teapot")
    assert response.body == b"short and stout"


# ----------------------------------------------------------------------- routing end to end


def test_strip_path_removes_the_matched_prefix(node: Upstream) -> None:
    routes = [{"name": "api", "paths": ["/api"], "target": "backend", "strip_path": True}]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        assert seen(get(proxy.port, "/api/users/1?full=yes"))["path"] == "/users/1?full=yes"
        assert seen(get(proxy.port, "/api"))["path"] == "/"
        assert get(proxy.port, "/apis").status == 404


def test_rewrite_fills_captured_parameters(node: Upstream) -> None:
    routes: list[dict[str, Any]] = [
        {
            "name": "user",
            "paths": ["/users/{id}/posts/{post}"],
            "target": "backend",
            "rewrite": "/v2/people/{id}/articles/{post}",
        },
    ]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        report = seen(get(proxy.port, "/users/42/posts/abc?fields=title"))
    assert report["path"] == "/v2/people/42/articles/abc?fields=title"


def test_rewrite_keeps_the_rest_of_the_path_after_the_matched_part(node: Upstream) -> None:
    routes: list[dict[str, Any]] = [
        {
            "name": "user",
            "paths": ["/users/{id}"],
            "target": "backend",
            "rewrite": "/echo/user/{id}",
        },
        {"name": "one", "paths": ["=/only/{id}"], "target": "backend", "rewrite": "/o/{id}"},
    ]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        assert seen(get(proxy.port, "/users/42/posts?x=1"))["path"] == "/echo/user/42/posts?x=1"
        assert seen(get(proxy.port, "/users/42"))["path"] == "/echo/user/42"
        assert seen(get(proxy.port, "/only/7"))["path"] == "/o/7"


def test_target_url_base_path_prefixes_the_forwarded_path(node: Upstream) -> None:
    routes: list[dict[str, Any]] = [
        {"name": "api", "paths": ["/api"], "target": "backend", "strip_path": True},
        {"name": "rest", "paths": ["/"], "target": "backend"},
    ]
    with RunningProxy(make_config({"backend": f"{node.url}/base"}, routes)) as proxy:
        assert seen(get(proxy.port, "/api/items?page=2"))["path"] == "/base/items?page=2"
        assert seen(get(proxy.port, "/other"))["path"] == "/base/other"


def test_hosts_with_a_wildcard_select_the_route() -> None:
    with Upstream() as tenants, Upstream() as fallback:
        routes: list[dict[str, Any]] = [
            {"name": "tenants", "paths": ["/"], "hosts": ["*.example.com"], "target": "tenants"},
            {"name": "fallback", "paths": ["/"], "target": "fallback"},
        ]
        config = make_config({"tenants": tenants.url, "fallback": fallback.url}, routes)
        with RunningProxy(config) as proxy:
            seen(get(proxy.port, "/a", host="acme.example.com"))
            seen(get(proxy.port, "/b", host="ACME.Example.COM:8080"))
            seen(get(proxy.port, "/c", host="example.org"))
        assert [r.path for r in tenants.requests] == ["/a", "/b"]
        assert [r.path for r in fallback.requests] == ["/c"]


def test_host_not_matching_any_route_gets_404(node: Upstream) -> None:
    routes = [{"name": "tenants", "paths": ["/"], "hosts": ["*.example.com"], "target": "backend"}]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        response = get(proxy.port, host="example.org")
    assert response.status == 404
    assert response.header("content-type") == "application/problem+json"
    assert node.requests == []


def test_methods_restrict_the_route(node: Upstream) -> None:
    routes: list[dict[str, Any]] = [
        {"name": "write", "paths": ["/items"], "methods": ["POST", "put"], "target": "backend"}
    ]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        assert seen(get(proxy.port, "/items", method="POST", body=b"x"))["method"] == "POST"
        assert seen(get(proxy.port, "/items", method="PUT", body=b"x"))["method"] == "PUT"
        assert get(proxy.port, "/items").status == 404
    assert [r.method for r in node.requests] == ["POST", "PUT"]


def test_header_conditions_select_the_route() -> None:
    with Upstream() as v2, Upstream() as v1:
        routes: list[dict[str, Any]] = [
            {
                "name": "v2",
                "paths": ["/"],
                "headers": {"X-Version": ["2", "~^2\\."]},
                "target": "v2",
            },
            {"name": "v1", "paths": ["/"], "target": "v1"},
        ]
        with RunningProxy(make_config({"v2": v2.url, "v1": v1.url}, routes)) as proxy:
            seen(get(proxy.port, "/a", [("X-Version", "2")]))
            seen(get(proxy.port, "/b", [("x-version", "2.1")]))
            seen(get(proxy.port, "/c", [("X-Version", "1")]))
            seen(get(proxy.port, "/d"))
        assert [r.path for r in v2.requests] == ["/a", "/b"]
        assert [r.path for r in v1.requests] == ["/c", "/d"]


def test_priority_wins_over_a_longer_prefix() -> None:
    with Upstream() as high, Upstream() as low:
        routes: list[dict[str, Any]] = [
            {"name": "specific", "paths": ["/api/items"], "target": "low"},
            {"name": "preferred", "paths": ["/api"], "priority": 10, "target": "high"},
        ]
        with RunningProxy(make_config({"high": high.url, "low": low.url}, routes)) as proxy:
            seen(get(proxy.port, "/api/items/1"))
        assert [r.path for r in high.requests] == ["/api/items/1"]
        assert low.requests == []


def test_absolute_form_request_target_is_routed_by_its_host() -> None:
    with Upstream() as named, Upstream() as fallback:
        routes: list[dict[str, Any]] = [
            {"name": "named", "paths": ["/"], "hosts": ["example.test"], "target": "named"},
            {"name": "fallback", "paths": ["/"], "target": "fallback"},
        ]
        with RunningProxy(
            make_config({"named": named.url, "fallback": fallback.url}, routes)
        ) as proxy:
            raw = b"GET http://example.test/x/./y?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n"
            report = seen(call(proxy.port, raw))
        assert report["path"] == "/x/y?q=1"
        assert upstream_values(report, "x-forwarded-host") == ["example.test"]
        assert fallback.requests == []


def test_no_matching_route_is_a_problem_document_with_the_request_id(node: Upstream) -> None:
    routes = [{"name": "api", "paths": ["/api"], "target": "backend"}]
    with RunningProxy(make_config({"backend": node.url}, routes)) as proxy:
        response = get(proxy.port, "/elsewhere", [("X-Request-ID", "rid-1")])
    assert response.status == 404
    problem = response.json()
    assert problem["status"] == 404
    assert problem["request_id"] == "rid-1"
    assert response.header("x-request-id") == "rid-1"


def _http10_node(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        body = request.path.encode()
        conn.send(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )


def test_the_status_line_carries_the_proxys_own_version_not_the_nodes() -> None:
    # RFC 9110 §6.2: a node speaking HTTP/1.0 must not cost HTTP/1.1 clients keep-alive
    with (
        Upstream(_http10_node) as node,
        RunningProxy(make_config({"backend": node.url})) as proxy,
        Client(proxy.port) as client,
    ):
        first = client.request("GET", "/one")
        second = client.request("GET", "/two")  # the same connection
    assert (first.version, first.status, first.body) == ("1.1", 200, b"/one")
    assert (second.version, second.body) == ("1.1", b"/two")
