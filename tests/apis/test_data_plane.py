"""What an API's state and plans do to its routes, through the running proxy; and
that a route in no API is compiled exactly as before."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.config.access_log import ACCESS_LOG_FIELDS
from quiver.proxy.snapshot import RouteRuntime
from tests.observe.support import wait_lines
from tests.support.proxy import RunningProxy
from tests.support.upstream import Upstream

KEY = "acme-key-0123456789abcdef"
OTHER = "other-key-0123456789abcdef"


def config(upstream: str, *, extra: str = "") -> str:
    return f"""
listen: 127.0.0.1:0
targets:
  - {{name: shop, url: "{upstream}"}}
routes:
  - {{name: orders, paths: [/orders], target: shop}}
  - {{name: old, paths: [/old], target: shop}}
  - {{name: gone, paths: [/gone], target: shop}}
  - {{name: open, paths: [/open], target: shop}}
  - {{name: legacy, paths: [/legacy], target: shop}}
  - name: guarded
    paths: [/guarded]
    target: shop
    plugins: {{basic-auth: {{}}}}
apis:
  - name: orders
    routes: [orders]
    state: published
    plans:
      - {{name: free, rate_limit: {{limit: 2, window: 1m}}, quota: {{limit: 100, period: day}}}}
  - name: old
    routes: [old]
    state: deprecated
    deprecation:
      date: 2026-12-01T00:00:00Z
      sunset: 2027-06-01T00:00:00Z
      link: https://docs.example/orders/migrate
  - name: gone
    routes: [gone]
    state: retired
    deprecation: {{date: 2026-12-01T00:00:00Z, sunset: 2027-06-01T00:00:00Z}}
  - name: guarded
    routes: [guarded]
    plans: [{{name: basic}}]
  - name: legacy
    routes: [legacy]
    state: deprecated
    deprecation: {{date: 2026-12-01T00:00:00Z, link: https://docs.example/legacy}}
    plans: [{{name: free, rate_limit: {{limit: 1, window: 1m}}}}]
consumers:
  - name: acme
    credentials: {{key-auth: [{{key: "{KEY}"}}]}}
    subscriptions: [{{api: orders, plan: free}}, {{api: legacy, plan: free}}]
  - name: other
    credentials: {{key-auth: [{{key: "{OTHER}"}}]}}
{extra}"""


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[RunningProxy]:
    with RunningProxy(config(upstream.url)) as running:
        yield running


@pytest.fixture
def client(proxy: RunningProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        yield http


def route(proxy: RunningProxy, path: bytes) -> RouteRuntime:
    assert proxy.server is not None
    match = proxy.server.state.snapshot.router.match(b"GET", b"", path, {})
    assert match is not None
    return match.value


def plugins_of(proxy: RunningProxy, path: bytes) -> list[str]:
    return sorted(plugin.name for plugin in route(proxy, path).chain.plugins)


def test_a_route_in_no_api_gets_no_plugin(proxy: RunningProxy, client: httpx.Client) -> None:
    assert plugins_of(proxy, b"/open") == []
    assert client.get("/open").status_code == 200


def test_a_plan_sent_by_a_client_never_reaches_the_target(
    client: httpx.Client, upstream: Upstream
) -> None:
    forged = {"X-Quiver-Plan": "gold", "X_Quiver_Plan": "gold"}
    assert client.get("/open", headers=forged).status_code == 200
    assert client.get("/orders", headers={**forged, "apikey": KEY}).status_code == 200
    first, second = upstream.requests
    assert first.header("x-quiver-plan") is None and first.header("x_quiver_plan") is None
    assert second.header("x-quiver-plan") == "free"


def test_the_routes_of_an_api_get_its_plugin(proxy: RunningProxy) -> None:
    # key-auth is added where no authentication applies; another one is kept
    assert plugins_of(proxy, b"/orders") == ["api-product", "key-auth"]
    assert plugins_of(proxy, b"/guarded") == ["api-product", "basic-auth"]
    # a deprecated API's fields are added first of all
    assert plugins_of(proxy, b"/old") == ["api-deprecation", "api-product"]
    assert plugins_of(proxy, b"/legacy") == ["api-deprecation", "api-product", "key-auth"]
    assert route(proxy, b"/legacy").chain.plugins[0].name == "api-deprecation"
    assert plugins_of(proxy, b"/gone") == ["api-product"]


def test_a_deprecated_api_says_so_when_its_requests_are_refused(
    client: httpx.Client, upstream: Upstream
) -> None:
    expected = {
        "deprecation": "@1796083200",
        "link": '<https://docs.example/legacy>; rel="deprecation"',
    }
    unknown = client.get("/legacy")  # refused by key-auth, which runs before the API's plugin
    no_plan = client.get("/legacy", headers={"apikey": OTHER})  # by the plans
    allowed = client.get("/legacy", headers={"apikey": KEY})
    limited = client.get("/legacy", headers={"apikey": KEY})  # by the plan's rate limit
    statuses = [answer.status_code for answer in (unknown, no_plan, allowed, limited)]
    assert statuses == [401, 401, 200, 429]
    for answer in (unknown, no_plan, allowed, limited):
        assert {name: answer.headers.get(name) for name in expected} == expected
        assert answer.headers.get_list("deprecation") == ["@1796083200"]  # once
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "sunset" not in unknown.headers  # (none declared)
    assert len(upstream.requests) == 1


def test_a_deprecated_api_says_so_in_every_response(client: httpx.Client) -> None:
    answer = client.get("/old")
    assert answer.status_code == 200
    assert answer.headers["deprecation"] == "@1796083200"  # RFC 9745: 2026-12-01
    assert answer.headers["sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"  # RFC 8594
    assert answer.headers["link"] == '<https://docs.example/orders/migrate>; rel="deprecation"'
    assert "deprecation" not in client.get("/open").headers


def test_a_retired_api_answers_410_and_never_reaches_the_target(
    client: httpx.Client, upstream: Upstream
) -> None:
    answer = client.get("/gone", headers={"apikey": KEY})
    assert answer.status_code == 410
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    problem = answer.json()
    assert problem["type"] == "urn:quiver:problem:api-retired"
    assert problem["request_id"] == answer.headers["x-request-id"]
    assert client.post("/gone/x", content=b"data").status_code == 410
    assert upstream.requests == []


def test_a_plan_lets_only_subscribers_through_within_its_limits(
    client: httpx.Client, upstream: Upstream
) -> None:
    missing = client.get("/orders")
    assert missing.status_code == 401
    assert missing.json()["type"] == "urn:quiver:problem:unauthorized"
    other = client.get("/orders", headers={"apikey": OTHER})
    assert other.status_code == 401
    assert other.headers["www-authenticate"] == 'Key realm="quiver"'
    problem = other.json()
    assert problem["type"] == "urn:quiver:problem:subscription-required"
    assert "'orders'" in problem["detail"] and OTHER not in other.text
    answers = [client.get("/orders", headers={"apikey": KEY}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    policy = answers[0].headers["ratelimit-policy"]
    assert '"minute";q=2;w=60' in policy and "quota-day" in policy  # both, as the plugins
    assert len(upstream.requests) == 2
    assert upstream.requests[0].header("x-quiver-plan") == "free"
    assert upstream.requests[0].header("x-consumer-username") == "acme"
    refused = client.get("/orders", headers={"apikey": KEY})
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:quiver:problem:rate-limited"
    assert "retry-after" in refused.headers


def test_a_plan_counts_per_consumer_over_all_the_routes_of_the_api(upstream: Upstream) -> None:
    extra = """  - name: both
    routes: [a, b]
    plans: [{name: tiny, rate_limit: {limit: 2, window: 1m}}]
"""
    text = config(upstream.url).replace(
        "  - {name: open, paths: [/open], target: shop}",
        "  - {name: open, paths: [/open], target: shop}\n"
        "  - {name: a, paths: [/a], target: shop}\n"
        "  - {name: b, paths: [/b], target: shop}",
    )
    text = text.replace("consumers:\n", extra + "consumers:\n")
    text = text.replace(
        "subscriptions: [{api: orders, plan: free}, ",
        "subscriptions: [{api: orders, plan: free}, {api: both, plan: tiny}, ",
    )
    with (
        RunningProxy(text) as proxy,
        httpx.Client(base_url=proxy.url, headers={"apikey": KEY}) as client,
    ):
        statuses = [client.get(path).status_code for path in ("/a", "/b", "/a")]
        assert statuses == [200, 200, 429]
        assert client.get("/orders").status_code == 200  # another API: its own count


def test_an_mcp_endpoint_of_an_api_is_gated_and_its_tool_calls_counted_once(
    upstream: Upstream,
) -> None:
    text = config(upstream.url).replace(
        "  - {name: open, paths: [/open], target: shop}",
        "  - {name: open, paths: [/open], target: shop}\n"
        "  - name: notes\n"
        "    paths: [/notes]\n"
        "    target: shop\n"
        "    mcp: {openapi: {openapi: 3.1.0, info: {title: n, version: '1'}, paths: {}}}",
    )
    text = text.replace("    routes: [orders]\n", "    routes: [orders, notes]\n")
    with RunningProxy(text) as proxy:
        assert plugins_of(proxy, b"/notes") == ["api-product", "key-auth"]
        assert plugins_of(proxy, b"/notes/mcp") == ["api-product", "key-auth"]
        by_path = {
            path: next(p for p in route(proxy, path).chain.plugins if p.name == "api-product")
            for path in (b"/notes", b"/notes/mcp")
        }
        # (the tool calls go through /notes, where the plan counts them)
        assert [len(p.limiters["free"]) for p in by_path.values()] == [2, 0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("policy", "status"), [("allow", 200), ("deny", 503)])
def test_plans_count_in_the_store_the_api_names(
    upstream: Upstream, policy: str, status: int
) -> None:
    with socket.socket() as sock:  # a port where no Redis answers
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    counters = (
        f"    counters: {{store: redis, redis: {{url: 'redis://127.0.0.1:{port}/0', "
        f"timeout: 0.2}}, on_store_error: {policy}}}\n"
    )
    text = config(upstream.url).replace(
        "    state: published\n", "    state: published\n" + counters
    )
    with (
        RunningProxy(text) as proxy,
        httpx.Client(base_url=proxy.url, headers={"apikey": KEY}, timeout=10) as client,
    ):
        # the plan's limit of 2 is not counted locally: Redis is asked, and fails
        statuses = [client.get("/orders").status_code for _ in range(3)]
    assert statuses == [status] * 3


def test_the_plan_is_an_access_log_field_written_only_when_listed(
    upstream: Upstream, tmp_path: Path
) -> None:
    assert "plan" not in ACCESS_LOG_FIELDS
    log_path = tmp_path / "access.log"
    fields: list[Any] = ["route", "consumer", "status", "plan"]
    text = config(upstream.url, extra=f"access_log: {{to: '{log_path}', fields: {fields}}}\n")
    with (
        RunningProxy(text) as proxy,
        httpx.Client(base_url=proxy.url, headers={"apikey": KEY}, timeout=10) as client,
    ):
        assert client.get("/orders").status_code == 200
        assert client.get("/open").status_code == 200
        lines = wait_lines(log_path, 2)
    assert lines == [
        {"route": "orders", "consumer": "acme", "status": 200, "plan": "free"},
        {"route": "open", "consumer": None, "status": 200, "plan": None},
    ]
