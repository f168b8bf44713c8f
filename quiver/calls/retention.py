"""Keeping the call log within its bounds: raw rows by age and by count, rollups by age
(AI spend rows and their rollups alike).

Run after every batch, each DELETE removing at most ``delete_chunk`` rows in its
own short transaction, so that trimming never holds the write lock long enough to
stall readers or the next batch.  The count bound reads ids, not ``count(*)``: ids
only grow and the oldest rows go first, so keeping ids above ``max(id) - max_rows``
keeps at most ``max_rows`` rows, and costs two index lookups.

Each delete also moves the mark of how far calls were deleted (``call_trims``),
in its own transaction: queries read the raw rows of a range only when the range
begins after it (:mod:`quiver.calls.queries`), so trimmed counts never show.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from quiver.calls.settings import CallLog
from quiver.store.calltables import (
    call_captures,
    call_cause_rollups,
    call_cause_rollups_hourly,
    call_rollups,
    call_rollups_hourly,
    call_trims,
    calls,
)
from quiver.store.engine import WRITE
from quiver.store.spendtables import ai_spend, ai_spend_rollups, ai_spend_rollups_hourly

_BEYOND_EVERY_ID = 2**62  # (no call left: every capture goes)


def enforce(engine: Engine, settings: CallLog, now_ms: int) -> int:
    """Delete what is beyond the bounds; the number of raw and rollup rows deleted."""
    deleted = 0
    chunk = settings.delete_chunk
    cutoff = now_ms - int(settings.retention * 1000)
    writing = engine.execution_options(**{WRITE: True})
    while True:  # by age: the oldest by time, through ix_calls_time
        oldest = select(calls.c.id).where(calls.c.time_ms < cutoff).order_by(calls.c.time_ms)
        with writing.begin() as connection:
            count = connection.execute(
                delete(calls).where(calls.c.id.in_(oldest.limit(chunk).scalar_subquery()))
            ).rowcount
            if count:  # (every call before the cutoff goes, in this loop)
                _trimmed_through(connection, cutoff - 1)
        deleted += count
        if count < chunk:
            break
    while True:  # by count
        with writing.begin() as connection:
            low, high = connection.execute(_ends(calls.c.id)).one()
            if high is None or high - low < settings.max_rows:
                break
            bound = min(high - settings.max_rows, low + chunk - 1)
            latest = select(func.max(calls.c.time_ms)).where(calls.c.id <= bound)
            _trimmed_through(connection, connection.execute(latest).scalar_one())
            deleted += connection.execute(delete(calls).where(calls.c.id <= bound)).rowcount
    with writing.begin() as connection:  # the captures of the calls deleted go with them
        oldest_kept = select(func.min(calls.c.id)).scalar_subquery()
        deleted += connection.execute(
            delete(call_captures).where(
                call_captures.c.call_id < func.coalesce(oldest_kept, _BEYOND_EVERY_ID)
            )
        ).rowcount
    deleted += _spend(writing, settings, cutoff)
    rollup_cutoff = now_ms - int(settings.rollup_retention * 1000)
    for column, per_ms, step in (
        (call_rollups.c.minute, 60_000, 60),  # an hour of minutes at a time
        (call_rollups_hourly.c.hour, 3_600_000, 24),  # a day of hours at a time
        (call_cause_rollups.c.minute, 60_000, 60),
        (call_cause_rollups_hourly.c.hour, 3_600_000, 24),
        (ai_spend_rollups.c.minute, 60_000, 60),
        (ai_spend_rollups_hourly.c.hour, 3_600_000, 24),
    ):
        cutoff_period = rollup_cutoff // per_ms
        while True:  # rollups by age
            with writing.begin() as connection:
                first = connection.execute(select(func.min(column))).scalar()
                if first is None or first >= cutoff_period:
                    break
                bound = min(cutoff_period, first + step)
                deleted += connection.execute(delete(column.table).where(column < bound)).rowcount
    return deleted


def _spend(writing: Engine, settings: CallLog, cutoff: int) -> int:
    """Spend rows by age and by count, as calls (their rollups keep the sums)."""
    deleted = 0
    chunk = settings.delete_chunk
    while True:
        oldest = (
            select(ai_spend.c.id).where(ai_spend.c.time_ms < cutoff).order_by(ai_spend.c.time_ms)
        )
        with writing.begin() as connection:
            count = connection.execute(
                delete(ai_spend).where(ai_spend.c.id.in_(oldest.limit(chunk).scalar_subquery()))
            ).rowcount
        deleted += count
        if count < chunk:
            break
    while True:
        with writing.begin() as connection:
            low, high = connection.execute(_ends(ai_spend.c.id)).one()
            if high is None or high - low < settings.max_rows:
                return deleted
            bound = min(high - settings.max_rows, low + chunk - 1)
            deleted += connection.execute(delete(ai_spend).where(ai_spend.c.id <= bound)).rowcount


def _ends(column: ColumnElement[int]) -> Select[tuple[Any, Any]]:
    """The lowest and the highest ``column``, each its own subquery: SQLite reads a
    lone min() or max() off an index's end, but a min() beside a max() scans the
    table (a million rows: 15 ms, after every batch)."""
    return select(
        select(func.min(column)).scalar_subquery(), select(func.max(column)).scalar_subquery()
    )


def _trimmed_through(connection: Connection, time_ms: int) -> None:
    """Remember that calls up to ``time_ms`` may be gone (in the deleting transaction)."""
    updated = connection.execute(
        update(call_trims)
        .where(call_trims.c.id == 1, call_trims.c.through_ms < time_ms)
        .values(through_ms=time_ms)
    ).rowcount
    if not updated and connection.execute(select(call_trims.c.id)).first() is None:
        connection.execute(insert(call_trims).values(id=1, through_ms=time_ms))


def trimmed_through(connection: Connection) -> int:
    """The latest time (epoch ms) of a call retention deleted; -1 when none was."""
    through = connection.execute(select(call_trims.c.through_ms)).scalar()
    return -1 if through is None else int(through)
