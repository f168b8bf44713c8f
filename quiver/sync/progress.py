"""Progress bars while a sync runs (records, pages, rate, ETA) and the summary after.

Both go to stderr through rich, which draws bars on a terminal and stays quiet
elsewhere (CI logs, pipes): the summary table is printed either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars
from rich.table import Table

if TYPE_CHECKING:
    from quiver.sync.runner import Tally


class Progress:
    """One bar per resource: pages done of the known total, records and their rate."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages  {task.fields[records]:,} records  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Progress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def task(self, name: str) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.bars.add_task(name, total=None, records=0, rate="")
        return self.tasks[name]

    def advance(self, task: TaskID, records: int, *, total: int | None) -> None:
        state = next(t for t in self.bars.tasks if t.id == task)
        count = int(state.fields["records"]) + records
        elapsed = state.elapsed or 0.0
        rate = f"{count / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.bars.update(task, advance=1, total=total, records=count, rate=rate)


def summary(tallies: Iterable[Tally], console: Console) -> None:
    table = Table(title="quiver sync")
    for column in ("source", "resource", "tables", "rows", "pages", "seconds", "schema changes"):
        table.add_column(
            column, justify="right" if column in ("rows", "pages", "seconds") else "left"
        )
    for tally in tallies:
        table.add_row(
            tally.source,
            tally.resource,
            ", ".join(sorted(tally.tables)),
            f"{tally.rows:,}",
            f"{tally.pages:,}",
            f"{tally.seconds:.1f}",
            _changes(tally),
        )
    console.print(table)


def _changes(tally: Tally) -> str:
    """Widenings one by one (they change what a column holds); new columns counted."""
    added = sum(1 for change in tally.changes if change.kind == "column")
    lines = [str(change) for change in tally.changes if change.kind == "widen"]
    if added:
        lines.insert(0, f"{added} new column(s)")
    return "\n".join(lines) or "-"
