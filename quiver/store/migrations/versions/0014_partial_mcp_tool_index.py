"""The index of MCP tools' calls holds MCP calls only: every other call has no tool,
and keeping an entry for each of them cost the ingester an index insert and a
delete per call for nothing (a query for a tool's calls compares the tool with a
value, which implies it is not null: both databases still use the index).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_NAME = "ix_calls_mcp_tool_time"
_HAS_TOOL = sa.text("mcp_tool IS NOT NULL")


def upgrade() -> None:
    op.drop_index(_NAME, table_name="calls")
    op.create_index(
        _NAME,
        "calls",
        ["mcp_tool", "time_ms"],
        sqlite_where=_HAS_TOOL,
        postgresql_where=_HAS_TOOL,
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="calls")
    op.create_index(_NAME, "calls", ["mcp_tool", "time_ms"])
