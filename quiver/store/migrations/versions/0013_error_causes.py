"""Error causes: per-minute and hourly sums of the calls that ended in an error (status
400 and above) by route, consumer, status and who answered, filled from the calls
the log still holds.

Written out rather than built from quiver.store.calltables: a released migration
never changes, whatever later code declares.  Who answered is worked out in SQL
exactly as quiver.calls.causes does it for new calls.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_KEY = ("route_id", "consumer_id", "status", "answered_by")
#: upper bounds (ms) of the latency histogram's buckets, as the rollups of 0003 have them
_BOUNDS_MS = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
)  # fmt: skip
_BUCKETS = tuple(f"h{i:02d}" for i in range(len(_BOUNDS_MS) + 1))
_SUMS = ("requests", "errors", "bytes_in", "bytes_out", "latency_sum_us", *_BUCKETS)
_TABLES = (("call_cause_rollups", "minute"), ("call_cause_rollups_hourly", "hour"))


def upgrade() -> None:
    for name, period in _TABLES:
        op.create_table(
            name,
            sa.Column(period, sa.BigInteger(), nullable=False),
            sa.Column("route_id", sa.Integer(), nullable=False),
            sa.Column("consumer_id", sa.Integer(), nullable=False),
            sa.Column("status", sa.SmallInteger(), nullable=False),
            sa.Column("answered_by", sa.String(), nullable=False),
            *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _SUMS),
        )
        op.create_index(f"ux_{name}_key", name, [period, *_KEY], unique=True)
    _fill()


def _fill() -> None:
    """The sums of the calls already in the log (one statement per table)."""
    answered_by = (
        "CASE WHEN answered_by IS NOT NULL THEN answered_by"
        " WHEN status = 499 THEN 'client'"
        " WHEN route_id = 0 OR status IN (502, 503, 504) THEN 'gateway'"
        " ELSE 'target' END"
    )
    lower = (-1, *(bound * 1000 for bound in _BOUNDS_MS))
    buckets = [
        f"sum(CASE WHEN latency_us > {low}"
        + (f" AND latency_us <= {lower[index + 1]}" if index + 1 < len(lower) else "")
        + " THEN 1 ELSE 0 END)"
        for index, low in enumerate(lower)
    ]
    sums = (
        "count(*)",
        "sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END)",
        "sum(bytes_in)",
        "sum(bytes_out)",
        "sum(latency_us)",
        *buckets,
    )
    columns = ", ".join(("minute", *_KEY, *_SUMS))
    op.execute(
        f"INSERT INTO call_cause_rollups ({columns}) "
        f"SELECT minute, {', '.join(_KEY)}, {', '.join(sums)} FROM ("
        f"SELECT time_ms / 60000 AS minute, route_id, consumer_id, status, {answered_by}"
        " AS answered_by, bytes_in, bytes_out, latency_us FROM calls WHERE status >= 400"
        f") AS failed GROUP BY minute, {', '.join(_KEY)}"
    )
    columns = ", ".join(("hour", *_KEY, *_SUMS))
    op.execute(
        f"INSERT INTO call_cause_rollups_hourly ({columns}) "
        f"SELECT minute / 60, {', '.join(_KEY)}, {', '.join(f'sum({s})' for s in _SUMS)}"
        f" FROM call_cause_rollups GROUP BY minute / 60, {', '.join(_KEY)}"
    )


def downgrade() -> None:
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
