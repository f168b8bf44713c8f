"""WebSocket connections in the call log: messages and bytes each way, the close
code and who closed, noted when the upgrade's tunnel closed.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("ws_messages_in", sa.BigInteger()),
    ("ws_messages_out", sa.BigInteger()),
    ("ws_bytes_in", sa.BigInteger()),
    ("ws_bytes_out", sa.BigInteger()),
    ("ws_close_code", sa.Integer()),
    ("ws_closed_by", sa.String()),
)


def upgrade() -> None:
    # (adding nullable columns needs no table rebuild on SQLite, unlike batch mode)
    for name, kind in _COLUMNS:
        op.add_column("calls", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
