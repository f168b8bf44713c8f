"""The call log as the workers write it: its latency columns take the access log's
names, ``upstream_us`` and ``gateway_us`` (they were ``upstream_latency_us`` and
``overhead_us``), so that a fact has one name from the spooled line to the API;
``call_captures`` keeps the header fields and bodies of the calls of routes
that ask for them; and ``call_trims`` remembers how far retention has deleted
calls, so that a range it reached is read from the rollups, never from what is
left of its raw rows.

``ALTER TABLE ... RENAME COLUMN`` is the same statement in SQLite (3.25 and
later) and PostgreSQL, and neither copies the table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE calls RENAME COLUMN upstream_latency_us TO upstream_us")
    op.execute("ALTER TABLE calls RENAME COLUMN overhead_us TO gateway_us")
    op.create_table(
        "call_captures",
        sa.Column(
            "call_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("capture", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_captures")),
    )
    op.create_table(
        "call_trims",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("through_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_trims")),
    )
