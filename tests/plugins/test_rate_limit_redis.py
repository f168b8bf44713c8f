"""rate-limit with ``store: redis`` through the running proxy: one count for every
proxy sharing the Redis, and ``on_store_error`` when the Redis stops and restarts."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quiver.errors import ConfigError
from quiver.plugins.stores import Stores
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy
from tests.support.redis_nodes import (
    RedisServer,
    delete_prefixed,
    require_redis,
    require_redis_server,
    unique_prefix,
)
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 0.25


def config_text(upstream: Upstream, url: str, prefix: str, limit: int) -> str:
    def route(name: str, policy: str) -> str:
        return f"""
  - name: {name}
    paths: ["/{name}"]
    target: backend
    plugins:
      rate-limit:
        limit: {limit}
        window: 60
        by: route
        store: redis
        on_store_error: {policy}
        redis: {{url: "{url}", prefix: "{prefix}", timeout: {TIMEOUT}}}"""

    return f"""
listen: 127.0.0.1:0
targets:
  - name: backend
    url: {upstream.url}
routes:{route("allow", "allow")}{route("deny", "deny")}
"""


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream(echo) as node:
        yield node


def get(proxy: RunningProxy, path: str) -> Response:
    with Client(proxy.port) as client:
        return client.request("GET", path)


def test_proxies_sharing_a_redis_share_one_count(upstream: Upstream) -> None:
    url = require_redis()
    prefix = unique_prefix()
    text = config_text(upstream, url, prefix, limit=5)
    try:
        with RunningProxy(text) as first, RunningProxy(text) as second:
            answers = [get((first, second)[n % 2], "/allow") for n in range(8)]
    finally:
        delete_prefixed(url, prefix)
    assert [a.status for a in answers] == [200] * 5 + [429] * 3
    remaining = [a.header("RateLimit") or "" for a in answers[:5]]
    assert [field.split(";")[1] for field in remaining] == ["r=4", "r=3", "r=2", "r=1", "r=0"]
    refused = answers[-1]
    assert_problem(refused, 429)
    assert int(refused.header("Retry-After") or 0) >= 1


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the proxy did not recover"


def test_a_stopped_redis_applies_on_store_error_and_a_restarted_one_the_limit(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_redis_server()
    server = RedisServer(tmp_path / "redis", args=["--requirepass", "hunter2"]).start()
    url = f"redis://:hunter2@127.0.0.1:{server.port}/0"
    caplog.set_level(logging.WARNING, "quiver.plugins.traffic")
    try:
        with RunningProxy(config_text(upstream, url, "rl:", limit=3)) as proxy:
            assert get(proxy, "/allow").header("RateLimit") is not None
            server.stop()
            for _ in range(20):
                started = time.monotonic()
                allowed, denied = get(proxy, "/allow"), get(proxy, "/deny")
                assert time.monotonic() - started < 2 * TIMEOUT + 0.5
                assert allowed.status == 200 and allowed.header("RateLimit") is None
                problem = assert_problem(denied, 503)
                assert problem["type"] == "urn:quiver:problem:limit-unavailable"
                assert denied.header("Retry-After") == "1"
            server.start()  # the same port, no counts
            wait_until(lambda: get(proxy, "/deny").status != 503)
            wait_until(lambda: get(proxy, "/allow").header("RateLimit") is not None)
            statuses = [get(proxy, "/allow").status for _ in range(3)]
            assert statuses == [200, 200, 429]  # one was counted by the wait above
    finally:
        server.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "counter store unavailable" in logged and "answers again" in logged
    assert f"redis://:***@127.0.0.1:{server.port}/0" in logged
    assert "hunter2" not in logged


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://u:hunter2@cache:port/0", "redis://u:***@cache:port/0: port must be a number"),
        ("redis+sentinel://:hunter2@s1:26379", "names the service"),
        ("redis://cache?timeout=1", "unknown option 'timeout'"),
    ],
)
def test_a_malformed_redis_url_is_a_config_error_without_the_password(
    url: str, message: str
) -> None:
    text = f"""
targets: [{{name: b, url: "http://127.0.0.1:9"}}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      rate-limit: {{limit: 5, window: 60, store: redis, redis: {{url: "{url}"}}}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location == "routes[0].plugins.rate-limit.redis.url"
    assert message in issue.message
    assert "hunter2" not in str(caught.value)


def test_a_frozen_redis_costs_each_request_at_most_the_timeout(
    upstream: Upstream, tmp_path: Path
) -> None:
    require_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    assert server.proc is not None
    try:
        with RunningProxy(config_text(upstream, server.url, "rl:", limit=1000)) as proxy:
            assert get(proxy, "/deny").status == 200
            server.proc.send_signal(signal.SIGSTOP)  # accepts bytes, answers nothing
            try:
                statuses = set()
                for _ in range(10):
                    started = time.monotonic()
                    statuses.add(get(proxy, "/deny").status)
                    statuses.add(get(proxy, "/allow").status)
                    assert time.monotonic() - started < 2 * TIMEOUT + 0.5
                assert statuses == {503, 200}
            finally:
                server.proc.send_signal(signal.SIGCONT)
            wait_until(lambda: get(proxy, "/deny").status == 200)
    finally:
        server.stop()


def test_a_calendar_quota_kept_in_redis_renews_at_local_midnight(upstream: Upstream) -> None:
    url = require_redis()
    prefix = unique_prefix()
    paris_noon = 1_778_493_600.0  # 2026-05-11 12:00 in Paris (10:00 UTC)
    clock = [paris_noon]
    text = f"""
listen: 127.0.0.1:0
targets: [{{name: backend, url: "{upstream.url}"}}]
routes:
  - name: all
    paths: ["/"]
    target: backend
    plugins:
      quota:
        limit: 2
        period: day
        time_zone: Europe/Paris
        by: ip
        store: redis
        redis: {{url: "{url}", prefix: "{prefix}"}}
"""
    try:
        with RunningProxy(text, stores=Stores(clock=lambda: clock[0])) as proxy:
            statuses = [get(proxy, "/").status for _ in range(3)]
            refused = get(proxy, "/")
            clock[0] = paris_noon + 12 * 3600 - 1  # a second before midnight in Paris
            before_midnight = get(proxy, "/").status
            clock[0] = paris_noon + 12 * 3600  # midnight: a new day
            after_midnight = [get(proxy, "/").status for _ in range(3)]
    finally:
        delete_prefixed(url, prefix)
    assert statuses == [200, 200, 429]
    assert refused.header("Retry-After") == str(12 * 3600)
    assert refused.header("RateLimit") == f'"quota-day";r=0;t={12 * 3600}'
    assert before_midnight == 429
    assert after_midnight == [200, 200, 429]
