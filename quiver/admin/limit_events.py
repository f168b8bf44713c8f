"""Webhook events of limits reached: ``quota.reached`` and ``budget.reached``,
published by the admin sidecar from the notes the workers leave in the run
directory (:mod:`quiver.observe.limits_reached`, which says why one per limit
and period).

Each note is published under its own id as the message id and then removed; a
note whose message exists already (the sidecar stopped between the two, or
another worker noted the same limit later) is only removed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from quiver.admin.periodic import Periodic
from quiver.observe.limits_reached import BUDGET_REACHED, QUOTA_REACHED, read_notes
from quiver.webhooks.queue import MessageExists, publish

__all__ = ["BUDGET_REACHED", "QUOTA_REACHED", "LimitWatcher"]


class LimitWatcher(Periodic):
    """Publishes the notes in ``run_dir``; ``check`` once, or ``start``/``stop``."""

    thread_name = "limit-events"

    def __init__(self, run_dir: Path, engine: Engine, *, interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self._run_dir = run_dir
        self._engine = engine

    def check(self) -> list[str]:
        published = []
        for note in read_notes(self._run_dir):
            try:
                publish(self._engine, note.type, note.data, now_ms=note.time_ms, msg_id=note.id)
                published.append(note.type)
            except MessageExists:
                pass
            note.path.unlink(missing_ok=True)
        return published
