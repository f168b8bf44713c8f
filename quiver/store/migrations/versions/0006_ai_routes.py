"""AI routes have no target: a route row's target_id may be null (its document's
``ai`` says what answers it).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.alter_column("target_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM routes WHERE target_id IS NULL")
    with op.batch_alter_table("routes") as batch:
        batch.alter_column("target_id", existing_type=sa.Integer(), nullable=False)
