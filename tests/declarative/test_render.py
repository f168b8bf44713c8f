"""What `quiver diff` prints, and where a file's issues are placed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quiver.config.document import read_document
from quiver.declarative.render import diff_lines
from quiver.errors import ConfigError


def test_a_diff_reads_entity_by_entity() -> None:
    diff: dict[str, list[dict[str, Any]]] = {
        "added": [{"kind": "target", "name": "billing", "after": {"name": "billing"}}],
        "changed": [
            {
                "kind": "route",
                "name": "orders",
                "before": {"name": "orders", "paths": ["/orders"]},
                "after": {"name": "orders", "paths": ["/orders/v2"]},
                "position": [2, 0],
            }
        ],
        "removed": [{"kind": "consumer", "name": "bob", "before": {"name": "bob"}}],
    }
    assert list(diff_lines(diff)) == [
        "+ target billing",
        "~ route orders (moved from position 3 to 1)",
        "     paths:",
        "    -- /orders",
        "    +- /orders/v2",
        "- consumer bob",
        "3 changes: 1 added, 1 changed, 1 removed",
    ]
    assert list(diff_lines({"added": [], "changed": [], "removed": []})) == ["no changes"]


def test_a_document_places_locations_on_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(
        "targets:\n  - name: a\n    url: ${BACKEND}\nroutes:\n  - name: r\n    paths: ['/']\n"
    )
    document = read_document(path, env={"BACKEND": "http://127.0.0.1:9001"})
    assert document.data["targets"] == [{"name": "a", "url": "http://127.0.0.1:9001"}]
    assert document.line_of("targets[0].url") == 3
    assert document.line_of("routes[0].target") == 5, "a missing key: the line of its entity"
    assert document.line_of("nowhere[3]") == 1, "the document itself"
    with pytest.raises(ConfigError) as caught:
        read_document(path, env={})
    assert caught.value.issues[0].line == 3 and "BACKEND" in caught.value.issues[0].message
