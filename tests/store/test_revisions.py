"""Applies leave revisions: what changed per entity, rollback, refused documents."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.config import validate
from quiver.errors import ConfigError, StoreError
from quiver.store import Store
from quiver.store.diffing import diff
from tests.store.documents import everything
from tests.support.catalog import built_in

A: dict[str, Any] = {
    "plugins": {"cors": {"origins": ["https://a.example"]}},
    "targets": [
        {"name": "one", "url": "http://127.0.0.1:9001"},
        {"name": "two", "url": "http://127.0.0.1:9002"},
    ],
    "routes": [{"name": "r", "paths": ["/"], "target": "one"}],
}
B: dict[str, Any] = {
    "limits": {"max_headers": 50},
    "targets": [
        {"name": "two", "url": "http://127.0.0.1:9002"},
        {"name": "three", "url": "http://127.0.0.1:9003"},
    ],
    "routes": [{"name": "r", "paths": ["/"], "target": "three"}],
}


def test_diff_says_what_apply_would_change_per_entity(store: Store) -> None:
    store.apply(A, author="test")
    changes = store.diff(B)
    assert changes == {
        "added": [
            {"kind": "section", "name": "limits", "after": {"max_headers": 50}},
            {"kind": "target", "name": "three", "after": B["targets"][1]},
        ],
        "changed": [
            {"kind": "route", "name": "r", "before": A["routes"][0], "after": B["routes"][0]},
            {
                "kind": "target",
                "name": "two",
                "before": A["targets"][1],
                "after": B["targets"][0],
                "position": [1, 0],
            },
        ],
        "removed": [
            {"kind": "plugin", "name": "cors", "before": A["plugins"]["cors"]},
            {"kind": "target", "name": "one", "before": A["targets"][0]},
        ],
    }
    assert store.current() == A, "diff changes nothing"
    revision = store.apply(B, author="carol", message="move to three")
    assert revision is not None
    assert (revision.number, revision.author, revision.message) == (2, "carol", "move to three")
    assert revision.diff == changes
    assert store.revision(2) == revision


def test_nothing_to_change_makes_no_revision(store: Store) -> None:
    first = store.apply(A, author="test")
    assert first is not None and first.number == 1
    assert store.diff(A) == {"added": [], "changed": [], "removed": []}
    assert store.apply(A, author="test") is None
    assert store.revisions() == [first]


def test_rollback_restores_a_revision_as_a_new_one(store: Store) -> None:
    store.apply(A, author="test")
    store.apply(B, author="test")
    rollback = store.rollback(1, author="dave")
    assert rollback is not None
    assert (rollback.number, rollback.author, rollback.message) == (
        3,
        "dave",
        "roll back to revision 1",
    )
    assert store.current() == A
    assert rollback.diff == diff(B, A)
    assert store.rollback(3, author="dave") is None, "already in that state"


def test_rollback_to_an_unknown_revision_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="there is no revision 7"):
        store.rollback(7, author="test")
    with pytest.raises(StoreError, match="there is no revision 7"):
        store.revision(7)


INVALID: list[object] = [
    ["not", "a", "mapping"],
    {"targets": [{"name": "a"}], "routes": [{"name": "r", "paths": ["/"], "target": "b"}]},
    {"routes": [{"name": "r", "paths": ["/"], "target": "x", "plugins": {"key-auht": {}}}]},
    {"consumers": [{"name": "c", "credentials": {"key-auth": [{"key": "short"}]}}]},
    {"targets": [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]},
]


@pytest.mark.parametrize("document", INVALID, ids=range(len(INVALID)))
def test_an_invalid_document_is_refused_as_the_file_loader_does(
    store: Store, document: object
) -> None:
    store.apply(A, author="test")
    with pytest.raises(ConfigError) as expected:
        validate(document, built_in())
    for attempt in (store.apply, store.diff):
        with pytest.raises(ConfigError) as refused:
            attempt(document, "test")
        assert refused.value.issues == expected.value.issues
    assert store.current() == A
    assert [revision.number for revision in store.revisions()] == [1]


def test_process_settings_are_not_stored(store: Store) -> None:
    with pytest.raises(ConfigError) as refused:
        store.apply({**A, "listen": "127.0.0.1:8080", "workers": 2}, author="test")
    assert [str(issue) for issue in refused.value.issues] == [
        "<config>: listen: a setting of the gateway process, not kept in the store",
        "<config>: workers: a setting of the gateway process, not kept in the store",
    ]
    assert store.revisions() == []


def test_every_revision_keeps_author_time_and_message(store: Store) -> None:
    store.apply(A, author="erin", message="first")
    store.apply(everything(), author="frank", message="second")
    revisions = store.revisions()
    assert [(r.number, r.author, r.message) for r in revisions] == [
        (1, "erin", "first"),
        (2, "frank", "second"),
    ]
    assert revisions[0].created_at <= revisions[1].created_at
    assert revisions[1].created_at.tzinfo is not None


def test_changing_one_route_of_many_writes_a_few_rows(store: Store) -> None:
    from sqlalchemy import event

    ACL = {"acl": {"allow": ["g"]}}

    def document(path: str) -> dict[str, Any]:
        routes = [
            {"name": f"r{i}", "paths": [f"/r{i}"], "target": "one", "plugins": ACL}
            for i in range(300)
        ]
        routes[150]["paths"] = [path]
        return {
            "targets": [{"name": "one", "url": "http://127.0.0.1:9001"}],
            "routes": routes,
            "consumers": [
                {"name": f"c{i}", "credentials": {"key-auth": [{"key": f"key-{i:08}"}]}}
                for i in range(100)
            ],
        }

    store.apply(document("/before"), author="test")
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement.split()[0].upper() + " " + statement.split()[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert store.apply(document("/after"), author="test") is not None
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    # the route, the head, the revision, the team's frame: not 300 routes' plugins
    assert len(writes) <= 5, writes
    assert store.current()["routes"][150]["paths"] == ["/after"]
