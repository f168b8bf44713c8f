"""The call log: call rows, names, per-minute and hourly rollups, spool offsets.

Written out rather than built from quiver.store.calltables: a released migration
never changes, whatever later code declares.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BUCKETS = 25  # the latency histogram's columns h00..h24


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_names")),
    )
    op.create_index("ix_call_names_kind_name", "call_names", ["kind", "name"], unique=True)
    op.create_table(
        "calls",
        sa.Column("id", _id(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("user_agent_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("latency_us", sa.BigInteger(), nullable=False),
        sa.Column("upstream_latency_us", sa.BigInteger(), nullable=True),
        sa.Column("overhead_us", sa.BigInteger(), nullable=True),
        sa.Column("client_ip", sa.String(), nullable=True),
        sa.Column("retries", sa.SmallInteger(), nullable=False),
        sa.Column("cache", sa.String(), nullable=True),
        sa.Column("answered_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index("ix_calls_time", "calls", ["time_ms"])
    op.create_index("ix_calls_route_time", "calls", ["route_id", "time_ms"])
    op.create_index("ix_calls_consumer_time", "calls", ["consumer_id", "time_ms"])
    op.create_index("ix_calls_status_time", "calls", ["status", "time_ms"])
    op.create_index("ix_calls_request_id", "calls", ["request_id"])
    for name, period in (("call_rollups", "minute"), ("call_rollups_hourly", "hour")):
        _rollups(name, period)
    op.create_table(
        "call_spools",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_call_spools")),
    )


def _rollups(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column(period, sa.BigInteger(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("status_class", sa.SmallInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_us", sa.BigInteger(), nullable=False),
        *(sa.Column(f"h{i:02d}", sa.BigInteger(), nullable=False) for i in range(_BUCKETS)),
    )
    op.create_index(
        f"ux_{name}_key",
        name,
        [period, "route_id", "consumer_id", "target_id", "node_id", "status_class"],
        unique=True,
    )
    op.create_index(f"ix_{name}_route_{period}", name, ["route_id", period])
