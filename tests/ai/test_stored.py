"""An AI declaration kept in the store (store mode) reads back as applied and
compiles as the file would, AI routes having no target row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quiver.config import validate
from quiver.store import open_store
from tests.support.catalog import built_in


def declaration() -> dict[str, Any]:
    return {
        "ai": {
            "providers": [{"name": "oa", "type": "openai", "api_key": "sk-upstream-1"}],
            "models": [{"name": "gpt", "deployments": [{"provider": "oa", "model": "gpt-4o"}]}],
            "limits": [{"consumer": "*", "rpm": 60}],
        },
        "targets": [{"name": "backend", "url": "http://127.0.0.1:9001"}],
        "routes": [
            {"name": "ai", "paths": ["/v1"], "ai": {"models": ["gpt"]}},
            {"name": "rest", "paths": ["/"], "target": "backend"},
        ],
    }


def test_an_ai_declaration_reads_back_and_compiles(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        assert store.apply(declaration(), author="test") is not None
        assert store.current() == declaration()
        assert store.apply(store.current(), author="test") is None  # (nothing changed)
        _, effective = store.effective()
        config = validate(effective, built_in())
        assert [route.target for route in config.routes] == ["ai-route-ai", "backend"]
        edited = declaration()
        edited["routes"][0]["ai"] = {}
        assert store.apply(edited, author="test") is not None
        assert store.current()["routes"][0] == {"name": "ai", "paths": ["/v1"], "ai": {}}
    finally:
        store.close()
