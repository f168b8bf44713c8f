"""Webhook events of the node's upstreams: ``node.down``, ``node.up`` and
``breaker.opened``, published by the admin sidecar.

The workers never reach the store; each writes its view of every node (up or
not, its breaker's state) to the run directory once a second
(:mod:`quiver.observe.node_metrics`).  The watcher reads those views every few
seconds and publishes a change of the node's state as the workers agree on it:
a node is down when no worker sees it up, and up again once any does; a breaker
opened when a worker's breaker for the node went open while none was.  What it
finds on its first read is taken as it is, without events, so a restart of the
admin process does not announce again what was already true.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from quiver.admin.periodic import Periodic
from quiver.observe.node_metrics import read_node
from quiver.webhooks.queue import publish

NODE_DOWN, NODE_UP, BREAKER_OPENED = "node.down", "node.up", "breaker.opened"


@dataclass(frozen=True)
class _Seen:
    up: bool  # any worker sees the node up
    open_breakers: int  # workers whose breaker for it is open


class NodeWatcher(Periodic):
    """Reads the workers' views in ``run_dir``; ``check`` once, or ``start``/``stop``."""

    thread_name = "node-events"

    def __init__(
        self,
        run_dir: Path,
        engine: Engine,
        *,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s)
        self._run_dir = run_dir
        self._engine = engine
        self._clock = clock
        self._seen: dict[tuple[str, str], _Seen] | None = None

    def check(self) -> list[str]:
        """Publish what changed since the last check; the types published."""
        now = self._views()
        before, self._seen = self._seen, now
        if before is None:
            return []
        events: list[tuple[str, dict[str, object]]] = []
        for (target, node), seen in sorted(now.items()):
            was = before.get((target, node))
            if was is None:
                continue
            data: dict[str, object] = {"target": target, "node": node}
            if was.up != seen.up:
                events.append((NODE_UP if seen.up else NODE_DOWN, data))
            if seen.open_breakers and not was.open_breakers:
                events.append((BREAKER_OPENED, {**data, "workers": seen.open_breakers}))
        now_ms = int(self._clock() * 1000)
        for kind, data in events:
            publish(self._engine, kind, data, now_ms=now_ms)
        return [kind for kind, _ in events]

    def _views(self) -> dict[tuple[str, str], _Seen]:
        views: dict[tuple[str, str], list[dict[str, object]]] = {}
        for worker in read_node(self._run_dir).workers:
            for target, nodes in (worker.get("targets") or {}).items():
                for node in nodes:
                    views.setdefault((target, str(node["node"])), []).append(node)
        return {
            key: _Seen(
                up=any(view.get("up") for view in seen),
                open_breakers=sum(1 for view in seen if view.get("breaker") == "open"),
            )
            for key, seen in views.items()
        }
