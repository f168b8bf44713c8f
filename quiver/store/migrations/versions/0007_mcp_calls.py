"""MCP messages in the call log: the method, the tool (prompt, resource) named and
the outcome of a call that was one, with an index to list a tool's calls.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("mcp_method", "mcp_tool", "mcp_outcome")


def upgrade() -> None:
    # (adding nullable columns needs no table rebuild on SQLite, unlike batch mode)
    for name in _COLUMNS:
        op.add_column("calls", sa.Column(name, sa.String(), nullable=True))
    op.create_index("ix_calls_mcp_tool_time", "calls", ["mcp_tool", "time_ms"])


def downgrade() -> None:
    op.drop_index("ix_calls_mcp_tool_time", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
