"""Where a worker's quotas and budgets note that they refused a request because
their limit is spent (:mod:`quiver.observe.limits_reached` says what a note is)."""

from __future__ import annotations

from quiver.observe.limits_reached import ReachedNotes
from quiver.plugins.stores import Stores


def reached_notes(stores: Stores) -> ReachedNotes:
    """The worker's notes in its run directory, one object for its quotas and
    budgets across reloads (so a limit noted is not noted again by a new config)."""
    return stores.keep(("reached-notes",), lambda: ReachedNotes(stores.run_dir, stores.clock))
