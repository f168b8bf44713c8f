"""What a destination is handed, and what it promises: one batch, one transaction.

The runner cuts the pages it loads into :class:`Batch` es. A destination applies a
batch all or nothing: the schema changes, the rows, the state rows that account for
them, the tables a replace swaps in. That is the whole of crash safety: a run killed
anywhere leaves the destination as the last commit left it, state included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from quiver.sync.schema import Change
from quiver.sync.state import State


@dataclass(frozen=True)
class Write:
    """Rows for one table; with ``delete``, the rows matching those keys go first
    (a merge: a record loaded again replaces the one loaded before, with its children).

    With ``through``, ``delete`` holds keys of that parent table: the rows to go are
    those whose ``_parent_id`` is the ``_quiver_row`` of a parent row matching them
    (the list items of records whose primary key has several columns)."""

    table: str
    rows: pa.Table
    delete: pa.Table | None = None
    through: str | None = None


@dataclass
class Batch:
    writes: list[Write] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)  # tables to start again (a replace's)
    swaps: list[tuple[str, str]] = field(default_factory=list)  # (loaded, replaced)

    @property
    def rows(self) -> int:
        return sum(write.rows.num_rows for write in self.writes)


class Destination(Protocol):
    """A place rows are loaded into, with the state of the walks that loaded them."""

    def schema(self) -> dict[str, dict[str, pa.DataType]]:
        """The columns of every table loaded so far (from ``_quiver_sync_schema``)."""
        ...

    def states(self, source: str, resource: str) -> list[State]: ...

    def commit(self, batch: Batch) -> None:
        """Apply all of ``batch`` or none of it."""
        ...

    def close(self) -> None: ...
