"""Where each walk of a resource stands: the row of ``_quiver_sync_state``.

A destination commits state rows in the same transaction as the rows they account
for, so after a crash the state says exactly which pages are in: the run that
follows resumes with the page after them. One row per resource (``parent`` empty)
and, for a child resource, one per parent record (``parent`` is its key).

``status``: ``pending`` (a parent record whose children are still to fetch),
``running`` (pages are being loaded; ``next`` is the request of the next page),
``done`` (the walk ended; ``cursor`` is where the next run's incremental load starts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

Status = Literal["pending", "running", "done"]
STATE_TABLE = "_quiver_sync_state"
SCHEMA_TABLE = "_quiver_sync_schema"
COLUMNS = ("source", "resource", "parent", "status", "cursor", "start", "next", "pages", "rows")


@dataclass(frozen=True)
class State:
    source: str
    resource: str
    parent: str = ""
    status: Status = "pending"
    cursor: Any = None  # the highest cursor value loaded (JSON value)
    start: Any = None  # the cursor value the current walk asked from
    next: dict[str, Any] | None = None  # the next page's request; {"parallel": n} after n
    pages: int = 0
    rows: int = 0  # rows loaded by all walks: the next row number without a primary key

    def row(self) -> tuple[str, str, str, str, str, str, str, int, int]:
        """As stored: JSON text for the values whose type the API decides."""
        return (
            self.source,
            self.resource,
            self.parent,
            self.status,
            _text(self.cursor),
            _text(self.start),
            _text(self.next),
            self.pages,
            self.rows,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> State:
        source, resource, parent, status, cursor, start, next_, pages, rows = row
        return cls(
            source,
            resource,
            parent,
            status,
            orjson.loads(cursor),
            orjson.loads(start),
            orjson.loads(next_),
            int(pages),
            int(rows),
        )

    def advanced(self, **changes: Any) -> State:
        return replace(self, **changes)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()
