"""Property: for any small declaration, apply -> current -> apply is a fixed point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from quiver.store import open_store
from tests.support.catalog import built_in

NAMES = st.sampled_from(["a", "b", "c", "api.v1", "x_y"])
PLUGINS = st.dictionaries(
    st.sampled_from(["cors", "acl", "rate-limit"]),
    st.just({}),
    max_size=2,
).map(
    lambda plugins: {
        name: {
            "cors": {"origins": ["*"]},
            "acl": {"allow": ["g"]},
            "rate-limit": {"limit": 5, "window": 1},
        }[name]
        for name in plugins
    }
)


@st.composite
def declarations(draw: st.DrawFn) -> dict[str, Any]:
    targets = draw(st.lists(NAMES, unique=True, max_size=3))
    document: dict[str, Any] = {}
    written_empty: bool = draw(st.booleans())
    if targets or written_empty:
        document["targets"] = [
            {"name": name, "url": f"http://127.0.0.1:{draw(st.integers(9000, 9100))}"}
            | ({"plugins": draw(PLUGINS)} if draw(st.booleans()) else {})
            for name in targets
        ]
    if targets:
        routes = draw(st.lists(NAMES, unique=True, max_size=3))
        document["routes"] = [
            {"name": name, "paths": [f"/{name}"], "target": draw(st.sampled_from(targets))}
            | ({"plugins": draw(PLUGINS)} if draw(st.booleans()) else {})
            for name in routes
        ]
    consumers = draw(st.lists(NAMES, unique=True, max_size=2))
    if consumers:
        document["consumers"] = [
            {"name": name, "groups": draw(st.lists(st.sampled_from(["g", "h"]), max_size=2))}
            | (
                {"credentials": {"key-auth": [{"key": f"key-of-{name}-{draw(st.integers(0, 9))}"}]}}
                if draw(st.booleans())
                else {}
            )
            for name in consumers
        ]
    if draw(st.booleans()):
        document["plugins"] = draw(PLUGINS)
    if draw(st.booleans()):
        document["limits"] = {"max_headers": draw(st.integers(1, 200))}
    return document


def test_apply_then_current_is_a_fixed_point(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"), built_in())

    @settings(max_examples=60, deadline=None)
    @given(first=declarations(), second=declarations())
    def check(first: dict[str, Any], second: dict[str, Any]) -> None:
        # each example starts from where the one before left the store
        for document in (first, second):
            store.apply(document, author="property")
            current = store.current()
            assert store.apply(current, author="property") is None
            assert store.apply(document, author="property") is None
            assert store.diff(current) == {"added": [], "changed": [], "removed": []}

    try:
        check()
    finally:
        store.close()
