"""Connecting to the store's database: SQLite (the default) or PostgreSQL.

SQLite runs in WAL mode, so readers never wait for the writer, with
``synchronous=FULL``: every committed revision is on disk before apply returns,
even if the machine loses power (NORMAL would only survive a crash of the process).
Applies are rare, so the extra fsync per commit costs nothing that matters.  Write
transactions start with ``BEGIN IMMEDIATE``: they take the write lock before
reading, so two applies run one after the other instead of failing on upgrade;
read-only ones with a plain ``BEGIN``, so they never wait for a writer.

PostgreSQL URLs (``postgresql://...``) are driven by psycopg 3; applies are
serialized by a row lock on the ``head`` table (see repository.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

_BUSY_TIMEOUT_MS = 30_000
#: execution option of the transactions that write (SQLite: BEGIN IMMEDIATE)
WRITE = "quiver_write"


def make_engine(url: str) -> Engine:
    """An engine for ``url``: a SQLite file path or URL, or a PostgreSQL URL."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed.render_as_string(hide_password=False))
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite(url: str) -> Engine:
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # transactions begin as below, not by the driver
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
