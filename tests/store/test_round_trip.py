"""What is applied is what reads back: README configs, a document using every kind
of entity, and documents whose secrets are already hashed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quiver.plugins.passwords import PasswordHash
from quiver.store import Store, open_store
from tests.store.documents import ALICE_KEY, BOB_PASSWORD, everything, read_yaml, sha256_hash
from tests.support.catalog import built_in
from tests.test_readme import ENV, GATEWAY_YAML, complete_fragment, readme_hello_type

README_CONFIGS = [
    pytest.param(
        complete_fragment(block.text) if "fragment" in block.directives else block.text,
        id=f"README.md:{block.line}",
    )
    for block in GATEWAY_YAML  # (the gateway's configs; not `quiver sync` sources)
    if "invalid" not in block.directives
]


@pytest.mark.parametrize("text", README_CONFIGS)
def test_a_readme_config_reads_back_as_applied(store_url: str, text: str) -> None:
    catalog = built_in()
    if "type: hello" in text:  # the README's own target type, installed as it says
        catalog = catalog.with_target_types(readme_hello_type())
    store = open_store(store_url, catalog)
    document = read_yaml(text, ENV)
    revision = store.apply(document, author="test", message="README")
    assert revision is not None or document == {}
    assert store.current() == hashed(document)
    assert store.apply(store.current(), author="test") is None
    store.close()


def test_every_kind_of_entity_reads_back_with_its_secrets_hashed(store: Store) -> None:
    document = everything()
    store.apply(document, author="test")
    current = store.current()
    stored_password = current["consumers"][1]["credentials"]["basic-auth"][0].pop("password_hash")
    assert PasswordHash.parse(stored_password).matches(BOB_PASSWORD.encode())
    expected = copy.deepcopy(document)
    del expected["consumers"][1]["credentials"]["basic-auth"][0]["password"]
    expected["consumers"][0]["credentials"]["key-auth"][0] = {"key_hash": sha256_hash(ALICE_KEY)}
    assert current == expected


def test_a_document_with_hashed_secrets_reads_back_exactly(store: Store) -> None:
    store.apply(everything(), author="test")
    hashed_form = store.current()
    store.apply({}, author="test")
    assert store.apply(hashed_form, author="test") is not None
    assert store.current() == hashed_form


def test_applying_the_same_clear_password_again_changes_nothing(store: Store) -> None:
    assert store.apply(everything(), author="test") is not None
    assert store.apply(everything(), author="test") is None
    assert [revision.number for revision in store.revisions()] == [1]


def test_written_empty_keys_read_back(store: Store) -> None:
    document: dict[str, Any] = {
        "targets": [{"name": "a", "url": "http://127.0.0.1:9001", "plugins": {}}],
        "routes": [],
        "consumers": [{"name": "c", "credentials": {"key-auth": []}, "plugins": {}}],
        "plugins": {},
    }
    store.apply(document, author="test")
    assert store.current() == document
    assert store.apply({**document, "routes": None} | {"routes": []}, author="test") is None
    assert store.apply({k: v for k, v in document.items() if k != "routes"}, "test") is not None


def test_teams_hold_separate_declarations(store: Store) -> None:
    one = {"targets": [{"name": "a", "url": "http://127.0.0.1:9001"}]}
    two = {"targets": [{"name": "a", "url": "http://127.0.0.1:9002"}]}
    store.apply(one, author="test")
    store.apply(two, author="test", team="payments")
    assert store.current() == one
    assert store.current(team="payments") == two
    assert store.current(team="nobody") == {}
    assert store.apply({}, author="test", team="nobody") is None
    assert [r.team for r in store.revisions()] == ["default", "payments"]
    assert [r.number for r in store.revisions(team="payments")] == [2]


def hashed(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as the store keeps it: key-auth keys as their hash (README configs
    have no basic-auth passwords in clear)."""
    result = copy.deepcopy(document)
    for consumer in result.get("consumers", []):
        for item in consumer.get("credentials", {}).get("key-auth", []):
            if "key" in item:
                item["key_hash"] = sha256_hash(item.pop("key"))
        assert not any("password" in c for c in consumer["credentials"].get("basic-auth", []))
    return result
