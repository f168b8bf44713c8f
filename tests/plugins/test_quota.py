"""quota: its config, and its counting through the running proxy (with a set clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from quiver.plugins.quota import Quota
from quiver.plugins.stores import Stores
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy
from tests.support.upstream import Upstream, echo

ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"


class Clock:
    """A clock the test sets (Unix seconds)."""

    def __init__(self, text: str) -> None:
        self.now = 0.0
        self.set(text)

    def set(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "settings",
    [
        {"limit": 10000, "period": "month", "time_zone": "Europe/Paris", "by": "consumer"},
        {"limit": 500, "period": "7d"},
        {"limit": 1, "period": "day"},
        {"limit": 1, "period": "week", "by": ["consumer", "path"]},
        {"limit": 5, "period": 3600},
        {"limit": 5, "period": "1m"},
        {"limit": 5, "period": "366d", "by": "ip", "trusted_proxies": ["10.0.0.0/8"]},
        {"limit": 5, "period": "day", "headers": False, "legacy_headers": True},
        {"limit": 5, "period": "day", "on_store_error": "deny"},
        {"limit": 5, "period": "day", "store": "redis", "redis": {"url": "redis://127.0.0.1"}},
    ],
)
def test_valid_quota_configs(settings: dict[str, Any]) -> None:
    Quota.Config.model_validate(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"period": "day"}, "limit"),
        ({"limit": 5}, "period"),
        ({"limit": 0, "period": "day"}, "greater than or equal to 1"),
        ({"limit": 5, "period": "year"}, "use day, week, month or a duration"),
        ({"limit": 5, "period": "Month"}, "use day, week, month or a duration"),
        ({"limit": 5, "period": "30s"}, "a rolling period goes from 1m to 366d"),
        ({"limit": 5, "period": "400d"}, "a rolling period goes from 1m to 366d"),
        ({"limit": 5, "period": "7 weeks"}, "not a duration"),
        ({"limit": 5, "period": True}, "use day, week, month"),
        ({"limit": 5, "period": "day", "time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"limit": 5, "period": "day", "time_zone": "../etc"}, "unknown time zone"),
        ({"limit": 5, "period": "7d", "time_zone": "Europe/Paris"}, "calendar periods"),
        ({"limit": 5, "period": "day", "by": "user"}, "use consumer, credential"),
        ({"limit": 5, "period": "day", "store": "redis"}, "needs redis"),
        ({"limit": 5, "period": "day", "window": 60}, "Extra inputs"),
    ],
)
def test_invalid_quota_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        Quota.Config.model_validate(settings)


def config(route_plugins: str, url: str) -> str:
    return f"""\
listen: 127.0.0.1:0
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE}}}]}}
  - name: bob
    credentials: {{key-auth: [{{key: {BOB}}}]}}
targets:
  - name: backend
    url: {url}
routes:
  - name: api
    paths: ["/"]
    target: backend
    plugins:
      key-auth: {{}}
{route_plugins}
"""


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def running(plugins: str, node: Upstream, clock: Clock) -> RunningProxy:
    return RunningProxy(config(plugins, node.url), stores=Stores(clock=clock))


def get(client: Client, key: str = ALICE, path: str = "/") -> Response:
    return client.request("GET", path, headers={"apikey": key})


def test_a_daily_quota_refuses_until_midnight_then_renews(node: Upstream) -> None:
    clock = Clock("2026-05-04 23:00:00")
    plugins = "      quota: {limit: 3, period: day}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        statuses = [get(client).status for _ in range(3)]
        refused = get(client)
        assert statuses == [200, 200, 200]
        problem = assert_problem(refused, 429)
        assert problem["type"] == "urn:quiver:problem:rate-limited"
        assert problem["detail"] == "quota of 3 requests per day is spent"
        assert refused.header("retry-after") == "3600"
        assert refused.header("ratelimit-policy") == '"quota-day";q=3;w=86400'
        assert refused.header("ratelimit") == '"quota-day";r=0;t=3600'
        assert get(client, BOB).status == 200  # each consumer has a quota of its own
        clock.set("2026-05-05 00:00:00")
        renewed = get(client)
        assert renewed.status == 200
        assert renewed.header("ratelimit") == '"quota-day";r=2;t=86400'


def test_a_monthly_quota_ends_at_midnight_in_its_time_zone(node: Upstream) -> None:
    clock = Clock("2026-01-31 22:30:00")  # 23:30 in Paris
    plugins = "      quota: {limit: 1, period: month, time_zone: Europe/Paris}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        first = get(client)
        assert first.header("ratelimit-policy") == f'"quota-month";q=1;w={31 * 86400}'
        refused = get(client)
        assert refused.status == 429
        assert refused.header("retry-after") == "1800"
        clock.set("2026-01-31 23:00:00")  # February, in Paris
        allowed = get(client)
        assert allowed.status == 200
        assert allowed.header("ratelimit-policy") == f'"quota-month";q=1;w={28 * 86400}'


def test_a_day_across_the_clock_change_is_23_hours_long(node: Upstream) -> None:
    clock = Clock("2026-03-29 12:00:00")  # Paris went to summer time at 01:00 UTC
    plugins = "      quota: {limit: 1, period: day, time_zone: Europe/Paris}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        assert get(client).header("ratelimit-policy") == f'"quota-day";q=1;w={23 * 3600}'
        assert get(client).header("retry-after") == str(10 * 3600)  # until 22:00 UTC


def test_a_rolling_quota_counts_the_last_period(node: Upstream) -> None:
    clock = Clock("2026-05-04 12:00:00")
    plugins = "      quota: {limit: 2, period: 7d}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        first = get(client)
        assert first.header("ratelimit-policy") == f'"quota-7d";q=2;w={7 * 86400}'
        assert get(client).status == 200
        refused = get(client)
        assert refused.status == 429
        assert refused.header("ratelimit").startswith('"quota-7d";r=0;')  # type: ignore[union-attr]
        clock.now += 14 * 86400  # two periods later, nothing is left of them
        assert get(client).status == 200


def test_a_quota_on_a_path_key_counts_each_path_apart(node: Upstream) -> None:
    clock = Clock("2026-05-04 12:00:00")
    plugins = "      quota: {limit: 1, period: day, by: [consumer, path]}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        assert [get(client, path=p).status for p in ("/a", "/b", "/a")] == [200, 200, 429]


def test_headers_can_be_left_to_refusals(node: Upstream) -> None:
    clock = Clock("2026-05-04 12:00:00")
    plugins = "      quota: {limit: 1, period: day, headers: false, legacy_headers: true}"
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        allowed = get(client)
        assert allowed.header("ratelimit") is None
        refused = get(client)
        assert refused.header("ratelimit") == '"quota-day";r=0;t=43200'
        assert refused.header("x-ratelimit-remaining") == "0"


def test_with_rate_limit_both_policies_are_listed(node: Upstream) -> None:
    clock = Clock("2026-05-04 12:00:00")
    plugins = (
        "      rate-limit: {limit: 10, window: 1m, legacy_headers: true}\n"
        "      quota: {limit: 2, period: day, legacy_headers: true}"
    )
    with running(plugins, node, clock) as proxy, Client(proxy.port) as client:
        first = get(client)
        assert first.header("ratelimit-policy") == ('"minute";q=10;w=60, "quota-day";q=2;w=86400')
        # (the minute's t: its 10 taken now, the next fits 6 s into the next minute)
        assert first.header("ratelimit") == '"minute";r=9;t=66, "quota-day";r=1;t=43200'
        assert first.header("x-ratelimit-limit") == "2"  # the plugin with fewer left
        assert first.header("x-ratelimit-remaining") == "1"
        get(client)
        refused = get(client)  # by the quota; the rate limit counted it
        assert refused.status == 429
        assert refused.header("retry-after") == "43200"
        assert refused.header("ratelimit-policy") == ('"quota-day";q=2;w=86400, "minute";q=10;w=60')
        assert refused.header("ratelimit") == '"quota-day";r=0;t=43200, "minute";r=7;t=66'
        assert refused.header("x-ratelimit-remaining") == "0"


def test_the_node_rate_limit_fields_are_kept_beside_the_gateways(node: Upstream) -> None:
    def noisy(conn: Any) -> None:
        while (request := conn.read_request()) is not None:
            conn.respond(200, b"{}", [("RateLimit", '"node";r=1;t=1')])
            del request

    clock = Clock("2026-05-04 12:00:00")
    plugins = "      quota: {limit: 5, period: day}"
    with (
        Upstream(noisy) as own,
        running(plugins, own, clock) as proxy,
        Client(proxy.port) as client,
    ):
        # both are lists: the node's own limits apply too, and the client sees both
        assert get(client).header("ratelimit") == '"node";r=1;t=1, "quota-day";r=4;t=43200'


def test_a_quota_on_a_target_counts_its_routes_together(node: Upstream) -> None:
    text = f"""\
listen: 127.0.0.1:0
targets:
  - name: backend
    url: {node.url}
    plugins:
      quota: {{limit: 1, period: day, by: ip}}
routes:
  - {{name: one, paths: ["/one"], target: backend}}
  - {{name: two, paths: ["/two"], target: backend}}
"""
    clock = Clock("2026-05-04 12:00:00")
    with RunningProxy(text, stores=Stores(clock=clock)) as proxy, Client(proxy.port) as client:
        statuses = [client.request("GET", path).status for path in ("/one", "/two", "/one")]
    assert statuses == [200, 429, 429]
