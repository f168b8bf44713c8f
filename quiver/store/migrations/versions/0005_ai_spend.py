"""AI spend: one lean row per call that went to a model, and per-minute and hourly
sums of tokens and cost by route, consumer, team, model and provider.

Written out rather than built from quiver.store.spendtables: a released migration
never changes, whatever later code declares.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = ("route_id", "consumer_id", "team_id", "model_id", "provider_id")
_SUMS = ("calls", "prompt_tokens", "completion_tokens", "cost_nusd")


def upgrade() -> None:
    op.create_table(
        "ai_spend",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("ttft_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_spend")),
    )
    op.create_index("ix_ai_spend_time", "ai_spend", ["time_ms"])
    op.create_index("ix_ai_spend_request_id", "ai_spend", ["request_id"])
    for name, period in (("ai_spend_rollups", "minute"), ("ai_spend_rollups_hourly", "hour")):
        op.create_table(
            name,
            sa.Column(period, sa.BigInteger(), nullable=False),
            *(sa.Column(column, sa.Integer(), nullable=False) for column in _KEY),
            *(sa.Column(column, sa.BigInteger(), nullable=False) for column in _SUMS),
        )
        op.create_index(f"ux_{name}_key", name, [period, *_KEY], unique=True)


def downgrade() -> None:
    op.drop_table("ai_spend_rollups_hourly")
    op.drop_table("ai_spend_rollups")
    op.drop_table("ai_spend")
