"""Teams side by side: what each may declare, and the one declaration they make."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.config import validate
from quiver.errors import ConfigError
from quiver.store import Store
from tests.support.catalog import built_in

DEFAULT: dict[str, Any] = {
    "limits": {"max_headers": 50},
    "plugins": {"cors": {"origins": ["https://a.example"]}},
    "targets": [{"name": "orders", "url": "http://127.0.0.1:9001"}],
    "routes": [{"name": "orders", "paths": ["/orders"], "target": "orders"}],
}
PAYMENTS: dict[str, Any] = {
    "targets": [{"name": "orders", "url": "http://127.0.0.1:9002"}],
    "routes": [{"name": "orders", "paths": ["/pay"], "target": "orders"}],
    "consumers": [{"name": "shop", "credentials": {"key-auth": [{"key": "shop-key-0123456789"}]}}],
}


def test_the_effective_declaration_qualifies_other_teams_names(store: Store) -> None:
    assert store.effective() == (0, {})
    store.apply(DEFAULT, author="test")
    store.apply(PAYMENTS, author="test", team="payments")
    number, document = store.effective()
    assert number == store.head() == 2
    assert [t["name"] for t in document["targets"]] == ["orders", "payments.orders"]
    assert [(r["name"], r["target"]) for r in document["routes"]] == [
        ("orders", "orders"),
        ("payments.orders", "payments.orders"),
    ]
    assert [c["name"] for c in document["consumers"]] == ["payments.shop"]
    assert document["limits"] == DEFAULT["limits"]
    assert document["plugins"] == DEFAULT["plugins"]
    validate(document, built_in())  # what the data plane loads is valid
    assert store.current("payments")["targets"][0]["name"] == "orders", "unqualified per team"


@pytest.mark.parametrize("key", ["limits", "plugins", "timeouts"])
def test_another_team_declares_only_entities(store: Store, key: str) -> None:
    document = dict(PAYMENTS, **{key: DEFAULT.get(key, {"connect": "1s"})})
    with pytest.raises(ConfigError) as caught:
        store.apply(document, author="test", team="payments")
    assert [issue.location for issue in caught.value.issues] == [key]
    assert "default team" in caught.value.issues[0].message
    assert store.head() == 0, "nothing written"


def test_a_key_another_team_uses_is_refused_without_saying_whose(store: Store) -> None:
    store.apply(PAYMENTS, author="test", team="payments")
    same_key = {"consumers": [dict(PAYMENTS["consumers"][0], name="other")]}
    with pytest.raises(ConfigError) as caught:
        store.apply(same_key, author="test", team="shipping")
    message = str(caught.value)
    assert "another team" in message
    assert "payments" not in message and "shop" not in message
    assert store.head() == 1
