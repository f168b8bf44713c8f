"""The ``apis`` section and consumers' ``subscriptions``: valid declarations, and
every mistake named with its key and place."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from quiver.config import validate
from quiver.config.document import read_document
from quiver.errors import ConfigError
from tests.support.catalog import built_in, load_config_text

BASE: dict[str, Any] = {
    "targets": [{"name": "shop", "url": "http://127.0.0.1:9"}],
    "routes": [
        {"name": "orders", "paths": ["/orders"], "target": "shop"},
        {"name": "orders-admin", "paths": ["/admin/orders"], "target": "shop"},
    ],
    "apis": [
        {
            "name": "orders",
            "title": "Orders API",
            "tags": ["commerce"],
            "version": "1.2",
            "routes": ["orders", "orders-admin"],
            "state": "published",
            "plans": [{"name": "free", "rate_limit": {"limit": 100, "window": "1m"}}],
        }
    ],
    "consumers": [
        {
            "name": "acme-app",
            "credentials": {"key-auth": [{"key": "acme-key-0123456789"}]},
            "subscriptions": [{"api": "orders", "plan": "free"}],
        }
    ],
}


def issues(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        validate(data, built_in())
    return [(issue.location, issue.message) for issue in caught.value.issues]


def changed(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(sections))
    return data


def test_a_declaration_with_apis_plans_and_subscriptions_is_valid() -> None:
    config = validate(BASE, built_in())
    [api] = config.apis
    assert api.state == "published" and api.plans[0].approval == "manual"
    assert config.consumers[0].subscriptions[0].plan == "free"


def test_an_api_is_a_draft_by_default_and_deprecation_dates_read_as_utc() -> None:
    api = {
        "name": "old",
        "routes": ["orders"],
        "state": "deprecated",
        "deprecation": {"date": "2026-12-01T00:00:00Z", "sunset": "2027-06-01T00:00:00"},
        "plans": [{"name": "p", "quota": {"limit": 10, "period": "month"}, "approval": "auto"}],
    }
    config = validate(changed(apis=[api], consumers=[]), built_in())
    deprecation = config.apis[0].deprecation
    assert deprecation is not None and deprecation.sunset is not None
    assert deprecation.sunset.utcoffset() is not None
    assert validate(changed(apis=[{"name": "a", "routes": ["orders"]}], consumers=[])).apis[
        0
    ].state == ("draft")


@pytest.mark.parametrize(
    ("apis", "consumers", "expected"),
    [
        (
            [{"name": "orders", "routes": ["orders", "nope"]}],
            [],
            (
                "apis[0].routes[1]",
                "unknown route 'nope' (declared routes: 'orders', 'orders-admin')",
            ),
        ),
        # routes of another shape: the models' error only, not one per character
        (
            [{"name": "a", "routes": 17279057084}],
            [],
            ("apis[0].routes", "Input should be a valid list"),
        ),
        (
            [{"name": "a", "routes": "orders"}],
            [],
            ("apis[0].routes", "Input should be a valid list"),
        ),
        (
            [{"name": "a", "routes": ["orders"]}, {"name": "b", "routes": ["orders"]}],
            [],
            ("apis[1].routes[0]", "route 'orders' is in API 'a' already"),
        ),
        (
            [{"name": "a", "routes": ["orders"]}, {"name": "a", "routes": ["orders-admin"]}],
            [],
            ("apis[1].name", "duplicate API name 'a' (also apis[0])"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "state": "deprecated"}],
            [],
            ("apis[0]", "state 'deprecated' needs deprecation: {date: ...}"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "state": "retired"}],
            [],
            ("apis[0]", "state 'retired' needs deprecation: {date: ...}"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "state": "gone"}],
            [],
            ("apis[0].state", "Input should be 'draft', 'published', 'deprecated' or 'retired'"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "plans": [{"name": "p"}, {"name": "p"}]}],
            [],
            ("apis[0]", "duplicate plan name 'p'"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "plans": [{"name": "p", "approval": "maybe"}]}],
            [],
            ("apis[0].plans[0].approval", "Input should be 'manual' or 'auto'"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "counters": {"store": "memcached"}}],
            [],
            ("apis[0].counters.store", "Input should be 'local' or 'redis'"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "counters": {"store": "redis"}}],
            [],
            ("apis[0].counters.store", "store 'redis' needs redis: {url: ...}"),
        ),
        (
            [{"name": "a", "routes": ["orders"], "counters": {"limit": 5}}],
            [],
            ("apis[0].counters", "unknown key 'limit' (use store, redis, on_store_error)"),
        ),
        (
            BASE["apis"],
            [{"name": "c", "subscriptions": [{"api": "payments", "plan": "free"}]}],
            (
                "consumers[0].subscriptions[0].api",
                "unknown API 'payments' (declared APIs: 'orders')",
            ),
        ),
        (
            BASE["apis"],
            [{"name": "c", "subscriptions": [{"api": "orders", "plan": "gold"}]}],
            (
                "consumers[0].subscriptions[0].plan",
                "unknown plan 'gold' of API 'orders' (declared plans: 'free')",
            ),
        ),
    ],
)
def test_a_mistake_is_named_with_its_key(
    apis: list[Any], consumers: list[Any], expected: tuple[str, str]
) -> None:
    assert expected in issues(changed(apis=apis, consumers=consumers))


def test_plans_may_count_in_redis() -> None:
    api = dict(BASE["apis"][0], counters={"store": "redis", "redis": {"url": "redis://h:6379/0"}})
    assert validate(changed(apis=[api]), built_in()).apis[0].counters["store"] == "redis"


def test_the_built_in_plugin_of_apis_cannot_be_written() -> None:
    routes = copy.deepcopy(BASE["routes"])
    routes[0]["plugins"] = {"api-product": {}}
    [(where, message)] = issues(changed(routes=routes))
    assert where == "routes[0].plugins.api-product"
    assert message.startswith("unknown plugin 'api-product'")


def test_an_unquoted_yaml_timestamp_is_read_as_its_text(tmp_path: Path) -> None:
    # (a declaration is plain JSON data: the store keeps it as written)
    text = """
targets: [{name: shop, url: "http://127.0.0.1:9"}]
routes: [{name: old, paths: [/old], target: shop}]
apis:
  - name: old
    routes: [old]
    state: deprecated
    deprecation: {date: 2026-12-01T00:00:00Z, sunset: 2027-06-01}
"""
    path = tmp_path / "quiver.yaml"
    path.write_text(text)
    document: Any = read_document(path).data
    assert document["apis"][0]["deprecation"] == {
        "date": "2026-12-01T00:00:00Z",
        "sunset": "2027-06-01",
    }
    deprecation = load_config_text(text, catalog=built_in()).apis[0].deprecation
    assert deprecation is not None and deprecation.date.timestamp() == 1796083200
