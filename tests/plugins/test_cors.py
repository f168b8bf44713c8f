"""cors: config validation, then the CORS protocol through the running proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from quiver.plugins.cors import Cors
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Handler, Upstream, echo

APP = "https://app.example.com"
KEY = "alice-key-0123456789"
CONSUMERS = [{"name": "alice", "credentials": {"key-auth": [{"key": KEY}]}}]


@pytest.mark.parametrize(
    "settings",
    [
        {"origins": ["*"]},
        {"origins": [APP, "http://localhost:8080", "null"]},
        {"origins": ["https://*.example.com", "http://[::1]:3000"]},
        {"origins": ["*"], "credentials": True},
        {"origins": [APP], "methods": ["GET", "*"], "headers": ["*"], "exposed_headers": ["*"]},
        {"origins": [APP], "headers": [], "max_age": 0, "preflight_continue": True},
    ],
)
def test_valid_cors_configs(settings: dict[str, Any]) -> None:
    Cors.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "Field required"),
        ({"origins": []}, "at least one origin"),
        ({"origins": "https://a.example"}, "valid list"),
        ({"origins": ["https://a.example/"]}, "an origin has no path; write 'https://a.example'"),
        ({"origins": ["https://api.*.example"]}, "'*' stands only for the leftmost labels"),
        ({"origins": ["https://app*.example.com"]}, "'*' stands only for the leftmost labels"),
        ({"origins": ["https://a.example:443"]}, "browsers leave the default port out"),
        ({"origins": ["a.example"]}, "is not an origin"),
        ({"origins": ["https://bücher.example"]}, "ASCII (punycode) form"),
        ({"origins": ["*"], "methods": ["GET POST"]}, "is not a valid name"),
        ({"origins": ["*"], "headers": ["X-Ok", "X:Bad"]}, "is not a valid name"),
        ({"origins": [APP], "credentials": True, "methods": ["*"]}, "'*' in 'methods'"),
        ({"origins": [APP], "credentials": True, "headers": ["*"]}, "'*' in 'headers'"),
        ({"origins": [APP], "credentials": True, "exposed_headers": ["*"]}, "exposed_headers"),
        ({"origins": [APP], "max_age": -1}, "greater than or equal to 0"),
        ({"origins": [APP], "allow_origins": [APP]}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_cors_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        Cors.Config.model_validate(settings)


def responding_with(*headers: tuple[str, str]) -> Handler:
    """A node answering every request with JSON about it, plus ``headers``."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"{}", [("Content-Type", "application/json"), *headers])

    return handler


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def running(node: Upstream, plugins: dict[str, Any], **extra: Any) -> RunningProxy:
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    return RunningProxy(make_config({"b": node.url}, routes, **extra))


def preflight(origin: str, method: str = "PUT", headers: str | None = None) -> dict[str, str]:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return sent


def cors_headers(response: Response) -> dict[str, str]:
    return {n.lower(): v for n, v in response.headers if n.lower().startswith("access-control-")}


def test_a_preflight_is_answered_at_the_gateway(node: Upstream) -> None:
    settings = {"origins": [APP], "max_age": 600}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        asked = preflight(APP, "PATCH", "content-type, x-trace")
        response = client.request("OPTIONS", "/items", headers=asked)
        assert client.request("GET", "/").status == 200  # the connection stays usable
    assert response.status == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "GET, HEAD, PUT, PATCH, POST, DELETE",
        "access-control-allow-headers": "content-type, x-trace",
        "access-control-max-age": "600",
    }
    assert response.header("Vary") == "Origin, Access-Control-Request-Headers"
    assert response.header("Content-Length") is None
    assert [request.method for request in node.requests] == ["GET"]


def test_a_preflight_gets_the_configured_methods_headers_and_credentials(node: Upstream) -> None:
    settings = {
        "origins": [APP],
        "methods": ["GET", "POST"],
        "headers": ["Content-Type", "Authorization"],
        "credentials": True,
    }
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("OPTIONS", "/", headers=preflight(APP, "POST", "x-other"))
    assert response.status == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "Content-Type, Authorization",
    }
    assert response.header("Vary") == "Origin"
    assert node.requests == []


def test_a_preflight_from_an_origin_not_allowed_is_refused_without_allow_headers(
    node: Upstream,
) -> None:
    with running(node, {"cors": {"origins": [APP]}}) as proxy, Client(proxy.port) as client:
        response = client.request("OPTIONS", "/", headers=preflight("https://evil.example"))
    assert response.status == 403
    assert cors_headers(response) == {}
    assert response.header("Vary") == "Origin"
    assert response.json()["detail"] == "origin https://evil.example is not allowed"
    assert node.requests == []


def test_a_preflight_is_answered_before_authentication(node: Upstream) -> None:
    plugins = {"cors": {"origins": [APP]}, "key-auth": {}}
    with (
        running(node, plugins, consumers=CONSUMERS) as proxy,
        Client(proxy.port) as client,
    ):
        answered = client.request("OPTIONS", "/", headers=preflight(APP, "GET", "apikey"))
        refused = client.request("GET", "/", headers={"Origin": APP})
        allowed = client.request("GET", "/", headers={"Origin": APP, "apikey": KEY})
    assert answered.status == 204
    assert answered.header("Access-Control-Allow-Headers") == "apikey"
    assert refused.status == 401  # the real request still needs its key
    # and the browser can read that 401: gateway answers carry the CORS headers too
    assert refused.header("Access-Control-Allow-Origin") == APP
    assert allowed.status == 200
    assert allowed.header("Access-Control-Allow-Origin") == APP
    assert len(node.requests) == 1


def test_options_without_a_requested_method_is_not_a_preflight(node: Upstream) -> None:
    with running(node, {"cors": {"origins": [APP]}}) as proxy, Client(proxy.port) as client:
        response = client.request("OPTIONS", "/", headers={"Origin": APP})
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == APP
    assert [request.method for request in node.requests] == ["OPTIONS"]


def test_preflight_continue_sends_preflights_to_the_node(node: Upstream) -> None:
    settings = {"origins": [APP], "preflight_continue": True}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("OPTIONS", "/", headers=preflight(APP))
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == APP
    assert response.header("Access-Control-Allow-Methods") is None  # the node's to say
    [seen] = node.requests
    assert (seen.method, seen.header("Access-Control-Request-Method")) == ("OPTIONS", "PUT")


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://app.example.com", True),
        ("https://a.b.example.com", True),
        ("https://APP.Example.com", True),
        ("https://example.com", False),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://appexample.com", False),
        ("https://app.example.com.evil.example", False),
        ("https://evil.example/.example.com", False),
        ("http://localhost:8080", True),
        ("http://localhost:8081", False),
        ("http://localhost", False),
        ("null", False),
    ],
)
def test_origins_match_exactly_or_by_subdomain_pattern(
    node: Upstream, origin: str, allowed: bool
) -> None:
    settings = {"origins": ["https://*.Example.com", "http://localhost:8080"]}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        actual = client.request("GET", "/", headers={"Origin": origin})
        pre = client.request("OPTIONS", "/", headers=preflight(origin))
    assert actual.status == 200  # a real request goes through either way: the browser decides
    assert actual.header("Access-Control-Allow-Origin") == (origin if allowed else None)
    assert pre.status == (204 if allowed else 403)
    assert pre.header("Access-Control-Allow-Origin") == (origin if allowed else None)


def test_any_origin_gets_a_star_and_with_credentials_its_own_origin(node: Upstream) -> None:
    with running(node, {"cors": {"origins": ["*"]}}) as proxy, Client(proxy.port) as client:
        plain = client.request("GET", "/", headers={"Origin": APP})
        pre = client.request("OPTIONS", "/", headers=preflight("null"))
    assert cors_headers(plain) == {"access-control-allow-origin": "*"}
    assert pre.header("Access-Control-Allow-Origin") == "*"
    settings = {"origins": ["*"], "credentials": True}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        credentialed = client.request("GET", "/", headers={"Origin": APP})
        pre = client.request("OPTIONS", "/", headers=preflight(APP))
    # Fetch standard: with credentials the origin is named, never "*"
    assert cors_headers(credentialed) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
    }
    assert pre.header("Access-Control-Allow-Origin") == APP
    assert pre.header("Access-Control-Allow-Credentials") == "true"


def test_exposed_headers_are_listed_on_actual_responses(node: Upstream) -> None:
    settings = {"origins": [APP], "exposed_headers": ["X-Total-Count", "ETag"]}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/", headers={"Origin": APP})
        pre = client.request("OPTIONS", "/", headers=preflight(APP))
    assert response.header("Access-Control-Expose-Headers") == "X-Total-Count, ETag"
    assert pre.header("Access-Control-Expose-Headers") is None  # only actual responses


@pytest.mark.parametrize(
    "vary, merged",
    [
        (None, "Origin"),
        ("Accept-Encoding", "Accept-Encoding, Origin"),
        ("accept-encoding, ORIGIN", "accept-encoding, ORIGIN"),
        ("*", "*"),
    ],
)
def test_origin_is_merged_into_vary(vary: str | None, merged: str) -> None:
    headers = [("Vary", vary)] if vary is not None else []
    with (
        Upstream(responding_with(*headers)) as node,
        running(node, {"cors": {"origins": [APP]}}) as proxy,
        Client(proxy.port) as client,
    ):
        response = client.request("GET", "/", headers={"Origin": APP})
    assert response.header("Vary") == merged


def test_requests_without_an_origin_get_no_cors_headers(node: Upstream) -> None:
    settings = {"origins": ["*"], "credentials": True, "exposed_headers": ["X-Total"]}
    with running(node, {"cors": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/", headers={"X-Kept": "1"})
        options = client.request("OPTIONS", "/", headers={"Access-Control-Request-Method": "GET"})
    assert response.status == 200
    assert cors_headers(response) == {}
    # the answer differs for requests with an Origin: caches must keep them apart
    assert response.header("Vary") == "Origin"
    assert options.status == 200 and cors_headers(options) == {}  # no Origin: no preflight
    upstream = dict(response.json()["headers"])
    assert upstream["X-Kept"] == "1"


def test_the_policy_replaces_the_nodes_own_cors_headers() -> None:
    node_headers = (
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Secret"),
    )
    with (
        Upstream(responding_with(*node_headers)) as node,
        running(node, {"cors": {"origins": [APP]}}) as proxy,
        Client(proxy.port) as client,
    ):
        allowed = client.request("GET", "/", headers={"Origin": APP})
        refused = client.request("GET", "/", headers={"Origin": "https://evil.example"})
        no_origin = client.request("GET", "/")
    assert cors_headers(allowed) == {"access-control-allow-origin": APP}
    assert cors_headers(refused) == {}
    assert len(cors_headers(no_origin)) == 3  # not a CORS request: left as the node sent it


def test_responses_on_other_routes_are_left_alone(node: Upstream) -> None:
    routes: list[dict[str, Any]] = [
        {
            "name": "cors",
            "paths": ["/cors"],
            "target": "b",
            "plugins": {"cors": {"origins": ["*"]}},
        },
        {"name": "plain", "paths": ["/plain"], "target": "b"},
    ]
    with (
        RunningProxy(make_config({"b": node.url}, routes)) as proxy,
        Client(proxy.port) as client,
    ):
        plain = client.request("OPTIONS", "/plain", headers=preflight(APP))
        cors = client.request("OPTIONS", "/cors", headers=preflight(APP))
    assert (plain.status, cors_headers(plain), plain.header("Vary")) == (200, {}, None)
    assert cors.status == 204
    assert [request.path for request in node.requests] == ["/plain"]
