"""PostgreSQL: a new head revision is announced on the ``quiver_revisions`` channel.

A trigger on the ``head`` row sends ``NOTIFY quiver_revisions, '<revision>'``
whenever an apply moves it.  The notification belongs to the apply's transaction:
listeners hear of it when the revision commits, never of one rolled back.  Gateway
nodes sharing the store listen on the channel, so an apply is live everywhere
without each node polling.  SQLite has nothing to notify with: its nodes watch the
database file instead.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (the channel is quiver.store.models.REVISIONS_CHANNEL; written out, as a released
# migration never changes)
_FUNCTION = """
CREATE OR REPLACE FUNCTION quiver_notify_revision() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('quiver_revisions', NEW.revision::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_TRIGGER = """
CREATE TRIGGER quiver_head_notify AFTER UPDATE OF revision ON head
FOR EACH ROW WHEN (NEW.revision IS DISTINCT FROM OLD.revision)
EXECUTE FUNCTION quiver_notify_revision()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)
