"""rate-limit: its config, and its behaviour through the running proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from quiver.plugins.rate_limit import RateLimit
from quiver.plugins.stores import Stores
from tests.support.burst import burst
from tests.support.process import QuiverProcess, write_config
from tests.support.proxy import RunningProxy
from tests.support.upstream import Upstream, echo

ALICE = "alice-key-0123456789"
BOB = "bob-key-9876543210"


class Clock:
    """Unix time that moves only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "settings",
    [
        {"limit": 100, "window": 60, "by": "consumer"},
        {"limit": 5, "window": "1s"},
        {"limits": [{"limit": 10, "window": "1s"}, {"limit": 1000, "window": "1h"}]},
        {"limit": 10, "window": "1m", "algorithm": "token_bucket", "burst": 20},
        {"limit": 10, "window": "1d", "by": ["consumer", "path"]},
        {"limit": 10, "window": 60, "by": "header:X-Tenant"},
        {"limit": 10, "window": 60, "by": "ip", "trusted_proxies": ["10.0.0.0/8"]},
        {"limit": 1, "window": 1, "store": "redis", "redis": {"url": "redis://127.0.0.1:6379/0"}},
        {"limit": 1, "window": 1, "on_store_error": "deny", "legacy_headers": True},
    ],
)
def test_valid_rate_limit_configs(settings: dict[str, Any]) -> None:
    RateLimit.Config.model_validate(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "set limit and window, or limits"),
        ({"limit": 10}, "limit and window go together"),
        ({"limit": 10, "window": 60, "limits": [{"limit": 1, "window": 1}]}, "not both"),
        ({"limit": 0, "window": 60}, "greater than or equal to 1"),
        ({"limit": 10, "window": "500ms"}, "windows go from 1s to 1d"),
        ({"limit": 10, "window": "2d"}, "window 2d: windows go from 1s to 1d"),
        ({"limit": 10, "window": 1.5}, "window 1.5: a window is a whole number of seconds"),
        ({"limit": 10, "window": "2.5s"}, "window 2.5s: a window is a whole number of seconds"),
        ({"limit": 10, "window": 60, "burst": 5}, "token_bucket only"),
        ({"limits": [{"limit": 1, "window": 60}, {"limit": 5, "window": "1m"}]}, "same window"),
        ({"limit": 10, "window": 60, "by": "user"}, "use consumer, credential"),
        ({"limit": 10, "window": 60, "by": "header:"}, "use consumer, credential"),
        ({"limit": 10, "window": 60, "by": []}, "at least 1 item"),
        ({"limit": 10, "window": 60, "store": "redis"}, "needs redis"),
        ({"limit": 10, "window": 60, "redis": {"url": "redis://x"}}, "store is 'local'"),
        ({"limit": 1, "window": 1, "store": "redis", "redis": {"url": "http://x"}}, "url must"),
        ({"limit": 10, "window": 60, "algorithm": "leaky"}, "sliding_window"),
        ({"limit": 10, "window": 60, "trusted_proxies": ["10.0.0.1/8"]}, "host bits"),
    ],
)
def test_invalid_rate_limit_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        RateLimit.Config.model_validate(settings)


def config_text(node: Upstream, plugins: str, *, routes: str = "", top: str = "") -> str:
    return (
        f"""\
listen: 127.0.0.1:0
{top}
targets: [{{name: backend, url: "{node.url}"}}]
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE}}}]}}
  - name: bob
    credentials: {{key-auth: [{{key: {BOB}}}]}}
routes:
  - name: items
    paths: ["/items"]
    target: backend
    plugins:
{plugins}
"""
        + routes
    )


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


@pytest.fixture
def clock() -> Clock:
    return Clock()


def proxy_for(text: str, clock: Clock) -> RunningProxy:
    return RunningProxy(text, stores=Stores(clock=clock))


def get(proxy: RunningProxy, path: str = "/items", **headers: str) -> httpx.Response:
    return httpx.get(proxy.url + path, headers=headers, timeout=10)


def test_limit_per_consumer_refuses_with_problem_and_headers(node: Upstream, clock: Clock) -> None:
    plugins = """\
      key-auth: {}
      rate-limit: {limit: 3, window: 60, by: consumer}
"""
    clock.now = 1_800_000_030.0  # 30 s into a minute
    with proxy_for(config_text(node, plugins), clock) as proxy:
        allowed = [get(proxy, apikey=ALICE) for _ in range(3)]
        assert [r.status_code for r in allowed] == [200, 200, 200]
        # t: when the next request fits once the ones left are used, the same on
        # every response until time moves (with r=0, a refusal's Retry-After)
        assert [r.headers["RateLimit"] for r in allowed] == [
            '"minute";r=2;t=50',
            '"minute";r=1;t=50',
            '"minute";r=0;t=50',
        ]
        assert allowed[0].headers["RateLimit-Policy"] == '"minute";q=3;w=60'
        assert "X-RateLimit-Limit" not in allowed[0].headers
        refused = get(proxy, apikey=ALICE)
        assert refused.status_code == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:quiver:problem:rate-limited"
        assert problem["status"] == 429 and problem["request_id"]
        # the previous window's 3 weigh 3 * (1 - elapsed/60) after the minute turns:
        # one more fits once that is <= 2, i.e. 20 s into the next minute (50 s from now)
        assert refused.headers["Retry-After"] == "50"
        assert refused.headers["RateLimit"] == '"minute";r=0;t=50'
        # bob has his own allowance
        assert get(proxy, apikey=BOB).status_code == 200
        clock.now += 49
        assert get(proxy, apikey=ALICE).status_code == 429
        clock.now += 1
        assert get(proxy, apikey=ALICE).status_code == 200
        assert get(proxy, apikey=ALICE).status_code == 429
    assert len(node.requests) == 5


def test_refused_requests_never_reach_the_node(node: Upstream, clock: Clock) -> None:
    plugins = "      rate-limit: {limit: 2, window: 1s, by: ip}\n"
    with proxy_for(config_text(node, plugins), clock) as proxy:
        statuses = [get(proxy).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    assert len(node.requests) == 2


def test_several_limits_count_all_or_nothing(node: Upstream, clock: Clock) -> None:
    plugins = """\
      rate-limit:
        by: ip
        legacy_headers: true
        limits: [{limit: 2, window: 1s}, {limit: 3, window: 1h}]
"""
    clock.now = 1_800_000_000.25
    with proxy_for(config_text(node, plugins), clock) as proxy:
        first = get(proxy)
        assert first.headers["RateLimit-Policy"] == '"second";q=2;w=1, "hour";q=3;w=3600'
        assert first.headers["RateLimit"] == '"second";r=1;t=2'  # the fewest left
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert get(proxy).status_code == 200
        refused = get(proxy)  # over the per-second limit: not counted in the hour
        assert refused.status_code == 429
        # 0.75 s to the next second, then half of it for the 2 to weigh 1: 1.25 s
        assert refused.headers["Retry-After"] == "2"
        clock.now += 2
        third = get(proxy)
        assert third.status_code == 200
        # the hour began at 0: the 3 weigh 2 once 1/3 of the next hour has gone
        assert third.headers["RateLimit"] == '"hour";r=0;t=4798'
        assert third.headers["X-RateLimit-Limit"] == "3"
        clock.now += 2
        assert get(proxy).status_code == 429  # now the hour is spent


def test_with_every_window_spent_t_names_the_one_that_frees_last(
    node: Upstream, clock: Clock
) -> None:
    plugins = """\
      rate-limit:
        by: ip
        limits: [{limit: 1, window: 1s}, {limit: 1, window: 1m}]
"""
    with proxy_for(config_text(node, plugins), clock) as proxy:
        first = get(proxy)
        # both have r=0; the second frees after 2 s, the minute after 120 s
        assert first.headers["RateLimit"] == '"minute";r=0;t=120'
        refused = get(proxy)
        assert refused.headers["Retry-After"] == "120"
        clock.now += 119
        assert get(proxy).status_code == 429
        clock.now += 1
        assert get(proxy).status_code == 200


def test_token_bucket_allows_a_burst_then_the_rate(node: Upstream, clock: Clock) -> None:
    plugins = """\
      rate-limit: {limit: 1, window: 1s, algorithm: token_bucket, burst: 3, by: ip}
"""
    with proxy_for(config_text(node, plugins), clock) as proxy:
        assert [get(proxy).status_code for _ in range(4)] == [200, 200, 200, 429]
        clock.now += 1
        assert [get(proxy).status_code for _ in range(2)] == [200, 429]
        clock.now += 10  # the bucket holds 3 at most
        assert [get(proxy).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_limits_are_counted_per_route_where_attached(node: Upstream, clock: Clock) -> None:
    routes = """\
  - name: other
    paths: ["/other"]
    target: backend
    plugins:
      rate-limit: {limit: 1, window: 60, by: ip}
"""
    plugins = "      rate-limit: {limit: 1, window: 60, by: ip}\n"
    with proxy_for(config_text(node, plugins, routes=routes), clock) as proxy:
        assert get(proxy, "/items").status_code == 200
        assert get(proxy, "/other").status_code == 200  # its own count
        assert get(proxy, "/items").status_code == 429
        assert get(proxy, "/other").status_code == 429


def test_a_global_limit_counts_every_route_together(node: Upstream, clock: Clock) -> None:
    routes = """\
  - name: other
    paths: ["/other"]
    target: backend
"""
    top = "plugins:\n  rate-limit: {limit: 2, window: 60, by: ip}\n"
    plugins = "      {}\n"
    text = config_text(node, plugins, routes=routes, top=top).replace(
        "    plugins:\n      {}\n", ""
    )
    with proxy_for(text, clock) as proxy:
        assert get(proxy, "/items").status_code == 200
        assert get(proxy, "/other").status_code == 200
        assert get(proxy, "/items").status_code == 429
        assert get(proxy, "/other").status_code == 429


def test_by_header_and_path_combined(node: Upstream, clock: Clock) -> None:
    routes = """\
  - name: wide
    paths: ["/wide"]
    target: backend
    plugins:
      rate-limit: {limit: 1, window: 60, by: ["header:X-Tenant", path]}
"""
    with proxy_for(config_text(node, "      {}\n", routes=routes), clock) as proxy:
        assert get(proxy, "/wide/a", **{"X-Tenant": "t1"}).status_code == 200
        assert get(proxy, "/wide/a", **{"X-Tenant": "t1"}).status_code == 429
        assert get(proxy, "/wide/./a", **{"X-Tenant": "t1"}).status_code == 429  # same path
        assert get(proxy, "/wide/b", **{"X-Tenant": "t1"}).status_code == 200
        assert get(proxy, "/wide/a", **{"X-Tenant": "t2"}).status_code == 200
        # no header: counted by client address, not let through unlimited
        assert get(proxy, "/wide/a").status_code == 200
        assert get(proxy, "/wide/a").status_code == 429


def test_by_ip_reads_x_forwarded_for_only_from_trusted_proxies(
    node: Upstream, clock: Clock
) -> None:
    plugins = "      rate-limit: {limit: 1, window: 60, by: ip, trusted_proxies: [127.0.0.1]}\n"
    with proxy_for(config_text(node, plugins), clock) as proxy:
        forwarded = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}
        assert get(proxy, **forwarded).status_code == 200
        assert get(proxy, **forwarded).status_code == 429
        assert get(proxy, **{"X-Forwarded-For": "203.0.113.10"}).status_code == 200
        assert get(proxy).status_code == 200  # 127.0.0.1 itself, with nothing forwarded
    with proxy_for(config_text(node, plugins.replace("127.0.0.1", "10.0.0.1")), clock) as proxy:
        # the peer is not trusted: the header is the client's own, and ignored
        assert get(proxy, **{"X-Forwarded-For": "203.0.113.1"}).status_code == 200
        assert get(proxy, **{"X-Forwarded-For": "203.0.113.2"}).status_code == 429


def test_by_credential_counts_each_key_of_a_consumer(node: Upstream, clock: Clock) -> None:
    second = "alice-second-key-00000"
    plugins = """\
      key-auth: {}
      rate-limit: {limit: 1, window: 60, by: credential}
"""
    text = config_text(node, plugins).replace(
        f"key-auth: [{{key: {ALICE}}}]", f"key-auth: [{{key: {ALICE}}}, {{key: {second}}}]"
    )
    with proxy_for(text, clock) as proxy:
        assert get(proxy, apikey=ALICE).status_code == 200
        assert get(proxy, apikey=ALICE).status_code == 429
        assert get(proxy, apikey=second).status_code == 200


def test_headers_can_be_left_off_allowed_responses(node: Upstream, clock: Clock) -> None:
    plugins = "      rate-limit: {limit: 1, window: 60, by: ip, headers: false}\n"
    with proxy_for(config_text(node, plugins), clock) as proxy:
        allowed = get(proxy)
        assert "RateLimit" not in allowed.headers
        refused = get(proxy)
        assert refused.status_code == 429 and "RateLimit" in refused.headers


def test_counts_survive_a_reload(node: Upstream, clock: Clock) -> None:
    plugins = "      rate-limit: {limit: 2, window: 60, by: ip}\n"
    text = config_text(node, plugins)
    with proxy_for(text, clock) as proxy:
        assert get(proxy).status_code == 200
        assert proxy.server is not None
        server = proxy.server
        from tests.support.catalog import load_config_text

        proxy.call(server.swap, load_config_text(text + "# reloaded\n"))
        assert get(proxy).status_code == 200
        assert get(proxy).status_code == 429


def test_exactly_the_limit_succeeds_across_four_workers(tmp_path: Path, node: Upstream) -> None:
    plugins = """\
      key-auth: {}
      rate-limit: {limit: 100, window: 60, by: consumer}
"""
    top = f"workers: 4\nrun_dir: {tmp_path / 'run'}"
    path = write_config(tmp_path, config_text(node, plugins, top=top))
    with QuiverProcess(["serve", "-c", str(path)]) as proc:
        port = proc.wait_listening()
        proc.wait_for(r"worker \d+ started", count=4)
        statuses = burst(port, "/items", 2000, {"apikey": ALICE})
    assert statuses == {200: 100, 429: 1900}
    assert len(node.requests) == 100


def test_a_consumer_is_counted_under_one_key_whichever_way_it_is_made() -> None:
    from quiver.plugins.traffic.keys import KeyMaker

    class Request:
        consumer = type("Consumer", (), {"name": "alice"})()
        client_ip = b"10.0.0.1"

        def get(self, name: bytes) -> bytes | None:
            return b"t1" if name == b"x-tenant" else None

    fast = KeyMaker("route:r", "consumer", [])
    general = KeyMaker("route:r", ["consumer"], [])
    general.per_consumer = None
    request: Any = Request()
    assert fast(request) == fast(request) == general(request)
    assert KeyMaker("route:r", ["consumer", "header:X-Tenant"], [])(request) != fast(request)
