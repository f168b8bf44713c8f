"""Node and breaker events from the workers' views in the run directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quiver.admin.node_events import NodeWatcher
from quiver.observe.node_metrics import worker_path
from quiver.store import Store
from quiver.webhooks import endpoints, queue


def _worker_sees(run_dir: Path, *nodes: dict[str, Any]) -> None:
    """A worker document (this process standing for a live worker) with these views."""
    views = [
        {"in_flight": 0, "open": 0, "idle": 0, "breaker": "closed", "up": True, **node}
        for node in nodes
    ]
    document = {"pid": os.getpid(), "counters": {}, "targets": {"orders": views}}
    worker_path(run_dir, os.getpid()).write_text(json.dumps(document))


def test_nodes_going_down_and_up_and_breakers_opening_are_published(
    store: Store, tmp_path: Path
) -> None:
    endpoints.create_endpoint(store.engine, "ops", "http://127.0.0.1:9/", now_ms=0)
    watcher = NodeWatcher(tmp_path, store.engine)
    _worker_sees(tmp_path, {"node": "10.0.0.1:80"}, {"node": "10.0.0.2:80", "up": False})
    assert watcher.check() == []  # what is true at start is not announced
    _worker_sees(
        tmp_path,
        {"node": "10.0.0.1:80", "up": False, "breaker": "open"},
        {"node": "10.0.0.2:80", "up": False},
    )
    assert watcher.check() == ["node.down", "breaker.opened"]
    assert watcher.check() == []
    _worker_sees(tmp_path, {"node": "10.0.0.1:80"}, {"node": "10.0.0.2:80"})
    assert watcher.check() == ["node.up", "node.up"]
    messages = queue.deliveries(store.engine, "ops")
    assert [item["event_type"] for item in reversed(messages)] == [
        "node.down",
        "breaker.opened",
        "node.up",
        "node.up",
    ]
