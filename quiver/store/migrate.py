"""Bringing the database schema up to this code's, with Alembic.

Migrations only go forward and run when the store opens.  A database whose schema
is newer than this code knows (written by a later Quiver) is refused rather than
used: this code might misread or damage what it does not know.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from quiver.errors import StoreError
from quiver.store.engine import WRITE

# Alembic drives migrations through module-level proxies (alembic.op, alembic.context):
# two threads migrating at once would share them.
_ALEMBIC = threading.Lock()
# Any constant of our own: PostgreSQL sessions migrating at once take turns on it.
_PG_MIGRATION_LOCK = 0x71756976


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "quiver.store:migrations")
    return config


def schema_head() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Apply the migrations the database lacks; StoreError when it is newer than the code."""
    config = _alembic_config()
    scripts = ScriptDirectory.from_config(config)
    with _ALEMBIC, engine.execution_options(**{WRITE: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        current = MigrationContext.configure(connection).get_current_revision()
        if current == scripts.get_current_head():
            return
        if current is not None:
            try:
                scripts.get_revision(current)
            except CommandError:
                raise StoreError(
                    f"the store's schema is at revision {current!r}, which this version of "
                    f"Quiver does not know (it knows up to {scripts.get_current_head()!r}): "
                    "it was written by a newer Quiver; upgrade Quiver to use it"
                ) from None
        _run(config, connection)


def _run(config: Config, connection: Connection) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
