"""Subscription requests across teams: the team whose API is asked for.

A request belongs to the consumer's team (``team``) and to the API's
(``api_team``), which decides it; the requests made so far were all within one
team, so their ``api_team`` is their ``team``.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (a nullable column needs no table rebuild on SQLite; the code reads NULL as `team`)
    op.add_column("subscriptions", sa.Column("api_team", sa.String(length=128), nullable=True))
    op.execute("UPDATE subscriptions SET api_team = team")
    op.create_index("ix_subscriptions_api_team_state", "subscriptions", ["api_team", "state"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_api_team_state", "subscriptions")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("api_team")
